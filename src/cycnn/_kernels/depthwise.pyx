# Design: depthwise 2-D convolution (groups == C: every output channel k reads the one input
# channel c = k // M, M = K // C the depth multiplier), forward and backward, NCHW float32/64.
#
# What: thin Cython drivers over the per-plane C kernels in csrc/conv/depthwise.c (contract and
# formulas in csrc/conv/depthwise.h). A depthwise convolution does R*S multiply-adds per output
# element, too little work for im2col + GEMM to pay (one GEMM per channel of K=M rows): direct
# loops over the planes run at memory speed instead.
#
# Loop order and parallelism (schedule='static' everywhere, so results are deterministic and
# independent of the thread count, since every output element is written by one thread):
#   forward        prange over the N*K output planes; plane (n, k) reads x[n, k // M], w[k].
#   backward data  prange over the N*C input planes; plane (n, c) is zeroed, then the M
#                  filters k = c*M .. c*M + M-1 add their share, in order.
#   backward filter prange over the K filters; filter k sums over the images in order (and
#                  db[k] over dy[:, k]).
# Threads: as many as the caller passes (cycnn.ops decides), at most one per plane/filter.
#
# Memory: the float32 per-thread workspace (the AVX2 kernels' padded copy of a plane, from
# cycnn._scratch, reused across calls); nothing else. The caller (cycnn.ops) validates
# shapes and allocates C-contiguous outputs; every output element is written. Inputs are const memoryviews (read-only arrays
# work). The GIL is released for the whole loop.

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.string cimport memset

import numpy as np

from .._scratch import scratch as _scratch

cdef extern from "conv/depthwise.h" nogil:
    ctypedef struct cycnn_dwconv_geom:
        int H, W, Ho, Wo, R, S, sh, sw, dh, dw, pt, pl

    void cycnn_dwconv_fwd_f32(const cycnn_dwconv_geom *g, const float *x, const float *w,
                              float bias, float *y, float *ws)
    size_t cycnn_dwconv_fwd_f32_ws_floats(const cycnn_dwconv_geom *g)
    void cycnn_dwconv_fwd_f64(const cycnn_dwconv_geom *g, const double *x, const double *w,
                              double bias, double *y)
    void cycnn_dwconv_bwd_data_f32(const cycnn_dwconv_geom *g, const float *dy,
                                   const float *w, float *dx)
    void cycnn_dwconv_bwd_data_f64(const cycnn_dwconv_geom *g, const double *dy,
                                   const double *w, double *dx)
    void cycnn_dwconv_bwd_filter_f32(const cycnn_dwconv_geom *g, const float *dy,
                                     const float *x, float *dw, float *ws)
    size_t cycnn_dwconv_bwd_f32_ws_floats(const cycnn_dwconv_geom *g)
    int cycnn_dwconv_bwd_data_f32_set(const cycnn_dwconv_geom *g, const float *dy,
                                      const float *w, float *dx, float *ws)
    void cycnn_dwconv_bwd_filter_f64(const cycnn_dwconv_geom *g, const double *dy,
                                     const double *x, double *dw)
    int cycnn_dwconv_f32_path()
    void cycnn_dwconv_f32_set_path(int allow_avx2)


def float32_path():
    """'avx2' or 'generic': the build of the float32 kernels (forward, dx, dw) that forward()
    and backward() run now (the AVX2 ones where the geometry allows: see depthwise.h)."""
    return "avx2" if cycnn_dwconv_f32_path() else "generic"


def set_float32_avx2(bint allowed):
    """Tests: False forces the portable float32 kernels, True restores the automatic choice
    (AVX2+FMA where the CPU has them). Returns the previous setting."""
    old = float32_path() == "avx2"
    cycnn_dwconv_f32_set_path(allowed)
    return old


cdef cycnn_dwconv_geom _geom(Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo,
                             Py_ssize_t R, Py_ssize_t S, int sh, int sw, int pt, int pl,
                             int dh, int dw):
    cdef cycnn_dwconv_geom g
    g.H = <int>H
    g.W = <int>W
    g.Ho = <int>Ho
    g.Wo = <int>Wo
    g.R = <int>R
    g.S = <int>S
    g.sh = sh
    g.sw = sw
    g.pt = pt
    g.pl = pl
    g.dh = dh
    g.dw = dw
    return g


cdef inline int _team(int n_threads, Py_ssize_t items) noexcept nogil:
    if n_threads < 1:
        return 1
    return <int>items if items < n_threads else n_threads


def forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
            const floating[::1] b, bint has_bias, floating[:, :, :, ::1] y,
            int sh, int sw, int pt, int pl, int dh, int dw, int n_threads):
    """y (N,K,Ho,Wo) OUT <- depthwise conv of x (N,C,H,W) IN with w (K,1,R,S) IN (+ b (K,) IN
    when has_bias); K a multiple of C, geometry validated by cycnn.ops."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], K = w.shape[0]
    cdef Py_ssize_t hw = x.shape[2] * x.shape[3], ohw = y.shape[2] * y.shape[3]
    cdef Py_ssize_t rs = w.shape[2] * w.shape[3], M, planes = N * K, p, n, k
    if planes == 0 or ohw == 0:
        return
    M = K // C
    cdef cycnn_dwconv_geom g = _geom(x.shape[2], x.shape[3], y.shape[2], y.shape[3],
                                     w.shape[2], w.shape[3], sh, sw, pt, pl, dh, dw)
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef floating bias
    cdef int nt = _team(n_threads, planes)
    # float32: one workspace per thread for the AVX2 kernel's padded plane (none: portable)
    cdef size_t wsf = cycnn_dwconv_fwd_f32_ws_floats(&g) if floating is float else 0
    cdef float[:, ::1] ws = _scratch("dwconv-padded", (nt, max(<size_t>1, wsf)), np.float32)
    for p in prange(planes, nogil=True, schedule='static', num_threads=nt):
        n = p // K
        k = p % K
        bias = b[k] if has_bias else 0
        if floating is float:
            cycnn_dwconv_fwd_f32(&g, xp + (n * C + k // M) * hw, wp + k * rs, bias, yp + p * ohw,
                                 &ws[threadid(), 0] if wsf > 0 else NULL)
        else:
            cycnn_dwconv_fwd_f64(&g, xp + (n * C + k // M) * hw, wp + k * rs, bias, yp + p * ohw)


def backward(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
             const floating[:, :, :, ::1] w, floating[:, :, :, ::1] dx,
             floating[:, :, :, ::1] dw_out, floating[::1] db,
             int sh, int sw, int pt, int pl, int dh, int dw, int n_threads):
    """Gradients of forward: dy (N,K,Ho,Wo), x (N,C,H,W), w (K,1,R,S) IN;
    dx (N,C,H,W), dw_out (K,1,R,S), db (K,) OUT (fully written)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], K = w.shape[0]
    cdef Py_ssize_t hw = x.shape[2] * x.shape[3], ohw = dy.shape[2] * dy.shape[3]
    cdef Py_ssize_t rs = w.shape[2] * w.shape[3], M, p, n, k, c, m, i
    cdef floating acc
    if K == 0:
        return
    M = K // C
    cdef cycnn_dwconv_geom g = _geom(x.shape[2], x.shape[3], dy.shape[2], dy.shape[3],
                                     w.shape[2], w.shape[3], sh, sw, pt, pl, dh, dw)
    cdef const floating *dyp = &dy[0, 0, 0, 0] if N > 0 else NULL
    cdef const floating *xp = &x[0, 0, 0, 0] if N > 0 else NULL
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef floating *dxp = &dx[0, 0, 0, 0] if N > 0 else NULL
    cdef floating *dwp = &dw_out[0, 0, 0, 0]
    cdef int nt = max(_team(n_threads, N * C), _team(n_threads, K))
    # float32: one workspace per thread for the AVX2 kernels' padded planes (none: portable)
    cdef size_t wsf = cycnn_dwconv_bwd_f32_ws_floats(&g) if floating is float else 0
    cdef float[:, ::1] ws = _scratch("dwconv-padded", (nt, max(<size_t>1, wsf)), np.float32)
    # dx: one input plane per iteration, its M filters in order (float32, one filter per
    # channel: set by the AVX2 forward kernel on dy with the flipped filter where it applies)
    for p in prange(N * C, nogil=True, schedule='static', num_threads=_team(n_threads, N * C)):
        n = p // C
        c = p % C
        if floating is float:
            if M == 1 and wsf > 0 and cycnn_dwconv_bwd_data_f32_set(
                    &g, dyp + (n * K + c) * ohw, wp + c * rs, dxp + p * hw, &ws[threadid(), 0]):
                continue
        memset(dxp + p * hw, 0, hw * sizeof(floating))
        for m in range(M):
            k = c * M + m
            if floating is float:
                cycnn_dwconv_bwd_data_f32(&g, dyp + (n * K + k) * ohw, wp + k * rs, dxp + p * hw)
            else:
                cycnn_dwconv_bwd_data_f64(&g, dyp + (n * K + k) * ohw, wp + k * rs, dxp + p * hw)
    # dw, db: one filter per iteration, the images in order
    for k in prange(K, nogil=True, schedule='static', num_threads=_team(n_threads, K)):
        memset(dwp + k * rs, 0, rs * sizeof(floating))
        acc = 0
        for n in range(N):
            if floating is float:
                cycnn_dwconv_bwd_filter_f32(&g, dyp + (n * K + k) * ohw,
                                            xp + (n * C + k // M) * hw, dwp + k * rs,
                                            &ws[threadid(), 0] if wsf > 0 else NULL)
            else:
                cycnn_dwconv_bwd_filter_f64(&g, dyp + (n * K + k) * ohw,
                                            xp + (n * C + k // M) * hw, dwp + k * rs)
            for i in range(ohw):
                acc = acc + dyp[(n * K + k) * ohw + i]
        db[k] = acc
