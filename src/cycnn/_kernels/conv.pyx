# Design: conv2d forward and backward on the CPU, one image per thread.
#
#   forward   y[n]  (K x L)   = w (K x CRS) . col[n] (CRS x L)  (+ b broadcast along L)
#   backward  dw    (K x CRS) = sum_n dy[n] (K x L) . col[n]^T
#             dx[n]           = col2im(w^T . dy[n])  or, stride 1: conv(dy[n], flipped w)
#             db    (K)       = sum over n, h, w of dy
#   with CRS = C*R*S, L = Ho*Wo and col[n] = im2col(x[n]) (csrc/conv/im2col.c).
#
# float32 (the path that matters for speed) runs the forward pass and the stride-1 dx without
# an im2col matrix: the filters are packed once per call and shared by the threads; each thread
# copies its image into a zero-padded buffer, and the bias and an optional ReLU are fused into
# the store. Three kernels (_algo picks): the Winograd convolution (csrc/conv/swino.c,
# F(2x2, 5x5) / F(4x4, 3x3): 3x3 filters from 8 input channels, 5x5 from 16, stride 1, no
# dilation, at least as many images as threads -- winograd_applies, the rule the inference plan
# shares; it reads the unpadded image, gathering it channels-last into its workspace, and its
# filter transform, float64, runs per call over 16-filter panels in parallel); else the
# broadcast kernel (csrc/conv/sconv_direct.c:
# 6 pixels x 16 filters register tiles, the pixels' values broadcast straight from the padded
# image, nothing packed per image) for every filter but 1x1, where the implicit GEMM
# (csrc/conv/sconv_igemm.c: the GEMM's B panels packed from the padded image) measured faster;
# a pointwise image (1x1, stride 1, unpadded) is not copied at all: its rows are B's rows, packed
# straight from x (set_pointwise_mode).
# Ahead of those, stride-1 undilated convolutions with at most 4 input channels or 4 filters
# (first layers; fewc_applies) run the few-channel kernel (csrc/conv/sconv_fewc.c), vectorised
# along the flattened output plane over shifted copies of the image (few filters over many
# channels: along the channels), forward and weight gradient, and the dx of layers with 3-4
# input channels (_fewc_dx).
# dx for stride 1 is the same kernels run on dy
# with the filters flipped and transposed, w'[c, k, r, s] = w[k, c, R-1-r, S-1-s], and padding
# dh*(R-1) - pt: every dx element is written once, no col2im and no zeroing. (With fewer than
# _DX_CONV_MIN_C input channels dx keeps col2im, which is faster there; but 1-4 input channels
# with width-preserving padding, e.g. lenet-c1's, run the dxfew kernel, csrc/conv/sconv_dxfew.c:
# w^T . dy with the col2im scatter fused into its register tile's store, each image's dx right
# after its weight gradient in _fewc_backward_weights' loop.) The float32 weight
# gradient has no im2col matrix either (csrc/conv/sconv_dw.c): dW^T (CRS x K) += col . dy^T in
# 6-tap x 16-filter register tiles, dy^T packed into 16-filter panels per block of pixels (db
# summed while packing), the taps broadcast straight from the zero-padded image. The implicit
# GEMM and the weight gradient are told the next image of the thread's loop (n + 1) and
# prefetch its input (and dy) while they compute (csrc/conv/prefetch.h), so images streamed
# from memory run near their cache-hot speed. float64 uses im2col + the packed GEMM (csrc/gemm)
# throughout.
#
# Parallel: prange over images (schedule='static') on the n_threads threads cycnn._threads chose
# (at most N in backward). (The forward pass with fewer images than threads shares each image
# among the threads instead: bands of output pixels.) Each parallel region reports its team
# (last_parallel_region). Every thread owns its scratch (column buffer or padded image, GEMM
# workspace), allocated once per call before the parallel region and indexed by threadid(); the
# GEMM itself (csrc/gemm) is single-threaded. The weight gradient is accumulated per thread in
# (n_threads, K, CRS) (float32: (n_threads, CRS, K)) and summed in thread order after the loop,
# so results are deterministic for a given thread count (y and dx do not depend on the thread
# count at all). (Called with fewer images than threads, the float32 weight gradient splits the
# taps between the threads instead, each running every image.)
# A 1x1 convolution with stride 1 and no padding skips im2col: x[n] already is its col matrix.
#
# Memory: n_threads * (CRS*L or padded image, + workspace; Winograd: its workspace, the
# channels-last image, the tile transforms and the output of one image) (+ n_threads*(K*CRS + K) in
# backward) + the packed filters, kept per Python thread between calls, within the bounds of
# cycnn._scratch. Inputs are const memoryviews (read-only arrays work); outputs are allocated by
# cycnn.ops.

import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport uintptr_t
from libc.string cimport memset

cdef extern from "gemm/gemm.h" nogil:
    size_t cycnn_gemm_workspace_size()
    void cycnn_sgemm(int M, int N, int K, float alpha,
                     const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                     const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                     float beta, float *C, ptrdiff_t ldc, void *ws)
    void cycnn_dgemm(int M, int N, int K, double alpha,
                     const double *A, ptrdiff_t rsa, ptrdiff_t csa,
                     const double *B, ptrdiff_t rsb, ptrdiff_t csb,
                     double beta, double *C, ptrdiff_t ldc, void *ws)
    int cycnn_gemm_init()
    int cycnn_gemm_select(const char *name)
    int cycnn_gemm_supported(const char *name)
    const char *cycnn_gemm_kernel_name()

cdef extern from "team.h" nogil:
    void cycnn_note_team(int region)
    int cycnn_last_team()

cdef enum:
    REGION_FORWARD = 1
    REGION_FORWARD_SPLIT = 2
    REGION_BACKWARD = 3
    REGION_GEMM = 4
    REGION_BACKWARD_SPLIT = 5
_REGION_NAMES = {0: None, 1: "conv2d_forward", 2: "conv2d_forward_split", 3: "conv2d_backward",
                 4: "gemm", 5: "conv2d_backward_split"}


def last_parallel_region():
    """(name, team size) of this module's latest parallel region: which path ran and on how
    many threads OpenMP really ran it; (None, 0) before the first. For tests."""
    cdef int r = cycnn_last_team()
    return _REGION_NAMES.get(r >> 16, r >> 16), r & 0xffff


cdef extern from "conv/conv.h" nogil:
    void cycnn_im2col_f32(const float *x, int C, int H, int W, int R, int S, int sh, int sw,
                          int pt, int pl, int dh, int dw, int Ho, int Wo, float *col)
    void cycnn_col2im_f32(const float *col, int C, int H, int W, int R, int S, int sh, int sw,
                          int pt, int pl, int dh, int dw, int Ho, int Wo, float *x)
    void cycnn_im2col_f64(const double *x, int C, int H, int W, int R, int S, int sh, int sw,
                          int pt, int pl, int dh, int dw, int Ho, int Wo, double *col)
    void cycnn_col2im_f64(const double *col, int C, int H, int W, int R, int S, int sh, int sw,
                          int pt, int pl, int dh, int dw, int Ho, int Wo, double *x)

from cycnn._kernels._sconv cimport (
    cycnn_conv_geom, cycnn_sconv_config, cycnn_sconv_packed_weights_floats,
    cycnn_sconv_pack_weights, cycnn_sconv_padded_floats, cycnn_sconv_pad_image,
    cycnn_sconv_workspace_bytes, cycnn_sconv_igemm, cycnn_sconv_igemm_next,
    cycnn_sconv_pointwise, cycnn_sconv_dw_workspace_bytes, cycnn_sconv_dw, cycnn_sconv_dw_next,
    cycnn_sconv_direct_packed_floats, cycnn_sconv_direct_pack_weights,
    cycnn_sconv_direct_workspace_bytes, cycnn_sconv_direct, cycnn_swino_tile,
    cycnn_swino_packed_floats, cycnn_swino_pack_weights_panels, cycnn_swino_workspace_bytes,
    cycnn_swino, cycnn_swino_dw_acc_floats, cycnn_swino_dw_workspace_bytes, cycnn_swino_dw,
    cycnn_swino_dw_finish)

cdef extern from "conv/sconv_fewc.h" nogil:
    size_t cycnn_sconv_fewc_packed_floats(int K, int C, ptrdiff_t RS)
    void cycnn_sconv_fewc_pack_weights(int K, int C, int R, int S, const float *w, float *wp)
    size_t cycnn_sconv_fewc_workspace_bytes(const cycnn_conv_geom *g)
    void cycnn_sconv_fewc(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                          const float *x, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                          int relu, float *y, ptrdiff_t ldy, void *ws)
    void cycnn_sconv_fewc_dw(const void *cfg, const cycnn_conv_geom *g, const float *x,
                             const float *dy, int k0, int k1, float *acc, float *db, void *ws)
    void cycnn_sconv_fewc_dw_finish(int K, ptrdiff_t CRS, const float *acc,
                                    ptrdiff_t acc_stride, int nacc, float *dw)

cdef extern from "conv/sconv_dxfew.h" nogil:
    int cycnn_sconv_dxfew_applies(const cycnn_conv_geom *g)
    size_t cycnn_sconv_dxfew_packed_floats(int K, int C, int R, int S)
    void cycnn_sconv_dxfew_pack_weights(int K, int C, int R, int S, const float *w, float *wp)
    size_t cycnn_sconv_dxfew_workspace_bytes(const cycnn_conv_geom *g)
    void cycnn_sconv_dxfew(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                           const float *dy, int cold, float *dx, void *ws)

cdef extern from "gemm/sgemm_bcast.h" nogil:
    size_t cycnn_sgemm_bcast_packed_floats(int K, int N)
    void cycnn_sgemm_bcast_pack(const void *cfg, int K, int N, const float *B, ptrdiff_t csb,
                                float *Bp)
    void cycnn_sgemm_bcast(const void *cfg, int i0, int i1, int N, int K, const float *A,
                           ptrdiff_t rsa, ptrdiff_t csa, const float *Bp, float *C,
                           ptrdiff_t ldc)

SIMD_PATHS = ("generic", "avx2", "avx512")

_init_status = cycnn_gemm_init()   # picks the micro-kernel once, honouring CYCNN_SIMD
if _init_status != 0:
    import os
    import warnings
    warnings.warn(f"CYCNN_SIMD={os.environ.get('CYCNN_SIMD')!r} names no GEMM path this CPU can "
                  f"run (choose from {', '.join(SIMD_PATHS)}); using "
                  f"{cycnn_gemm_kernel_name().decode()!r}", RuntimeWarning)


def init_status():
    """0, or -1 when CYCNN_SIMD named an unknown or unsupported path (the best one is used)."""
    return _init_status


# ---------------------------------------------------------------- typed wrappers (float/double)

cdef inline void _gemm(int M, int N, int K, floating alpha,
                       const floating *A, ptrdiff_t rsa, ptrdiff_t csa,
                       const floating *B, ptrdiff_t rsb, ptrdiff_t csb,
                       floating beta, floating *C, ptrdiff_t ldc, void *ws) noexcept nogil:
    if floating is float:
        cycnn_sgemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, ws)
    else:
        cycnn_dgemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, ws)


cdef inline void _im2col(const floating *x, int C, int H, int W, int R, int S, int sh, int sw,
                         int pt, int pl, int dh, int dw, int Ho, int Wo,
                         floating *col) noexcept nogil:
    if floating is float:
        cycnn_im2col_f32(x, C, H, W, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo, col)
    else:
        cycnn_im2col_f64(x, C, H, W, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo, col)


cdef inline void _col2im(const floating *col, int C, int H, int W, int R, int S, int sh, int sw,
                         int pt, int pl, int dh, int dw, int Ho, int Wo,
                         floating *x) noexcept nogil:
    if floating is float:
        cycnn_col2im_f32(col, C, H, W, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo, x)
    else:
        cycnn_col2im_f64(col, C, H, W, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo, x)


from .._scratch import scratch as _scratch


cdef class _Workspaces:
    """n workspaces of `nbytes` (default: a GEMM workspace), each 64-byte aligned, in one
    per-thread scratch buffer named `slot`."""
    cdef object buf
    cdef char *base
    cdef size_t stride

    def __cinit__(self, int n, size_t nbytes=0, slot="gemm-workspaces"):
        if nbytes == 0:
            nbytes = cycnn_gemm_workspace_size()
        self.stride = (nbytes + 63) // 64 * 64
        self.buf = _scratch(slot, (n * self.stride + 64,), np.uint8)
        cdef unsigned char[::1] view = self.buf
        cdef uintptr_t addr = <uintptr_t>&view[0]
        self.base = <char *>((addr + 63) // 64 * 64)

    cdef inline void *get(self, int i) noexcept nogil:
        return self.base + i * self.stride


# ---------------------------------------------------------------- float: implicit GEMM

cdef bint _implicit_gemm = True
cdef int _DX_CONV_MIN_C = 16   # implicit dx from this many input channels on
cdef int _direct_mode = 1      # 0: never the broadcast kernel, 1: where it measured faster, 2: always
cdef int _winograd_mode = 1    # 0: never Winograd, 1: where winograd_applies, 2: every 3x3/5x5 s1

cdef enum:                     # the kernel of a float32 forward / stride-1 dx convolution
    ALGO_IGEMM = 0             # csrc/conv/sconv_igemm.c (padded copy per image, none pointwise)
    ALGO_DIRECT = 1            # csrc/conv/sconv_direct.c (padded copy, or the image in place)
    ALGO_WINOGRAD = 2          # csrc/conv/swino.c (the unpadded image, gathered channels-last)
    ALGO_FEWC = 4              # csrc/conv/sconv_fewc.c (the unpadded image, shifted copies)

# Fewest input channels from which the Winograd kernel (csrc/conv/swino.c) beat the broadcast
# kernel, by filter size (benchmarks/winograd_vs_direct.py, one core: 3x3 1.1x at 8 channels,
# 5x5 1.0x at 8 and 1.5x at 16). The one rule for training (here) and the inference plan
# (cycnn.models.plan.conv_kernel calls winograd_applies).
WINOGRAD_MIN_CHANNELS = {3: 8, 5: 16}
# Fewest output pixels (images x Ho x Wo) of a call that transforms its filters itself (training:
# they change every step) for Winograd to pay for that transform. One core, forward, Winograd
# over the broadcast kernel at 392 / 512 / 784 / 1024 pixels: lenet-c2 (32 -> 64, 5x5, 14x14)
# 0.9-1.06x at 2 images, 1.23-1.28x at 4; 64 -> 128 3x3 on 8x8 0.4x / 1.0x at 8 images / 1.4x at
# 16; 16 -> 32 5x5 7x7 0.86x at 8 images, 1.01x at 16; vgg-3x3 1.23-1.26x at 1 image.
WINOGRAD_MIN_PIXELS = 768


def winograd_applies(int C, int R, int S, int sh=1, int sw=1, int dh=1, int dw=1,
                     pixels=None):
    """True when a convolution with C input channels and R x S filters (strides sh, sw,
    dilations dh, dw) goes to the Winograd kernel: 3x3 filters from 8 channels on, 5x5 from 16,
    stride 1, no dilation (F(4x4, 3x3) / F(2x2, 5x5) of csrc/conv/swino.c), where it measured
    faster than the broadcast kernel. ``pixels``: for a call that transforms its filters itself
    (training's convolutions), its output pixels over all images, at least WINOGRAD_MIN_PIXELS;
    None (an inference plan, which transforms them once) skips that condition. The switches
    (set_winograd_mode here, cycnn.models.plan.use_winograd for plans) are not consulted."""
    return (R == S and R in WINOGRAD_MIN_CHANNELS and sh == 1 and sw == 1 and dh == 1
            and dw == 1 and C >= WINOGRAD_MIN_CHANNELS[R]
            and (pixels is None or pixels >= WINOGRAD_MIN_PIXELS))


def set_winograd_mode(int mode):
    """Tests and benchmarks: which float32 convolutions of cycnn.ops (forward, stride-1 dx) run
    the Winograd kernel (csrc/conv/swino.c): 0 none (they keep the broadcast kernel / implicit
    GEMM of set_direct_mode), 1 those winograd_applies accepts (the default), 2 every 3x3 or 5x5
    stride-1 undilated one, any channel and pixel count. Either way only calls with at least
    as many images as threads (fewer split each image by pixels on the other kernels: a split
    by 16-filter panels, one thread's share timed on one core, came to 0.6x the pixel split
    for lenet-c2 at one image on 2 threads -- the per-call filter transform dominates -- and
    1.1-1.2x for cifar-3x3 and vgg-3x3). Inference plans have their own switch,
    cycnn.models.plan.use_winograd. Returns the old mode."""
    global _winograd_mode
    if mode not in (0, 1, 2):
        raise ValueError(f"mode must be 0, 1 or 2, got {mode!r}")
    old = _winograd_mode
    _winograd_mode = mode
    return old


# The few-channel kernel (csrc/conv/sconv_fewc.c: vectorised along the flattened output plane)
# for stride-1, undilated convolutions with at most FEWC_MAX_CHANNELS input channels (first
# layers) or at most FEWC_MAX_FILTERS filters (their dx: 1 or 3 output channels).
FEWC_MAX_CHANNELS = 4
FEWC_MAX_FILTERS = 4
FEWC_DX_MIN_C = 3              # dx of layers with 3..4 input channels (see _fewc_dx)
FEWC_DW_MAX_COPIES = 8192      # weight gradient: floats of shifted copies (see _dw_fewc)
cdef int _fewc_mode = 1        # 0: never the few-channel kernel, 1: where fewc_applies


def fewc_applies(int C, int K, int sh=1, int sw=1, int dh=1, int dw=1):
    """True when a float32 convolution with C input channels and K filters (strides sh, sw,
    dilations dh, dw; for a dx, C is dy's channels and K x's) goes to the few-channel kernel
    (csrc/conv/sconv_fewc.c): stride 1, no dilation, C <= FEWC_MAX_CHANNELS or
    K <= FEWC_MAX_FILTERS. set_fewc_mode is not consulted."""
    return (sh == 1 and sw == 1 and dh == 1 and dw == 1 and C > 0 and K > 0
            and (C <= FEWC_MAX_CHANNELS or K <= FEWC_MAX_FILTERS))


def set_fewc_mode(int mode):
    """Tests and benchmarks: 0 sends no convolution to the few-channel kernel (forward, dx and
    weight gradient keep the kernels they had before it), 1 (the default) those fewc_applies
    accepts (unless set_direct_mode or set_winograd_mode(2) force another kernel). Returns the
    old mode."""
    global _fewc_mode
    if mode not in (0, 1):
        raise ValueError(f"mode must be 0 or 1, got {mode!r}")
    old = _fewc_mode
    _fewc_mode = mode
    return old


cdef bint _fewc_dx(int K, int C, int R, int S, int dh, int dw):
    """dx of a stride-1 layer with FEWC_DX_MIN_C..FEWC_MAX_FILTERS input channels and at least
    8 filters on the few-channel kernel (its channels-last path: dy's K channels, C "filters"),
    instead of col2im. One core, 32 filters: RGB 3x3 1.26x, 5x5 1.06x faster than col2im;
    lenet-c1 (1 channel) 0.71x -- its channels-last copy of dy serves one output channel only,
    so it stays on col2im."""
    return (_fewc_mode != 0 and _direct_mode == 1 and _winograd_mode != 2 and K >= 8
            and S <= 7 and C >= FEWC_DX_MIN_C and fewc_applies(K, C, 1, 1, dh, dw))


cdef bint _use_fewc(cycnn_conv_geom g):
    """fewc_applies, unless a test or benchmark forces another kernel (set_fewc_mode(0),
    set_direct_mode(0 or 2), set_winograd_mode(2))."""
    return (_fewc_mode != 0 and _direct_mode == 1 and _winograd_mode != 2
            and fewc_applies(g.C, g.K, g.sh, g.sw, g.dh, g.dw))


# The few-channel dx kernel (csrc/conv/sconv_dxfew.c: w^T . dy with col2im fused into the
# register tile's store) for the dx of stride-1 undilated layers with at most
# DXFEW_MAX_CHANNELS input channels and width-preserving padding (Wo == W), e.g. a first layer's
# dx; run inside the few-channel weight gradient's image loop when that one runs too.
DXFEW_MAX_CHANNELS = 4
cdef int _dxfew_mode = 1       # 0: never the dxfew kernel, 1: where dxfew_applies


def dxfew_applies(int C, int K, int R, int S, int H, int W, int Ho, int Wo, int pl, int sh=1,
                  int sw=1, int dh=1, int dw=1):
    """True when the float32 dx of a convolution (C input channels, K filters of R x S, input
    H x W, output Ho x Wo, left padding pl, strides sh, sw, dilations dh, dw) goes to the
    few-channel dx kernel (csrc/conv/sconv_dxfew.c): C <= DXFEW_MAX_CHANNELS, stride 1, no
    dilation, Wo == W with 0 <= pl <= S - 1. set_dxfew_mode is not consulted."""
    cdef cycnn_conv_geom g = _geom(C, H, W, K, R, S, sh, sw, 0, pl, dh, dw, Ho, Wo)
    return C <= DXFEW_MAX_CHANNELS and cycnn_sconv_dxfew_applies(&g) != 0


def set_dxfew_mode(int mode):
    """Tests and benchmarks: 0 sends no dx to the few-channel dx kernel (they keep the kernel
    they had before it: col2im, or the few-channel kernel's channels-last path), 1 (the
    default) those dxfew_applies accepts. Returns the old mode."""
    global _dxfew_mode
    if mode not in (0, 1):
        raise ValueError(f"mode must be 0 or 1, got {mode!r}")
    old = _dxfew_mode
    _dxfew_mode = mode
    return old


cdef bint _use_dxfew(cycnn_conv_geom g):
    """dxfew_applies, unless a test or benchmark forces another kernel (set_dxfew_mode(0),
    set_implicit_gemm(False), set_direct_mode(0 or 2), set_winograd_mode(2), as for fewc)."""
    return (_dxfew_mode != 0 and _implicit_gemm and _direct_mode == 1 and _winograd_mode != 2
            and dxfew_applies(g.C, g.K, g.R, g.S, g.H, g.W, g.Ho, g.Wo, g.pl, g.sh, g.sw, g.dh,
                              g.dw))


cdef int _last_algo = -1       # (3: a float32 dx by col2im, 5: by the dxfew kernel)
_ALGO_NAMES = {-1: None, ALGO_IGEMM: "igemm", ALGO_DIRECT: "direct", ALGO_WINOGRAD: "winograd",
               3: "col2im", ALGO_FEWC: "fewc", 5: "dxfew"}


def last_conv_kernel():
    """'igemm', 'direct', 'winograd' or 'fewc': the kernel of this module's latest float32 forward or
    dx convolution, 'col2im' when that was a dx by col2im, 'dxfew' by the few-channel dx kernel
    (None before the first). For tests."""
    return _ALGO_NAMES[_last_algo]


cdef int _algo(cycnn_conv_geom g, int N, int nt):
    """The kernel of a float32 convolution of N images on nt threads with geometry g (C its
    input channels: x's for the forward pass, dy's for dx): Winograd (set_winograd_mode), else
    the broadcast kernel or the implicit GEMM (_use_direct). Mode 1 asks winograd_applies, with
    the call's N*Ho*Wo output pixels; mode 2 (tests) any channel and pixel count. Winograd also
    needs its per-thread workspace (about one channels-last input and one output image) within
    the im2col-sized scratch cycnn.ops checked before the call (C*R*S*Ho*Wo floats, + 1 MiB
    for the tile transforms): many filters over few channels (e.g. 8 -> 512, 3x3) keep the
    broadcast kernel."""
    global _last_algo
    if _use_fewc(g):
        _last_algo = ALGO_FEWC
    elif (_winograd_mode != 0 and N >= nt and g.C > 0 and cycnn_swino_tile(&g) != 0 and
            (_winograd_mode == 2 or winograd_applies(g.C, g.R, g.S, g.sh, g.sw, g.dh, g.dw,
                                                     <ptrdiff_t>N * g.Ho * g.Wo)) and
            cycnn_swino_workspace_bytes(&g) <=
            <size_t>g.C * g.R * g.S * g.Ho * g.Wo * sizeof(float) + (1 << 20)):
        _last_algo = ALGO_WINOGRAD
    else:
        _last_algo = ALGO_DIRECT if _use_direct(g) else ALGO_IGEMM
    return _last_algo


def set_direct_mode(int mode):
    """Tests and benchmarks: which float32 convolutions (forward, stride-1 dx) run the broadcast
    kernel (csrc/conv/sconv_direct.c) instead of the implicit GEMM: 0 none, 1 the shapes where
    it measured faster (the default), 2 all. Returns the old mode."""
    global _direct_mode
    old = _direct_mode
    _direct_mode = mode
    return old


cdef bint _use_direct(cycnn_conv_geom g):
    """The broadcast kernel, except for 1x1 filters: there every tap is another channel plane,
    its broadcasts touch one cache line per tap, and the implicit GEMM's packed panels measured
    1.1-1.4x faster (64x128x16x16, 64 filters); elsewhere the broadcast kernel measured 1.0-1.35x
    faster at 1 thread (lenet-c2 dx 1.35x, lenet-c2 forward 1.14x, cifar-3x3 1.08x)."""
    if _direct_mode != 1:
        return _direct_mode == 2
    return g.R * g.S > 1


# The 1x1 path (benchmarks/k1x1_ab.py measures it against the previous one): a pointwise
# image (1x1, stride 1, unpadded) read in place by the implicit GEMM instead of copied, and the
# implicit GEMM and the weight gradient prefetching the next image's operands while they
# compute (csrc/conv/prefetch.h).
cdef bint _prefetch = True     # x and dy of the next image (forward, dx, dw)
cdef bint _prefetch_y = False  # and its output (measured slower: 3.39 vs 3.30 ms, fwd 1x1)
cdef bint _pointwise_in_place = True


def set_pointwise_mode(int mode):
    """Tests and benchmarks: 1 (the default) runs float32 1x1 convolutions on the current
    path -- a pointwise image read in place by the implicit GEMM, the next image's operands
    prefetched (forward, dx and weight gradient of every shape on those kernels); 0 the
    previous one (a padded copy of every image, no prefetching). Returns the old mode."""
    global _prefetch, _pointwise_in_place
    if mode not in (0, 1):
        raise ValueError(f"mode must be 0 or 1, got {mode!r}")
    old = int(_pointwise_in_place)
    _prefetch = _pointwise_in_place = mode == 1
    return old


def set_implicit_gemm(bint enabled):
    """Tests and benchmarks: False sends float32 through im2col + GEMM like float64 (the
    previous kernels), True (the default) through the implicit GEMM. Returns the old setting."""
    global _implicit_gemm
    old = _implicit_gemm
    _implicit_gemm = enabled
    return old


cdef cycnn_conv_geom _geom(int C, int H, int W, int K, int R, int S, int sh, int sw, int pt,
                           int pl, int dh, int dw, int Ho, int Wo):
    cdef cycnn_conv_geom g
    g.C = C; g.H = H; g.W = W; g.K = K; g.R = R; g.S = S
    g.sh = sh; g.sw = sw; g.pt = pt; g.pl = pl; g.dh = dh; g.dw = dw; g.Ho = Ho; g.Wo = Wo
    return g


cdef bint _unpadded(cycnn_conv_geom g) noexcept nogil:
    """The padded image of cycnn_sconv_pad_image is the image itself: nothing padded or
    cropped (e.g. 1x1, stride 1, no padding)."""
    return (g.pt == 0 and g.pl == 0 and (g.Ho - 1) * g.sh + (g.R - 1) * g.dh + 1 == g.H
            and (g.Wo - 1) * g.sw + (g.S - 1) * g.dw + 1 == g.W)


cdef _sconv_images(const void *cfg, cycnn_conv_geom g, const float *wp, const float *src,
                   ptrdiff_t src_plane, int N, const float *bias, bint relu, float *dst,
                   ptrdiff_t dst_plane, int nt, int region, int algo=ALGO_IGEMM):
    """dst[n] (K x Ho*Wo) = conv(src[n]) for n < N on the kernel `algo` (_algo), wp the weights
    packed for it (cycnn_sconv_pack_weights, cycnn_sconv_direct_pack_weights or
    cycnn_swino_pack_weights). N >= nt: one image per thread at a time. N < nt (not Winograd):
    the images in turn, each split into nt ranges of output pixels (multiples of 64), all
    threads reading one shared padded copy."""
    cdef ptrdiff_t L = <ptrdiff_t>g.Ho * g.Wo
    cdef bint direct = algo == ALGO_DIRECT
    cdef bint wino = algo == ALGO_WINOGRAD
    cdef bint fewc = algo == ALGO_FEWC
    # (the broadcast kernel reads nothing past the taps: an unpadded image is used in place;
    # Winograd and the few-channel kernel always read the unpadded image, copying it into their
    # workspace)
    # (the implicit GEMM packs a pointwise image's rows straight from it: 1x1, stride 1, unpadded)
    cdef bint in_place = (wino or fewc or (direct and _unpadded(g))
                          or (algo == ALGO_IGEMM and _pointwise_in_place
                              and cycnn_sconv_pointwise(&g)))
    cdef size_t padded = 1 if in_place else cycnn_sconv_padded_floats(cfg, &g)
    cdef int npad = nt if N >= nt else 1
    cdef float[:, ::1] xp = _scratch("sconv-padded", (npad, padded), np.float32)
    cdef _Workspaces ws = _Workspaces(
        nt, cycnn_swino_workspace_bytes(&g) if wino else
        cycnn_sconv_fewc_workspace_bytes(&g) if fewc else
        cycnn_sconv_direct_workspace_bytes(&g) if direct else cycnn_sconv_workspace_bytes(cfg),
        "sconv-workspaces")
    cdef int n, t, tid
    cdef ptrdiff_t chunk, l0, l1
    cdef const float *xn
    cdef const float *x_next
    cdef float *y_next
    if N == 0 or L == 0 or g.K == 0:
        return
    if N >= nt:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            if tid == 0:
                cycnn_note_team(region)
            for n in prange(N, schedule='static'):
                if wino:
                    cycnn_swino(cfg, &g, wp, src + n * src_plane, bias, relu,
                                dst + n * dst_plane, L, ws.get(tid))
                    continue
                if fewc:
                    cycnn_sconv_fewc(cfg, &g, wp, src + n * src_plane, 0, L, bias, relu,
                                     dst + n * dst_plane, L, ws.get(tid))
                    continue
                if in_place and direct:
                    cycnn_sconv_direct(cfg, &g, wp, src + n * src_plane, 0, L, bias, relu,
                                       dst + n * dst_plane, L, ws.get(tid))
                    continue
                if direct:
                    cycnn_sconv_pad_image(cfg, &g, src + n * src_plane, &xp[tid, 0])
                    cycnn_sconv_direct(cfg, &g, wp, &xp[tid, 0], 0, L, bias, relu,
                                       dst + n * dst_plane, L, ws.get(tid))
                    continue
                # the implicit GEMM prefetches the next image's input and output meanwhile
                x_next = src + (n + 1) * src_plane if n + 1 < N else NULL
                y_next = dst + (n + 1) * dst_plane if n + 1 < N and _prefetch_y else NULL
                if not in_place:
                    cycnn_sconv_pad_image(cfg, &g, src + n * src_plane, &xp[tid, 0])
                cycnn_sconv_igemm_next(cfg, &g, wp, src + n * src_plane if in_place else
                                       &xp[tid, 0], 0, L, bias, relu, dst + n * dst_plane, L,
                                       ws.get(tid), x_next if _prefetch else NULL, y_next)
        return
    assert not wino, "_algo gives Winograd only calls with N >= threads"
    chunk = ((L + nt - 1) // nt + 63) // 64 * 64
    for n in range(N):
        xn = src + n * src_plane
        if not in_place:
            with nogil:
                cycnn_sconv_pad_image(cfg, &g, xn, &xp[0, 0])
            xn = &xp[0, 0]
        with nogil, parallel(num_threads=nt):
            for t in prange(nt, schedule='static'):
                if t == 0:
                    cycnn_note_team(REGION_FORWARD_SPLIT if region == REGION_FORWARD else region)
                l0 = t * chunk
                l1 = min(L, l0 + chunk)
                if l1 > l0 and fewc:
                    cycnn_sconv_fewc(cfg, &g, wp, xn, l0, l1, bias, relu, dst + n * dst_plane,
                                     L, ws.get(t))
                elif l1 > l0 and direct:
                    cycnn_sconv_direct(cfg, &g, wp, xn, l0, l1, bias, relu,
                                       dst + n * dst_plane, L, ws.get(t))
                elif l1 > l0:
                    cycnn_sconv_igemm(cfg, &g, wp, xn, l0, l1, bias, relu,
                                      dst + n * dst_plane, L, ws.get(t))


cdef _sconv_forward(const float[:, :, :, ::1] x, const float[:, :, :, ::1] w,
                    const float *bias, bint relu, float[:, :, :, ::1] y,
                    int sh, int sw, int pt, int pl, int dh, int dw, int n_threads):
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int K = w.shape[0], R = w.shape[2], S = w.shape[3]
    cdef int Ho = y.shape[2], Wo = y.shape[3]
    cdef ptrdiff_t CRS = <ptrdiff_t>C * R * S
    cdef const void *cfg = cycnn_sconv_config()
    cdef cycnn_conv_geom g = _geom(C, H, W, K, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo)
    cdef int nt = max(1, n_threads)
    cdef int algo = _algo(g, N, nt)
    cdef float[::1] wp = _scratch("sconv-weights", (max(1, _packed_floats(cfg, algo, K, C, CRS)),),
                                  np.float32)
    if N == 0 or K == 0:
        return
    if CRS > 0:
        _pack(cfg, algo, K, C, R, CRS, &w[0, 0, 0, 0], &wp[0], nt)
    _sconv_images(cfg, g, &wp[0], &x[0, 0, 0, 0] if x.size else NULL, <ptrdiff_t>C * H * W, N,
                  bias, relu, &y[0, 0, 0, 0], <ptrdiff_t>K * Ho * Wo, nt, REGION_FORWARD, algo)


cdef size_t _packed_floats(const void *cfg, int algo, int K, int C, ptrdiff_t CRS):
    """Floats of K filters of C x R x S (CRS taps) packed for the kernel algo."""
    if algo == ALGO_WINOGRAD:
        return cycnn_swino_packed_floats(K, C)
    if algo == ALGO_DIRECT:
        return cycnn_sconv_direct_packed_floats(K, CRS)
    if algo == ALGO_FEWC:
        return cycnn_sconv_fewc_packed_floats(K, C, CRS // C if C > 0 else 0)
    return cycnn_sconv_packed_weights_floats(cfg, K, CRS)


cdef void _pack(const void *cfg, int algo, int K, int C, int R, ptrdiff_t CRS, const float *w,
                float *wp, int nt) noexcept nogil:
    """The K x C x R x S filters w (contiguous) packed into wp for the kernel algo. Winograd's
    filter transform (float64: about 160 (3x3) / 330 (5x5) multiply-adds per filter and
    channel) costs enough to share out: its 16-filter panels are packed in parallel (one core:
    1.2 ms for 128 x 128 x 3 x 3, 7.4 ms before its loops ran 16 filters at a time)."""
    cdef int p, P = (K + 15) // 16
    if algo == ALGO_WINOGRAD:
        if nt > 1 and P > 1:
            for p in prange(P, num_threads=min(nt, P), schedule='static'):
                cycnn_swino_pack_weights_panels(K, C, R, w, wp, p, p + 1)
        else:
            cycnn_swino_pack_weights_panels(K, C, R, w, wp, 0, P)
    elif algo == ALGO_DIRECT:
        cycnn_sconv_direct_pack_weights(K, CRS, w, wp)
    elif algo == ALGO_FEWC:
        cycnn_sconv_fewc_pack_weights(K, C, R, <int>(CRS // (C * R)), w, wp)
    else:
        cycnn_sconv_pack_weights(cfg, K, CRS, w, CRS, 1, wp)


cdef _sconv_backward_data(const float[:, :, :, ::1] dy, const float[:, :, :, ::1] w,
                          float[:, :, :, ::1] dx, int pt, int pl, int dh, int dw, int n_threads):
    """dx for stride 1 as a forward convolution of dy with the flipped, transposed filters
    w'[c, k, r, s] = w[k, c, R-1-r, S-1-s] and padding dh*(R-1) - pt (dw*(S-1) - pl): every dx
    element is written once, no col2im and no zeroing."""
    cdef int N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef int K = w.shape[0], R = w.shape[2], S = w.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef ptrdiff_t KRS = <ptrdiff_t>K * R * S
    cdef const void *cfg = cycnn_sconv_config()
    cdef cycnn_conv_geom g = _geom(K, Ho, Wo, C, R, S, 1, 1, dh * (R - 1) - pt,
                                   dw * (S - 1) - pl, dh, dw, H, W)
    cdef float[:, :, :, ::1] wt = _scratch("sconv-flipped", (C, K, R, S), np.float32)
    cdef int nt = max(1, n_threads)
    cdef int algo = _algo(g, N, nt)
    cdef float[::1] wp = _scratch("sconv-weights", (max(1, _packed_floats(cfg, algo, C, K, KRS)),),
                                  np.float32)
    cdef int k, c, r, s
    if N == 0 or C == 0:
        return
    if KRS == 0:
        dx[...] = 0
        return
    with nogil:
        for c in range(C):
            for k in range(K):
                for r in range(R):
                    for s in range(S):
                        wt[c, k, r, s] = w[k, c, R - 1 - r, S - 1 - s]
        _pack(cfg, algo, C, K, R, KRS, &wt[0, 0, 0, 0], &wp[0], nt)
    _sconv_images(cfg, g, &wp[0], &dy[0, 0, 0, 0], K * <ptrdiff_t>Ho * Wo, N, NULL, False,
                  &dx[0, 0, 0, 0], <ptrdiff_t>C * H * W, nt, REGION_BACKWARD, algo)


cdef bint _last_dw_winograd = False


def last_dw_winograd():
    """True when this module's latest float32 weight gradient ran the Winograd kernel. For
    tests."""
    return _last_dw_winograd


cdef bint _dw_winograd(cycnn_conv_geom g, int N, int nt):
    """The float32 weight gradient on Winograd (cycnn_swino_dw): the forward pass's rule (the
    same convolution: x's channels, output pixels -- its per-call output transform costs about
    what the forward pass's filter transform does --, set_winograd_mode), with at least as many
    images as threads, and only while a thread's transform-domain sums (36 x C x K) and
    workspace stay within what cycnn.ops checked before the call for it (a filter-sized partial
    sum and the im2col-sized scratch, + 1 MiB): many filters on small images (512 filters of
    3x3 on 14x14) keep the direct gradient, whose sums are 4x smaller."""
    global _last_dw_winograd
    _last_dw_winograd = (
        _winograd_mode != 0 and N >= nt and g.C > 0 and cycnn_swino_tile(&g) != 0 and
        (_winograd_mode == 2 or winograd_applies(g.C, g.R, g.S, g.sh, g.sw, g.dh, g.dw,
                                                 pixels=N * g.Ho * g.Wo)) and
        (cycnn_swino_dw_acc_floats(g.K, g.C) * sizeof(float) +
         cycnn_swino_dw_workspace_bytes(&g) <=
         <size_t>g.C * g.R * g.S * (<size_t>g.Ho * g.Wo + g.K) * sizeof(float) + (1 << 20)))
    return _last_dw_winograd


cdef _swino_backward_weights(const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
                             float[:, :, :, ::1] dw, float[::1] db, cycnn_conv_geom g, int nt):
    """dw and db by the Winograd weight gradient (csrc/conv/swino.c): one image per thread at a
    time into the thread's own transform-domain sums (36 x C x K, 32-byte aligned rows),
    summed in thread order and transformed into dw once (the threads sharing the filters); db
    summed per thread alike."""
    cdef int N = x.shape[0], K = g.K, C = g.C
    cdef ptrdiff_t L = <ptrdiff_t>g.Ho * g.Wo, plane_x = <ptrdiff_t>C * g.H * g.W
    cdef ptrdiff_t stride = (cycnn_swino_dw_acc_floats(K, C) + 15) // 16 * 16
    cdef const void *cfg = cycnn_sconv_config()
    acc_arr = _scratch("dw-winograd", (nt * stride + 16,), np.float32)
    dbt_arr = _scratch("db-partial", (nt, max(K, 1)), np.float32)
    dbt_arr[...] = 0
    cdef float[::1] acc_v = acc_arr
    cdef float *acc = <float *>((<uintptr_t>&acc_v[0] + 63) // 64 * 64)
    cdef float[:, ::1] dbt = dbt_arr
    cdef _Workspaces ws = _Workspaces(nt, cycnn_swino_dw_workspace_bytes(&g), "swino-dw-ws")
    cdef int n, k, t, tid
    cdef ptrdiff_t l
    cdef float s, s0, s1, s2, s3, s4, s5, s6, s7
    cdef const float *dyk
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        if tid == 0:
            cycnn_note_team(REGION_BACKWARD)
        for t in prange(nt, schedule='static'):     # the sums zeroed in parallel (vgg-3x3: 2
            memset(acc + t * stride, 0, stride * sizeof(float))   # x 2.3 MiB), each once
        for n in prange(N, schedule='static'):
            cycnn_swino_dw(cfg, &g, &x[n, 0, 0, 0], &dy[n, 0, 0, 0], acc + tid * stride,
                           ws.get(tid))
            for k in range(K):     # db: 8 partial sums (one chain of dependent adds was 4% of
                dyk = &dy[n, k, 0, 0]   # cifar-3x3's fwd+bwd), the same order on any thread
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0
                l = 0
                while l + 8 <= L:
                    s0 = s0 + dyk[l]
                    s1 = s1 + dyk[l + 1]
                    s2 = s2 + dyk[l + 2]
                    s3 = s3 + dyk[l + 3]
                    s4 = s4 + dyk[l + 4]
                    s5 = s5 + dyk[l + 5]
                    s6 = s6 + dyk[l + 6]
                    s7 = s7 + dyk[l + 7]
                    l = l + 8
                s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
                while l < L:
                    s = s + dyk[l]
                    l = l + 1
                dbt[tid, k] += s
    cdef int chunk = (K + nt - 1) // nt
    with nogil, parallel(num_threads=nt):       # the output transform, by ranges of filters
        for t in prange(nt, schedule='static'):
            if t * chunk < K:
                cycnn_swino_dw_finish(K, C, g.R, acc, stride, nt, t * chunk,
                                      min(K, (t + 1) * chunk), &dw[0, 0, 0, 0])
    with nogil:
        for k in range(K):
            s = 0
            for t in range(nt):
                s = s + dbt[t, k]
            db[k] = s


cdef bint _last_dw_fewc = False


def last_dw_fewc():
    """True when this module's latest float32 weight gradient ran the few-channel kernel. For
    tests."""
    return _last_dw_fewc


cdef bint _dw_fewc(cycnn_conv_geom g):
    """The float32 weight gradient on the few-channel kernel (cycnn_sconv_fewc_dw): the
    forward pass's rule (_use_fewc), for at most FEWC_MAX_FILTERS filters or while the image's
    shifted copies (C x S planes of (Ho + R - 1) x Wo) stay within FEWC_DW_MAX_COPIES floats,
    and while a thread's vector partial sums (K x CRS x 8) stay within what cycnn.ops checked
    before the call for it (a filter-sized partial sum and the im2col-sized scratch,
    CRS x Ho*Wo), + 1 MiB. (One core: lenet-c1, 4,480 floats of copies, 1.1-1.2x the direct
    gradient; RGB 3x3 and 5x5 on 32x32, 9,792 and 17,280, 0.9-1.0x: its 2-filter x 5-tap tiles
    sweep the copies once per tile, from L2 once they outgrow L1.)"""
    global _last_dw_fewc
    cdef ptrdiff_t crs = <ptrdiff_t>g.C * g.R * g.S
    _last_dw_fewc = (_use_fewc(g)
                     and (g.K <= FEWC_MAX_FILTERS or <ptrdiff_t>g.C * g.S * (g.Ho + g.R - 1)
                          * g.Wo <= FEWC_DW_MAX_COPIES)
                     and 8 * g.K * crs <= crs * (<ptrdiff_t>g.Ho * g.Wo + g.K) + (1 << 18))
    return _last_dw_fewc


cdef class _DxFew:
    """The few-channel dx kernel's operands for one call: the packed filters and one
    workspace per thread (per-thread scratch)."""
    cdef object buf
    cdef float *wp
    cdef _Workspaces ws

    def __cinit__(self, const float[:, :, :, ::1] w, int nt, int H, int W, int Ho, int Wo,
                  int pt, int pl):
        cdef int K = w.shape[0], C = w.shape[1], R = w.shape[2], S = w.shape[3]
        cdef cycnn_conv_geom g = _geom(C, H, W, K, R, S, 1, 1, pt, pl, 1, 1, Ho, Wo)
        self.buf = _scratch("dxfew-w", (cycnn_sconv_dxfew_packed_floats(K, C, R, S) + 16,),
                            np.float32)
        cdef float[::1] view = self.buf
        self.wp = <float *>((<uintptr_t>&view[0] + 63) // 64 * 64)
        cycnn_sconv_dxfew_pack_weights(K, C, R, S, &w[0, 0, 0, 0], self.wp)
        self.ws = _Workspaces(nt, cycnn_sconv_dxfew_workspace_bytes(&g), "dxfew-ws")


cdef _dxfew_images(const float[:, :, :, ::1] dy, const float[:, :, :, ::1] w,
                   float[:, :, :, ::1] dx, cycnn_conv_geom g, int nt):
    """dx by the few-channel dx kernel alone (csrc/conv/sconv_dxfew.c), one image per thread
    (at most one thread per image)."""
    cdef int N = dx.shape[0], n, tid
    cdef int nth = max(1, min(nt, N))
    cdef _DxFew d = _DxFew(w, nth, g.H, g.W, g.Ho, g.Wo, g.pt, g.pl)
    cdef const void *cfg = cycnn_sconv_config()
    with nogil, parallel(num_threads=nth):
        tid = threadid()
        if tid == 0:
            cycnn_note_team(REGION_BACKWARD)
        for n in prange(N, schedule='static'):
            cycnn_sconv_dxfew(cfg, &g, d.wp, &dy[n, 0, 0, 0], 1, &dx[n, 0, 0, 0],
                              d.ws.get(tid))


cdef _fewc_backward_weights(const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
                            float[:, :, :, ::1] dw, float[::1] db, cycnn_conv_geom g, int nt,
                            float[:, :, :, ::1] dx=None, const float[:, :, :, ::1] w=None):
    """dw and db by the few-channel kernel (csrc/conv/sconv_fewc.c). N >= threads: one image
    per thread at a time into the thread's own vector partial sums (K x CRS x 8), reduced in
    thread order at the end. N < threads: every thread runs every image for its own range of
    filters (an even number) of one shared partial sum, so the result does not depend on the
    thread count there. With dx (OUT) and w (IN): also dx by the few-channel dx kernel
    (csrc/conv/sconv_dxfew.c), each image's right after its weight gradient on the same thread
    (dy[n] is then in that core's cache; N < threads: thread n runs image n's)."""
    cdef int N = x.shape[0], K = g.K
    cdef ptrdiff_t CRS = <ptrdiff_t>g.C * g.R * g.S
    cdef bint split = N < nt
    cdef int nacc = 1 if split else nt
    cdef ptrdiff_t stride = (K * CRS * 8 + 15) // 16 * 16
    cdef const void *cfg = cycnn_sconv_config()
    acc_arr = _scratch("dw-fewc", (nacc * stride + 16,), np.float32)
    dbt_arr = _scratch("db-partial", (nacc, max(K, 1)), np.float32)
    acc_arr[...] = 0
    dbt_arr[...] = 0
    cdef float[::1] acc_v = acc_arr
    cdef float *acc = <float *>((<uintptr_t>&acc_v[0] + 63) // 64 * 64)
    cdef float[:, ::1] dbt = dbt_arr
    cdef _Workspaces ws = _Workspaces(nt, cycnn_sconv_fewc_workspace_bytes(&g), "fewc-ws")
    cdef int chunk = ((K + nt - 1) // nt + 1) // 2 * 2
    cdef int n, k, t, tid, k0, k1
    cdef float s
    cdef bint with_dx = dx is not None
    cdef _DxFew d = _DxFew(w, nt, g.H, g.W, g.Ho, g.Wo, g.pt, g.pl) if with_dx else None
    cdef float *dwp = d.wp if with_dx else NULL
    if not split:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            if tid == 0:
                cycnn_note_team(REGION_BACKWARD)
            for n in prange(N, schedule='static'):
                cycnn_sconv_fewc_dw(cfg, &g, &x[n, 0, 0, 0], &dy[n, 0, 0, 0], 0, K,
                                    acc + tid * stride, &dbt[tid, 0], ws.get(tid))
                if with_dx:
                    cycnn_sconv_dxfew(cfg, &g, dwp, &dy[n, 0, 0, 0], 0, &dx[n, 0, 0, 0],
                                      d.ws.get(tid))
    else:
        with nogil, parallel(num_threads=nt):
            for t in prange(nt, schedule='static'):
                if t == 0:
                    cycnn_note_team(REGION_BACKWARD_SPLIT)
                k0 = min(K, t * chunk)
                k1 = min(K, k0 + chunk)
                for n in range(N):
                    cycnn_sconv_fewc_dw(cfg, &g, &x[n, 0, 0, 0], &dy[n, 0, 0, 0], k0, k1, acc,
                                        &dbt[0, 0], ws.get(t))
                    if with_dx and n == t:
                        cycnn_sconv_dxfew(cfg, &g, dwp, &dy[n, 0, 0, 0], 0, &dx[n, 0, 0, 0],
                                          d.ws.get(t))
    with nogil:
        cycnn_sconv_fewc_dw_finish(K, CRS, acc, stride, nacc, &dw[0, 0, 0, 0])
        for k in range(K):
            s = 0
            for t in range(nacc):
                s = s + dbt[t, k]
            db[k] = s


cdef _sconv_backward_weights(const float[:, :, :, ::1] dy, const float[:, :, :, ::1] x,
                             float[:, :, :, ::1] dw, float[::1] db, int sh, int sw, int pt,
                             int pl, int dh, int dw_, int n_threads):
    """dw and db by csrc/conv/sconv_dw.c: no im2col matrix. N >= threads: one image per thread
    at a time into the thread's own (CRS x K) partial sums, summed in thread order at the end.
    N < threads: every thread runs every image, on its own range of taps (a multiple of 6) of
    one shared partial sum."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int K = dw.shape[0], R = dw.shape[2], S = dw.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef ptrdiff_t CRS = <ptrdiff_t>C * R * S, L = <ptrdiff_t>Ho * Wo
    cdef ptrdiff_t plane_x = <ptrdiff_t>C * H * W
    cdef int nt = max(1, n_threads)
    cdef bint split = N < nt
    cdef int nacc = 1 if split else nt
    cdef const void *cfg = cycnn_sconv_config()
    cdef cycnn_conv_geom g = _geom(C, H, W, K, R, S, sh, sw, pt, pl, dh, dw_, Ho, Wo)
    # the padded copy is x itself when nothing is padded or cropped (e.g. 1x1, stride 1)
    cdef bint as_is = _unpadded(g)
    cdef float[:, ::1] xp = _scratch("sconv-padded",
                                     (nt, 1 if as_is else cycnn_sconv_padded_floats(cfg, &g)),
                                     np.float32)
    acc_arr = _scratch("dw-partial", (nacc, max(K * CRS, 1)), np.float32)
    dbt_arr = _scratch("db-partial", (nacc, max(K, 1)), np.float32)
    acc_arr[...] = 0
    dbt_arr[...] = 0
    cdef float[:, ::1] acc = acc_arr
    cdef float[:, ::1] dbt = dbt_arr
    cdef _Workspaces ws = _Workspaces(nt, cycnn_sconv_dw_workspace_bytes(&g), "sconv-dw-ws")
    cdef ptrdiff_t chunk = ((CRS + nt - 1) // nt + 5) // 6 * 6
    cdef ptrdiff_t t0, t1, i
    cdef int n, k, t, tid
    cdef float s
    cdef const float *xn
    if N > 0 and K > 0 and CRS > 0 and L > 0 and _dw_fewc(g):
        _fewc_backward_weights(dy, x, dw, db, g, nt)
        return
    if N > 0 and K > 0 and CRS > 0 and L > 0 and _dw_winograd(g, N, nt):
        _swino_backward_weights(dy, x, dw, db, g, nt)
        return
    if N > 0 and K > 0 and CRS > 0 and L > 0:
        if not split:
            with nogil, parallel(num_threads=nt):
                tid = threadid()
                if tid == 0:
                    cycnn_note_team(REGION_BACKWARD)
                for n in prange(N, schedule='static'):
                    xn = &x[n, 0, 0, 0]
                    if not as_is:
                        cycnn_sconv_pad_image(cfg, &g, xn, &xp[tid, 0])
                        xn = &xp[tid, 0]
                    # (the next image's x and dy are prefetched meanwhile)
                    cycnn_sconv_dw_next(cfg, &g, xn, &dy[n, 0, 0, 0], 0, CRS, &acc[tid, 0], K,
                                        &dbt[tid, 0], ws.get(tid),
                                        &x[n + 1, 0, 0, 0] if _prefetch and n + 1 < N else NULL,
                                        plane_x, &dy[n + 1, 0, 0, 0] if _prefetch and n + 1 < N
                                        else NULL)
        else:
            with nogil, parallel(num_threads=nt):
                for t in prange(nt, schedule='static'):
                    if t == 0:
                        cycnn_note_team(REGION_BACKWARD_SPLIT)
                    t0 = min(CRS, t * chunk)
                    t1 = min(CRS, t0 + chunk)
                    if t1 > t0:
                        for n in range(N):
                            xn = &x[n, 0, 0, 0]
                            if not as_is:
                                cycnn_sconv_pad_image(cfg, &g, xn, &xp[t, 0])
                                xn = &xp[t, 0]
                            cycnn_sconv_dw(cfg, &g, xn, &dy[n, 0, 0, 0], t0, t1, &acc[0, 0],
                                           K, &dbt[0, 0] if t == 0 else NULL, ws.get(t))
    # dw[k, t] = sum over the partial sums, in order, of acc[., t*K + k]; db alike
    cdef float *dwp = &dw[0, 0, 0, 0] if K * CRS > 0 else NULL
    with nogil:
        for i in range(CRS):
            for k in range(K):
                s = 0
                for t in range(nacc):
                    s = s + acc[t, i * K + k]
                dwp[k * CRS + i] = s
        for k in range(K):
            s = 0
            for t in range(nacc):
                s = s + dbt[t, k]
            db[k] = s


# ---------------------------------------------------------------- convolution

def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                   const floating[::1] b, bint has_bias, floating[:, :, :, ::1] y,
                   int sh, int sw, int pt, int pl, int dh, int dw, int n_threads,
                   bint relu=False):
    """y = conv(x, w) (+ b), then max(0, y) when relu. x (N,C,H,W) IN; w (K,C,R,S) IN; b (K,)
    IN, read when has_bias; y (N,K,Ho,Wo) OUT. Geometry validated by cycnn.ops. float32 runs
    the implicit GEMM (bias and ReLU fused into its store), float64 im2col + GEMM."""
    if floating is float and _implicit_gemm:
        _sconv_forward(x, w, &b[0] if has_bias else NULL, relu, y, sh, sw, pt, pl, dh, dw,
                       n_threads)
        return
    _conv2d_forward_gemm(x, w, b, has_bias, y, sh, sw, pt, pl, dh, dw, n_threads)
    if relu:
        _relu_inplace(y)


def _conv2d_forward_gemm(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                         const floating[::1] b, bint has_bias, floating[:, :, :, ::1] y,
                         int sh, int sw, int pt, int pl, int dh, int dw, int n_threads):
    """conv2d_forward through im2col + GEMM, one image per thread (any dtype)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int K = w.shape[0], R = w.shape[2], S = w.shape[3]
    cdef int Ho = y.shape[2], Wo = y.shape[3]
    cdef ptrdiff_t L = <ptrdiff_t>Ho * Wo, CRS = <ptrdiff_t>C * R * S
    cdef bint direct = (R == 1 and S == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
                        and Ho == H and Wo == W)
    cdef int nt = max(1, n_threads)
    if N == 0 or K == 0:
        return
    if N < nt:
        _conv2d_forward_split(x, w, b, has_bias, y, sh, sw, pt, pl, dh, dw, nt)
        return
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] cols = _scratch("cols", (nt, 1 if direct else max(CRS * L, 1)), dtype)
    cdef _Workspaces ws = _Workspaces(nt)
    cdef int n, k, tid
    cdef ptrdiff_t l
    cdef floating *yn
    cdef const floating *coln
    cdef floating beta = 0

    with nogil, parallel(num_threads=nt):
        tid = threadid()
        if tid == 0:
            cycnn_note_team(REGION_FORWARD)
        for n in prange(N, schedule='static'):
            yn = &y[n, 0, 0, 0]
            if direct:
                coln = &x[n, 0, 0, 0]
            else:
                _im2col(&x[n, 0, 0, 0], C, H, W, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo,
                        &cols[tid, 0])
                coln = &cols[tid, 0]
            beta = 0
            if has_bias:
                for k in range(K):
                    for l in range(L):
                        yn[k * L + l] = b[k]
                beta = 1
            _gemm(K, <int>L, <int>CRS, <floating>1, &w[0, 0, 0, 0], CRS, 1,
                  coln, L, 1, beta, yn, L, ws.get(tid))


cdef _relu_inplace(floating[:, :, :, ::1] y):
    cdef floating *p = &y[0, 0, 0, 0] if y.size else NULL
    cdef ptrdiff_t i, n = y.size
    with nogil:
        for i in range(n):
            if p[i] < 0:        # NaN stays NaN, as in the fused float32 store
                p[i] = 0


cdef _conv2d_forward_split(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                           const floating[::1] b, bint has_bias, floating[:, :, :, ::1] y,
                           int sh, int sw, int pt, int pl, int dh, int dw, int nt):
    """conv2d_forward for fewer images than threads (e.g. single-image inference): the images
    run one after another and the threads share each one by bands of output rows. A band
    [oh0, oh1) is an im2col of its own (the same image with top padding pt - oh0*sh and
    oh1 - oh0 output rows) into the thread's column buffer, then a GEMM into y[n, :, oh0:oh1],
    so no thread reads what another wrote."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int K = w.shape[0], R = w.shape[2], S = w.shape[3]
    cdef int Ho = y.shape[2], Wo = y.shape[3]
    cdef ptrdiff_t L = <ptrdiff_t>Ho * Wo, CRS = <ptrdiff_t>C * R * S
    cdef int band = (Ho + nt - 1) // nt
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] cols = _scratch("cols", (nt, max(CRS * band * Wo, 1)), dtype)
    cdef _Workspaces ws = _Workspaces(nt)
    cdef int n, k, t, oh0, rows
    cdef ptrdiff_t l, width
    cdef floating *yb
    cdef floating beta
    for n in range(N):
        with nogil, parallel(num_threads=nt):
            for t in prange(nt, schedule='static'):
                if t == 0:
                    cycnn_note_team(REGION_FORWARD_SPLIT)
                oh0 = t * band
                rows = min(Ho - oh0, band)
                if rows > 0:
                    width = <ptrdiff_t>rows * Wo
                    yb = &y[n, 0, oh0, 0]
                    _im2col(&x[n, 0, 0, 0], C, H, W, R, S, sh, sw, pt - oh0 * sh, pl, dh, dw,
                            rows, Wo, &cols[t, 0])
                    beta = 0
                    if has_bias:
                        for k in range(K):
                            for l in range(width):
                                yb[k * L + l] = b[k]
                        beta = 1
                    _gemm(K, <int>width, <int>CRS, <floating>1, &w[0, 0, 0, 0], CRS, 1,
                          &cols[t, 0], width, 1, beta, yb, L, ws.get(t))


def conv2d_backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                    const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
                    floating[:, :, :, ::1] dw, floating[::1] db,
                    int sh, int sw, int pt, int pl, int dh, int dw_, int n_threads,
                    bint need_dw=True):
    """Gradients of conv2d. dy (N,K,Ho,Wo), x (N,C,H,W), w (K,C,R,S) IN;
    dx (N,C,H,W), dw (K,C,R,S), db (K,) OUT (fully written). dx None: dw and db only (the
    w^T.dy GEMM and col2im are skipped). need_dw False: dx only (dw and db are not written,
    x is not read: the transposed convolution's forward pass). float32 with stride 1 (and
    >= _DX_CONV_MIN_C input channels) computes dx as an implicit-GEMM convolution of dy with the
    flipped filters (_sconv_backward_data); otherwise dx = col2im(w^T . dy) per image. float32
    dw and db come from csrc/conv/sconv_dw.c (_sconv_backward_weights), float64 from
    im2col + GEMM."""
    cdef bint compute_dx = dx is not None
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int K = w.shape[0], R = w.shape[2], S = w.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef ptrdiff_t L = <ptrdiff_t>Ho * Wo, CRS = <ptrdiff_t>C * R * S
    cdef ptrdiff_t plane_x = <ptrdiff_t>C * H * W
    cdef bint direct = (R == 1 and S == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
                        and Ho == H and Wo == W)
    cdef int nt = max(1, n_threads)
    # (with few input channels the flipped-filter GEMM has few rows and packs its B panels for
    # little use: measured 7x slower than col2im for C = 1)
    # (few input channels, e.g. a first layer's: the few-channel kernel's channels-last
    # path, on dy's K channels, where it measured faster than col2im)
    # (few input channels and width-preserving padding: the few-channel dx kernel, fused into
    # the few-channel weight gradient's image loop when that one runs)
    cdef cycnn_conv_geom g = _geom(C, H, W, K, R, S, sh, sw, pt, pl, dh, dw_, Ho, Wo)
    cdef bint dx_few = floating is float and compute_dx and _use_dxfew(g)
    cdef bint dx_conv = (floating is float and _implicit_gemm and sh == 1 and sw == 1
                         and not dx_few
                         and (C >= _DX_CONV_MIN_C or _fewc_dx(K, C, R, S, dh, dw_)))
    cdef bint dx_col2im = compute_dx and not dx_conv and not dx_few
    # float32 dw and db without the im2col matrix (csrc/conv/sconv_dw.c)
    cdef bint dw_direct = floating is float and _implicit_gemm and need_dw
    global _last_algo
    if floating is float and dx_col2im:
        _last_algo = 3
    if dx_few:
        _last_algo = 5
        if floating is float:
            if N > 0 and need_dw and K > 0 and L > 0 and _dw_fewc(g):
                _fewc_backward_weights(dy, x, dw, db, g, nt, dx, w)
                return
            if N > 0:
                _dxfew_images(dy, w, dx, g, nt)
            if not need_dw:
                return
    if compute_dx and dx_conv and N > 0:
        if floating is float:
            _sconv_backward_data(dy, w, dx, pt, pl, dh, dw_, n_threads)
    if dw_direct:
        if floating is float:
            _sconv_backward_weights(dy, x, dw, db, sh, sw, pt, pl, dh, dw_, n_threads)
        need_dw = False
        if not dx_col2im:
            return
    dtype = np.float32 if floating is float else np.float64
    cdef bint need_cols = not direct and (need_dw or dx_col2im)
    cdef floating[:, ::1] cols = _scratch("cols", (nt, max(CRS * L, 1) if need_cols else 1),
                                          dtype)
    dw_arr = _scratch("dw-partial", (nt, max(K * CRS, 1) if need_dw else 1), dtype)
    db_arr = _scratch("db-partial", (nt, max(K, 1) if need_dw else 1), dtype)
    dw_arr[...] = 0
    db_arr[...] = 0
    cdef floating[:, ::1] dw_t = dw_arr
    cdef floating[:, ::1] db_t = db_arr
    cdef _Workspaces ws = _Workspaces(nt)
    cdef int n, k, t, tid
    cdef ptrdiff_t l, i
    cdef const floating *dyn
    cdef const floating *coln
    cdef floating *dxn
    cdef floating acc

    if N > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            if tid == 0:
                cycnn_note_team(REGION_BACKWARD)
            for n in prange(N, schedule='static'):
                dyn = &dy[n, 0, 0, 0]
                if not need_dw:
                    coln = NULL
                elif direct:
                    coln = &x[n, 0, 0, 0]
                else:
                    _im2col(&x[n, 0, 0, 0], C, H, W, R, S, sh, sw, pt, pl, dh, dw_, Ho, Wo,
                            &cols[tid, 0])
                    coln = &cols[tid, 0]
                # dw_t[tid] (K x CRS) += dy[n] (K x L) . col^T (L x CRS)
                if need_dw:
                    _gemm(K, <int>CRS, <int>L, <floating>1, dyn, L, 1, coln, 1, L,
                          <floating>1, &dw_t[tid, 0], CRS, ws.get(tid))
                    for k in range(K):
                        acc = 0
                        for l in range(L):
                            acc = acc + dyn[k * L + l]
                        db_t[tid, k] += acc
                # dcol (CRS x L) = w^T (CRS x K) . dy[n] (K x L), then scattered back to dx[n]
                if not dx_col2im:
                    pass
                elif direct:
                    dxn = &dx[n, 0, 0, 0]
                    _gemm(<int>CRS, <int>L, K, <floating>1, &w[0, 0, 0, 0], 1, CRS, dyn, L, 1,
                          <floating>0, dxn, L, ws.get(tid))
                else:
                    dxn = &dx[n, 0, 0, 0]
                    _gemm(<int>CRS, <int>L, K, <floating>1, &w[0, 0, 0, 0], 1, CRS, dyn, L, 1,
                          <floating>0, &cols[tid, 0], L, ws.get(tid))
                    memset(dxn, 0, plane_x * sizeof(floating))
                    _col2im(&cols[tid, 0], C, H, W, R, S, sh, sw, pt, pl, dh, dw_, Ho, Wo, dxn)

    # Deterministic reduction of the per-thread partial sums, in thread order.
    if not need_dw:
        return
    cdef floating *dwp = &dw[0, 0, 0, 0] if K * CRS > 0 else NULL
    with nogil:
        for i in range(K * CRS):
            acc = 0
            for t in range(nt):
                acc = acc + dw_t[t, i]
            dwp[i] = acc
        for k in range(K):
            acc = 0
            for t in range(nt):
                acc = acc + db_t[t, k]
            db[k] = acc


# ---------------------------------------------------------------- matrix product

def gemm(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] c,
         double alpha, double beta, int n_threads=1):
    """c = alpha * a @ b + beta * c, in place, through the selected micro-kernel.

    a (M, K) and b (K, N) IN, any strides (transposed and broadcast views work without a copy);
    c (M, N) IN/OUT, C-contiguous. With n_threads > 1 the columns of c are split into one block
    per thread (each a multiple of 32 wide), every thread running its own single-threaded GEMM
    (cycnn.ops.matmul gives at most one thread per 64 columns).
    """
    cdef int M = a.shape[0], K = a.shape[1], N = b.shape[1]
    if b.shape[0] != K or c.shape[0] != M or c.shape[1] != N:
        raise ValueError(f"gemm shapes do not agree: a {tuple(a.shape)[:2]}, "
                         f"b {tuple(b.shape)[:2]}, c {tuple(c.shape)[:2]}")
    if M == 0 or N == 0:
        return
    cdef int nt = max(1, n_threads)
    cdef int chunk = ((N + nt - 1) // nt + 31) // 32 * 32
    cdef _Workspaces ws = _Workspaces(nt)
    cdef ptrdiff_t isz = sizeof(floating)
    cdef ptrdiff_t rsa = a.strides[0] // isz, csa = a.strides[1] // isz
    cdef ptrdiff_t rsb = b.strides[0] // isz, csb = b.strides[1] // isz
    cdef const floating *pa = &a[0, 0] if K > 0 else NULL
    cdef const floating *pb = &b[0, 0] if K > 0 else NULL
    cdef int t, j0, width
    with nogil, parallel(num_threads=nt):
        for t in prange(nt, schedule='static'):
            if t == 0:
                cycnn_note_team(REGION_GEMM)
            j0 = t * chunk
            width = min(N - j0, chunk)
            if width > 0:
                _gemm(M, width, K, <floating>alpha, pa, rsa, csa,
                      pb + j0 * csb if K > 0 else NULL, rsb, csb,
                      <floating>beta, &c[0, j0], N, ws.get(t))


def gemm_bcast(const float[:, :] a, const float[:, :] b, float[:, ::1] ct, int n_threads=1):
    """ct = (a @ b).T for float32 on csrc/gemm/sgemm_bcast.c: b (the large operand, e.g. a
    weight matrix or its transpose) is read in place, a (few rows: the batch) is packed once.

    a (M, K) IN with unit column stride; b (K, N) IN, any strides; ct (N, M) OUT, C-contiguous.
    The N rows of ct are split among n_threads threads in blocks of whole 6-row tiles, all
    sharing the packed a (cycnn.ops.matmul gives at most one thread per 64 rows of ct).
    """
    cdef int M = a.shape[0], K = a.shape[1], N = b.shape[1]
    if b.shape[0] != K or ct.shape[0] != N or ct.shape[1] != M:
        raise ValueError(f"gemm_bcast shapes do not agree: a {tuple(a.shape)[:2]}, "
                         f"b {tuple(b.shape)[:2]}, ct {tuple(ct.shape)[:2]}")
    if M == 0 or N == 0:
        return
    if K > 0 and a.strides[1] != sizeof(float):
        raise ValueError(f"gemm_bcast needs a with unit column stride, got strides {a.strides}")
    cdef const void *cfg = cycnn_sconv_config()
    cdef object buf = _scratch("gemm-bcast-a", (cycnn_sgemm_bcast_packed_floats(K, M) + 16,),
                               np.float32)
    cdef float[::1] view = buf
    cdef float *ap = <float *>((<uintptr_t>&view[0] + 63) // 64 * 64)
    cdef ptrdiff_t rsb = b.strides[0] // sizeof(float), csb = b.strides[1] // sizeof(float)
    cdef ptrdiff_t lda = a.strides[0] // sizeof(float)
    cdef const float *pb = &b[0, 0] if K > 0 else NULL
    cdef int nt = max(1, min(n_threads, (N + 5) // 6))
    cdef int chunk = ((N + 5) // 6 + nt - 1) // nt * 6
    cdef int t, i0, i1
    if K > 0:
        cycnn_sgemm_bcast_pack(cfg, K, M, &a[0, 0], lda, ap)
    with nogil, parallel(num_threads=nt):
        for t in prange(nt, schedule='static'):
            if t == 0:
                cycnn_note_team(REGION_GEMM)
            i0 = t * chunk
            i1 = min(N, i0 + chunk)
            if i1 > i0:
                cycnn_sgemm_bcast(cfg, i0, i1, M, K, pb, csb, rsb, ap, &ct[0, 0], M)


def simd_supported(name):
    """True when this CPU can run the named GEMM path ('generic', 'avx2', 'avx512', 'auto')."""
    return bool(cycnn_gemm_supported(str(name).encode()))


def simd_select(name):
    """Force a GEMM path ('generic', 'avx2', 'avx512' or 'auto' for the best supported)."""
    status = cycnn_gemm_select(str(name).encode())
    if status == -1:
        raise ValueError(f"name must be one of 'auto', {', '.join(map(repr, SIMD_PATHS))}; "
                         f"got {name!r}")
    if status == -2:
        raise ValueError(f"this CPU cannot run the {name!r} GEMM path")


def simd_name():
    """The GEMM micro-kernel in use: 'generic', 'avx2' or 'avx512'."""
    return cycnn_gemm_kernel_name().decode()
