# Design: conv2d forward and backward as one GEMM per image over im2col columns.
#
#   forward   y[n]  (K x L)   = w (K x CRS) . col[n] (CRS x L)  (+ b broadcast along L)
#   backward  dw    (K x CRS) = sum_n dy[n] (K x L) . col[n]^T
#             dcol  (CRS x L) = w^T . dy[n];   dx[n] = col2im(dcol)
#             db    (K)       = sum over n, h, w of dy
#   with CRS = C*R*S, L = Ho*Wo and col[n] = im2col(x[n]) (csrc/conv/im2col.c).
#
# Parallel: prange over images (schedule='static') on the n_threads threads cycnn._threads chose
# (at most N in backward). (The forward pass with fewer images than threads shares each image
# among the threads instead.) Each parallel region reports its team (last_parallel_region).
# Every thread owns a column buffer (CRS*L elements) and a GEMM workspace, allocated once per
# call before the parallel region and indexed by threadid(); the GEMM itself (csrc/gemm) is
# single-threaded.
# The weight gradient is accumulated per thread in (n_threads, K, CRS) and summed in thread
# order after the loop, so results are deterministic for a given thread count.
# A 1x1 convolution with stride 1 and no padding skips im2col: x[n] already is its col matrix.
#
# Memory: n_threads * (CRS*L + GEMM workspace) (+ n_threads*(K*CRS + K) in backward), kept per
# Python thread between calls, within the bounds of cycnn._scratch.
# Inputs are const memoryviews (read-only arrays work); outputs are allocated by cycnn.ops.

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
_REGION_NAMES = {0: None, 1: "conv2d_forward", 2: "conv2d_forward_split", 3: "conv2d_backward",
                 4: "gemm"}


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
    """n GEMM workspaces, each 64-byte aligned, in one per-thread scratch buffer."""
    cdef object buf
    cdef char *base
    cdef size_t stride

    def __cinit__(self, int n):
        self.stride = (cycnn_gemm_workspace_size() + 63) // 64 * 64
        self.buf = _scratch("gemm-workspaces", (n * self.stride + 64,), np.uint8)
        cdef unsigned char[::1] view = self.buf
        cdef uintptr_t addr = <uintptr_t>&view[0]
        self.base = <char *>((addr + 63) // 64 * 64)

    cdef inline void *get(self, int i) noexcept nogil:
        return self.base + i * self.stride


# ---------------------------------------------------------------- convolution

def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                   const floating[::1] b, bint has_bias, floating[:, :, :, ::1] y,
                   int sh, int sw, int pt, int pl, int dh, int dw, int n_threads):
    """y = conv(x, w) (+ b). x (N,C,H,W) IN; w (K,C,R,S) IN; b (K,) IN, read when has_bias;
    y (N,K,Ho,Wo) OUT. Geometry validated by cycnn.ops."""
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
    x is not read: the transposed convolution's forward pass)."""
    cdef bint compute_dx = dx is not None
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int K = w.shape[0], R = w.shape[2], S = w.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef ptrdiff_t L = <ptrdiff_t>Ho * Wo, CRS = <ptrdiff_t>C * R * S
    cdef ptrdiff_t plane_x = <ptrdiff_t>C * H * W
    cdef bint direct = (R == 1 and S == 1 and sh == 1 and sw == 1 and pt == 0 and pl == 0
                        and Ho == H and Wo == W)
    cdef int nt = max(1, n_threads)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] cols = _scratch("cols", (nt, 1 if direct else max(CRS * L, 1)), dtype)
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
                if not compute_dx:
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
