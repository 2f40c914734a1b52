# Design: 2-D max and average pooling, forward and backward, on NCHW float32/float64 arrays.
#
# What: thin Cython drivers over the per-plane C kernels in csrc/pool (contract, formulas and
# edge rules in csrc/pool/pool.h). An NCHW tensor is N*C independent row-major planes: x/dx
# planes are H x W, y/dy/indices planes are Ho x Wo.
#
# Loop order: one prange over the N*C planes (schedule='static', so every thread walks one
# contiguous slab of memory); inside a plane the C kernel goes output row, output column,
# window row, window column (the forward kernels turn that inside out for the columns whose
# windows are not clipped, so the compiler vectorises across outputs; 2x2 stride-2 unpadded
# max pooling has its own SSE2 path). Max-pool indices are flat positions inside the plane
# (ih*W + iw), as in PyTorch; ties take the first maximum, NaN wins (the last NaN, as PyTorch).
#
# Threads: the n_threads given (cycnn._threads decides: at most N*C, 1 for calls too small to
# pay for a parallel region). Without OpenMP the prange simply runs serially. Each loop reports
# its team (last_parallel_region).
#
# Memory: none allocated. The caller (cycnn.ops) validates shapes and allocates C-contiguous
# outputs; the kernels overwrite every output element (backward kernels zero dx first), so
# the outputs may come from np.empty. Inputs are const memoryviews: read-only arrays work.
# The GIL is released for the whole loop.

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t

cdef extern from "pool/pool.h" nogil:
    ctypedef struct cycnn_pool_geom:
        int64_t H, W, Ho, Wo, kh, kw, sh, sw, pad_top, pad_left

    void cycnn_maxpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y,
                                 int64_t *idx)
    void cycnn_maxpool2d_fwd_f64(const cycnn_pool_geom *g, const double *x, double *y,
                                 int64_t *idx)
    int cycnn_maxpool2d_bwd_f32(int64_t n_out, const float *dy, const int64_t *idx,
                                int64_t hw, float *dx)
    int cycnn_maxpool2d_bwd_f64(int64_t n_out, const double *dy, const int64_t *idx,
                                int64_t hw, double *dx)
    void cycnn_avgpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y)
    void cycnn_avgpool2d_fwd_f64(const cycnn_pool_geom *g, const double *x, double *y)
    void cycnn_avgpool2d_bwd_f32(const cycnn_pool_geom *g, const float *dy, float *dx)
    void cycnn_avgpool2d_bwd_f64(const cycnn_pool_geom *g, const double *dy, double *dx)

cdef extern from "team.h" nogil:
    void cycnn_note_team(int region)
    int cycnn_last_team()

cdef enum:
    REGION_MAX_FORWARD = 1
    REGION_MAX_BACKWARD = 2
    REGION_AVG_FORWARD = 3
    REGION_AVG_BACKWARD = 4
_REGION_NAMES = {0: None, 1: "max_pool2d_forward", 2: "max_pool2d_backward",
                 3: "avg_pool2d_forward", 4: "avg_pool2d_backward"}


def last_parallel_region():
    """(name, team size) of this module's latest parallel loop: which kernel ran and on how
    many threads OpenMP really ran it; (None, 0) before the first. For tests."""
    cdef int r = cycnn_last_team()
    return _REGION_NAMES.get(r >> 16, r >> 16), r & 0xffff


cdef cycnn_pool_geom _geom(Py_ssize_t H, Py_ssize_t W, Py_ssize_t Ho, Py_ssize_t Wo,
                           int kh, int kw, int sh, int sw, int pad_top, int pad_left):
    """The kernels' geometry: 64-bit fields (sums like pad + stride need not fit in an int)."""
    if H > 0x7fffffff or W > 0x7fffffff or Ho > 0x7fffffff or Wo > 0x7fffffff:
        raise ValueError("pooling plane too large")
    cdef cycnn_pool_geom g
    g.H, g.W, g.Ho, g.Wo = H, W, Ho, Wo
    g.kh, g.kw, g.sh, g.sw, g.pad_top, g.pad_left = kh, kw, sh, sw, pad_top, pad_left
    return g


def max_pool2d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       int64_t[:, :, :, ::1] indices,
                       int kh, int kw, int sh, int sw, int pad_top, int pad_left,
                       int n_threads):
    """y, indices <- max pooling of x (shapes (N,C,H,W) -> (N,C,Ho,Wo), checked by the caller)."""
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = x.shape[2] * x.shape[3], ohw = y.shape[2] * y.shape[3]
    cdef cycnn_pool_geom g = _geom(x.shape[2], x.shape[3], y.shape[2], y.shape[3],
                                   kh, kw, sh, sw, pad_top, pad_left)
    cdef Py_ssize_t p
    cdef int nt
    if planes == 0 or ohw == 0:
        return
    nt = max(1, n_threads)
    # with hw == 0 every window is empty and x is never read: any base pointer will do
    cdef const floating *xp = &x[0, 0, 0, 0] if hw > 0 else NULL
    cdef floating *yp = &y[0, 0, 0, 0]
    cdef int64_t *ip = &indices[0, 0, 0, 0]
    for p in prange(planes, nogil=True, schedule='static', num_threads=nt):
        if p == 0:
            cycnn_note_team(REGION_MAX_FORWARD)
        if floating is float:
            cycnn_maxpool2d_fwd_f32(&g, xp + p * hw, yp + p * ohw, ip + p * ohw)
        else:
            cycnn_maxpool2d_fwd_f64(&g, xp + p * hw, yp + p * ohw, ip + p * ohw)


def max_pool2d_backward(const floating[:, :, :, ::1] dy, const int64_t[:, :, :, ::1] indices,
                        floating[:, :, :, ::1] dx, int n_threads):
    """dx <- scatter-add of dy at indices (per plane); returns the number of planes holding an
    index outside [0, H*W) (those elements are skipped; 0 means success)."""
    cdef Py_ssize_t planes = dx.shape[0] * dx.shape[1]
    cdef Py_ssize_t hw = dx.shape[2] * dx.shape[3], ohw = dy.shape[2] * dy.shape[3]
    cdef Py_ssize_t p
    cdef int nt
    cdef int bad = 0
    if planes == 0 or (hw == 0 and ohw == 0):
        return 0
    nt = max(1, n_threads)
    cdef const floating *dyp = &dy[0, 0, 0, 0] if ohw > 0 else NULL
    cdef const int64_t *ip = &indices[0, 0, 0, 0] if ohw > 0 else NULL
    cdef floating *dxp = &dx[0, 0, 0, 0] if hw > 0 else NULL
    for p in prange(planes, nogil=True, schedule='static', num_threads=nt):
        if p == 0:
            cycnn_note_team(REGION_MAX_BACKWARD)
        if floating is float:
            bad += cycnn_maxpool2d_bwd_f32(ohw, dyp + p * ohw, ip + p * ohw, hw, dxp + p * hw)
        else:
            bad += cycnn_maxpool2d_bwd_f64(ohw, dyp + p * ohw, ip + p * ohw, hw, dxp + p * hw)
    return bad


def avg_pool2d_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] y,
                       int kh, int kw, int sh, int sw, int pad_top, int pad_left,
                       int n_threads):
    """y <- average pooling of x, divisor kh*kw (count_include_pad=True)."""
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef Py_ssize_t hw = x.shape[2] * x.shape[3], ohw = y.shape[2] * y.shape[3]
    cdef cycnn_pool_geom g = _geom(x.shape[2], x.shape[3], y.shape[2], y.shape[3],
                                   kh, kw, sh, sw, pad_top, pad_left)
    cdef Py_ssize_t p
    cdef int nt
    if planes == 0 or ohw == 0:
        return
    nt = max(1, n_threads)
    cdef const floating *xp = &x[0, 0, 0, 0] if hw > 0 else NULL
    cdef floating *yp = &y[0, 0, 0, 0]
    for p in prange(planes, nogil=True, schedule='static', num_threads=nt):
        if p == 0:
            cycnn_note_team(REGION_AVG_FORWARD)
        if floating is float:
            cycnn_avgpool2d_fwd_f32(&g, xp + p * hw, yp + p * ohw)
        else:
            cycnn_avgpool2d_fwd_f64(&g, xp + p * hw, yp + p * ohw)


def avg_pool2d_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                        int kh, int kw, int sh, int sw, int pad_top, int pad_left,
                        int n_threads):
    """dx <- gradient of average pooling: each dy/(kh*kw) spread over its in-bounds window."""
    cdef Py_ssize_t planes = dx.shape[0] * dx.shape[1]
    cdef Py_ssize_t hw = dx.shape[2] * dx.shape[3], ohw = dy.shape[2] * dy.shape[3]
    cdef cycnn_pool_geom g = _geom(dx.shape[2], dx.shape[3], dy.shape[2], dy.shape[3],
                                   kh, kw, sh, sw, pad_top, pad_left)
    cdef Py_ssize_t p
    cdef int nt
    if planes == 0 or hw == 0:
        return
    nt = max(1, n_threads)
    cdef const floating *dyp = &dy[0, 0, 0, 0] if ohw > 0 else NULL
    cdef floating *dxp = &dx[0, 0, 0, 0]
    for p in prange(planes, nogil=True, schedule='static', num_threads=nt):
        if p == 0:
            cycnn_note_team(REGION_AVG_BACKWARD)
        if floating is float:
            cycnn_avgpool2d_bwd_f32(&g, dyp + p * ohw, dxp + p * hw)
        else:
            cycnn_avgpool2d_bwd_f64(&g, dyp + p * ohw, dxp + p * hw)
