# Declarations of the float32 convolution kernels of csrc/conv (sconv_igemm.h, sconv_direct.h, swino.h,
# sconv_dw.h), shared by the conv and infer extensions (`from cycnn._kernels._sconv cimport ...`).
# The contracts are in the headers.
from libc.stddef cimport ptrdiff_t

cdef extern from "conv/sconv_igemm.h" nogil:
    ctypedef struct cycnn_conv_geom:
        int C, H, W, K, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo
    const void *cycnn_sconv_config()
    size_t cycnn_sconv_packed_weights_floats(const void *cfg, int K, ptrdiff_t CRS)
    void cycnn_sconv_pack_weights(const void *cfg, int K, ptrdiff_t CRS, const float *w,
                                  ptrdiff_t rsw, ptrdiff_t csw, float *wp)
    size_t cycnn_sconv_padded_floats(const void *cfg, const cycnn_conv_geom *g)
    void cycnn_sconv_pad_image(const void *cfg, const cycnn_conv_geom *g, const float *x,
                               float *xp)
    size_t cycnn_sconv_workspace_bytes(const void *cfg)
    void cycnn_sconv_igemm(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                           const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                           int relu, float *y, ptrdiff_t ldy, void *ws)
    void cycnn_sconv_igemm_next(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                                const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                                int relu, float *y, ptrdiff_t ldy, void *ws,
                                const float *x_next, const float *y_next)
    int cycnn_sconv_pointwise(const cycnn_conv_geom *g)
    void cycnn_sconv_igemm_act(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                               const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                               int act, float slope, float *y, ptrdiff_t ldy, void *ws)
    void cycnn_sconv_pool_tile(const void *cfg, int pool, const float *tile, int rows, int Wo,
                               int ph, int pw, int K, ptrdiff_t width, float *out,
                               ptrdiff_t out_plane, int Wq)

cdef extern from "conv/sconv_direct.h" nogil:
    size_t cycnn_sconv_direct_packed_floats(int K, ptrdiff_t CRS)
    void cycnn_sconv_direct_pack_weights(int K, ptrdiff_t CRS, const float *w, float *wp)
    size_t cycnn_sconv_direct_workspace_bytes(const cycnn_conv_geom *g)
    void cycnn_sconv_direct(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                            const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                            int relu, float *y, ptrdiff_t ldy, void *ws)

cdef extern from "conv/sconv_dw.h" nogil:
    size_t cycnn_sconv_dw_workspace_bytes(const cycnn_conv_geom *g)
    void cycnn_sconv_dw(const void *cfg, const cycnn_conv_geom *g, const float *xp,
                        const float *dy, ptrdiff_t t0, ptrdiff_t t1, float *acc, ptrdiff_t ldacc,
                        float *db, void *ws)
    void cycnn_sconv_dw_next(const void *cfg, const cycnn_conv_geom *g, const float *xp,
                             const float *dy, ptrdiff_t t0, ptrdiff_t t1, float *acc,
                             ptrdiff_t ldacc, float *db, void *ws, const float *x_next,
                             ptrdiff_t x_next_floats, const float *dy_next)

cdef extern from "conv/swino.h" nogil:
    int cycnn_swino_tile(const cycnn_conv_geom *g)
    size_t cycnn_swino_panel_floats(int C)
    size_t cycnn_swino_packed_floats(int K, int C)
    void cycnn_swino_pack_weights(int K, int C, int R, const float *w, float *wp)
    void cycnn_swino_pack_weights_panels(int K, int C, int R, const float *w, float *wp,
                                         int p0, int p1)
    size_t cycnn_swino_workspace_bytes(const cycnn_conv_geom *g)
    void cycnn_swino(const void *cfg, const cycnn_conv_geom *g, const float *wp, const float *x,
                     const float *bias, int relu, float *y, ptrdiff_t ldy, void *ws)
    size_t cycnn_swino_dw_acc_floats(int K, int C)
    size_t cycnn_swino_dw_workspace_bytes(const cycnn_conv_geom *g)
    void cycnn_swino_dw(const void *cfg, const cycnn_conv_geom *g, const float *x,
                        const float *dy, float *acc, void *ws)
    void cycnn_swino_dw_finish(int K, int C, int R, const float *acc, ptrdiff_t acc_stride,
                               int nacc, int k0, int k1, float *dw)
