# Design: the native steps of the inference plan (cycnn.models.plan), float32 only.
#
# What: a convolution (+ bias + ReLU/leaky ReLU) (+ a non-overlapping max/avg pool) as one
# step, a dense layer (+ bias + activation) as one step, and a plain pooling step, each on
# C-contiguous NCHW / (N, F) float32 arrays. Weights are packed ONCE (PackedWeights) into the
# GEMM micro-kernel's panel layout of one path (csrc/gemm/gemm.h, "pre-packed operands"); bias
# and activation run in the GEMM's epilogue while each output tile is in L1.
#
# Convolution loop: work items are (image, band of output rows). With enough images a band is
# the whole image; with fewer images than threads (or a batch that does not divide among the
# threads) every image is cut into n_threads bands, so batch 1 keeps every core busy. One item:
# im2col of the band (skipped for 1x1/stride 1/unpadded kernels) into the thread's column
# buffer, then C (K x rows*Wo) = Wpacked (K x CRS) . col with the epilogue. With a fused pool
# the band height is a multiple of the pool stride and the conv output goes to the thread's
# scratch (K x rows*Wo) and is pooled from there into the step's output, so the full-size conv
# output is never written to memory.
# Dense: y (N x units) = x (N x F) . Wpacked (F x units); threads split the units into whole
# NR-column panels, each thread running its own GEMM over all rows.
#
# Parallel: one prange per step (schedule='static') on the thread count the caller passes (the
# plan asks cycnn._threads.threads_for with each step's work() and parallel_units()).
# Memory: nothing allocated here while running. Per-thread scratch (columns, conv tile, pool
# indices) and GEMM workspaces come from the caller's arena (ScratchSpec says how much).
# No argument checks inside run(): the plan validated shapes once when it was built.

import numpy as np
cimport numpy as cnp

from cython.parallel cimport parallel, prange, threadid
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uintptr_t

cnp.import_array()

cdef extern from "gemm/gemm.h" nogil:
    size_t cycnn_gemm_workspace_size()
    ctypedef struct cycnn_epilogue:
        const float *bias
        int bias_mode
        int act
        float slope
    int CYCNN_BIAS_NONE, CYCNN_BIAS_ROWS, CYCNN_BIAS_COLS
    int CYCNN_ACT_NONE, CYCNN_ACT_RELU, CYCNN_ACT_LEAKY_RELU
    const void *cycnn_sgemm_path(const char *name)
    int cycnn_sgemm_path_mr(const void *path)
    int cycnn_sgemm_path_nr(const void *path)
    size_t cycnn_sgemm_packed_a_size(const void *path, int M, int K)
    size_t cycnn_sgemm_packed_b_size(const void *path, int K, int N)
    void cycnn_sgemm_pack_a(const void *path, int M, int K, const float *A, ptrdiff_t rsa,
                            ptrdiff_t csa, float *Ap)
    void cycnn_sgemm_pack_b(const void *path, int K, int N, const float *B, ptrdiff_t rsb,
                            ptrdiff_t csb, float *Bp)
    void cycnn_sgemm_apacked(const void *path, int M, int N, int K, const float *Ap,
                             const float *B, ptrdiff_t rsb, ptrdiff_t csb, float *C,
                             ptrdiff_t ldc, const cycnn_epilogue *ep, void *ws)
    void cycnn_sgemm_bpacked(const void *path, int M, int N, int K, const float *A,
                             ptrdiff_t rsa, ptrdiff_t csa, const float *Bp, float *C,
                             ptrdiff_t ldc, const cycnn_epilogue *ep, void *ws)

cdef extern from "conv/conv.h" nogil:
    void cycnn_im2col_f32(const float *x, int C, int H, int W, int R, int S, int sh, int sw,
                          int pt, int pl, int dh, int dw, int Ho, int Wo, float *col)

cdef extern from "pool/pool.h" nogil:
    ctypedef struct cycnn_pool_geom:
        int H, W, Ho, Wo, kh, kw, sh, sw, pad_top, pad_left
    void cycnn_maxpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y,
                                 int64_t *idx)
    void cycnn_avgpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y)

ACT_CODES = {None: 0, "relu": 1, "leaky_relu": 2}
POOL_CODES = {None: 0, "max": 1, "avg": 2}

def workspace_bytes():
    """Bytes of one GEMM workspace (64-byte aligned stride)."""
    return (cycnn_gemm_workspace_size() + 63) // 64 * 64


cdef inline float *_fptr(object arr):
    return <float *>cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef inline char *_aligned(object arr):
    cdef uintptr_t a = <uintptr_t>cnp.PyArray_DATA(<cnp.ndarray>arr)
    return <char *>((a + 63) // 64 * 64)


cdef class PackedWeights:
    """A weight matrix packed once for one GEMM path (and its bias), as the GEMM reads it.

    kind 'a': a conv kernel (K, C, R, S) as the A operand (K x C*R*S, MR-row panels);
    kind 'b': a dense kernel (units, features) as the B operand (features x units, NR-column
    panels). ``nbytes`` is what it holds."""
    cdef const void *path
    cdef readonly str path_name
    cdef readonly str kind
    cdef readonly int rows, depth          # A: M x K;  B: K x N (depth x rows)
    cdef object buf, bias_arr
    cdef float *data
    cdef float *bias

    def __init__(self, kernel, bias, str kind, str path_name):
        kernel = np.ascontiguousarray(kernel, dtype=np.float32)
        p = cycnn_sgemm_path(path_name.encode())
        if p == NULL:
            raise ValueError(f"this CPU cannot run the GEMM path {path_name!r}")
        self.path = p
        self.path_name = path_name
        self.kind = kind
        cdef size_t count
        cdef const float *src = <const float *>cnp.PyArray_DATA(kernel)
        self.rows = kernel.shape[0]
        self.depth = kernel.size // kernel.shape[0] if kernel.shape[0] else 0
        if kind == "a":
            count = cycnn_sgemm_packed_a_size(p, self.rows, self.depth)
        elif kind == "b":
            count = cycnn_sgemm_packed_b_size(p, self.depth, self.rows)
        else:
            raise ValueError(f"kind must be 'a' or 'b', got {kind!r}")
        self.buf = np.zeros(count + 16, np.float32)
        self.data = <float *>_aligned(self.buf)
        if kind == "a":      # A[i, p] = kernel[i].flat[p]
            cycnn_sgemm_pack_a(p, self.rows, self.depth, src, self.depth, 1, self.data)
        else:                # B[p, j] = kernel[j, p]
            cycnn_sgemm_pack_b(p, self.depth, self.rows, src, 1, self.depth, self.data)
        if bias is None:
            self.bias_arr = None
            self.bias = NULL
        else:
            self.bias_arr = np.ascontiguousarray(bias, dtype=np.float32).copy()
            self.bias = _fptr(self.bias_arr)

    @property
    def nbytes(self):
        return self.buf.nbytes + (0 if self.bias_arr is None else self.bias_arr.nbytes)


cdef class ConvStep:
    """conv2d (+ bias + activation) (+ non-overlapping pool) on a batch; see the design note."""
    cdef PackedWeights w
    cdef int C, H, W, K, R, S, sh, sw, pt, pl, dh, dw, Ho, Wo
    cdef int pool, ph, pw, Hp, Wp, h_used, direct
    cdef cycnn_epilogue ep
    cdef readonly tuple out_shape

    def __init__(self, PackedWeights w, tuple in_shape, tuple geometry, tuple out_hw,
                 str act, float slope, pool, tuple pool_hw):
        self.w = w
        self.C, self.H, self.W = in_shape
        self.K = w.rows
        self.R, self.S, self.sh, self.sw, self.pt, self.pl, self.dh, self.dw = geometry
        self.Ho, self.Wo = out_hw
        self.ep.bias = w.bias
        self.ep.bias_mode = CYCNN_BIAS_ROWS
        self.ep.act = ACT_CODES[act]
        self.ep.slope = slope
        self.pool = POOL_CODES[pool]
        self.ph, self.pw = pool_hw if pool else (1, 1)
        self.Hp, self.Wp = self.Ho // self.ph, self.Wo // self.pw
        self.h_used = self.Hp * self.ph        # conv rows a floor-mode pool reads
        self.direct = (self.R == 1 and self.S == 1 and self.sh == 1 and self.sw == 1 and
                       self.pt == 0 and self.pl == 0 and self.Ho == self.H and
                       self.Wo == self.W)
        self.out_shape = (self.K, self.Hp, self.Wp)

    cdef int _bands(self, int N, int nt) noexcept nogil:
        if nt <= 1 or (N % nt == 0) or N >= 4 * nt:
            return 1
        return nt

    cdef int _band_rows(self, int nb) noexcept nogil:
        cdef int units = self.Hp if self.pool else self.Ho
        return (units + nb - 1) // nb * self.ph

    def scratch(self, int N, int nt):
        """(floats per thread, int64 pool indices per thread) this step needs on up to nt
        threads (sized for a whole image, the largest band)."""
        cdef int rows = self._band_rows(1)
        cdef size_t crs = <size_t>self.C * self.R * self.S
        floats = 0 if self.direct else crs * rows * self.Wo
        if self.pool:
            floats += <size_t>self.K * rows * self.Wo + 16
        return floats, (rows // self.ph) * self.Wp if self.pool == 1 else 0

    def work(self, N):
        """Multiply-adds for a batch of N (a Python int: no overflow)."""
        return int(N) * self.K * self.Ho * self.Wo * self.C * self.R * self.S

    def parallel_units(self, int N):
        return None     # images, or bands of output rows when there are few images

    def run(self, x, y, scratch, idx, ws, int nt):
        """x (N, C, H, W) IN; y (N, K, Hp, Wp) OUT; scratch (nt, f) float32, idx (nt, i) int64
        and ws (GEMM workspaces) from the arena."""
        cdef int N = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        cdef int nb = self._bands(N, nt)
        cdef int band = self._band_rows(nb)
        cdef const float *xp = _fptr(x)
        cdef float *yp = _fptr(y)
        cdef float *sp = _fptr(scratch)
        cdef int64_t *ip = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>idx)
        cdef ptrdiff_t s_stride = cnp.PyArray_DIM(<cnp.ndarray>scratch, 1)
        cdef ptrdiff_t i_stride = cnp.PyArray_DIM(<cnp.ndarray>idx, 1)
        cdef char *wsp = _aligned(ws)
        cdef size_t ws_stride = workspace_bytes()
        cdef ptrdiff_t plane_x = <ptrdiff_t>self.C * self.H * self.W
        cdef ptrdiff_t L = <ptrdiff_t>self.Ho * self.Wo
        cdef ptrdiff_t plane_y = <ptrdiff_t>self.K * self.Hp * self.Wp
        cdef int crs = self.C * self.R * self.S
        cdef int item, n, b, oh0, rows, tid
        cdef ptrdiff_t width, col_floats
        cdef const float *colp
        cdef float *tile
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for item in prange(N * nb, schedule='static'):
                n = item // nb
                b = item % nb
                oh0 = b * band
                rows = min(self.h_used - oh0, band) if self.pool else min(self.Ho - oh0, band)
                if rows > 0:
                    width = <ptrdiff_t>rows * self.Wo
                    if self.direct:
                        colp = xp + n * plane_x + oh0 * self.W
                        col_floats = 0
                    else:
                        cycnn_im2col_f32(xp + n * plane_x, self.C, self.H, self.W, self.R,
                                         self.S, self.sh, self.sw, self.pt - oh0 * self.sh,
                                         self.pl, self.dh, self.dw, rows, self.Wo,
                                         sp + tid * s_stride)
                        colp = sp + tid * s_stride
                        col_floats = <ptrdiff_t>crs * width
                    if self.pool == 0:
                        cycnn_sgemm_apacked(self.w.path, self.K, <int>width, crs, self.w.data,
                                            colp, L if self.direct else width, 1,
                                            yp + n * plane_y + oh0 * self.Wo, L, &self.ep,
                                            wsp + tid * ws_stride)
                    else:
                        tile = sp + tid * s_stride + col_floats
                        cycnn_sgemm_apacked(self.w.path, self.K, <int>width, crs, self.w.data,
                                            colp, L if self.direct else width, 1,
                                            tile, width, &self.ep, wsp + tid * ws_stride)
                        _pool_band(self.pool, tile, rows, self.Wo, self.ph, self.pw,
                                   self.K, width,
                                   yp + n * plane_y + (oh0 // self.ph) * self.Wp,
                                   <ptrdiff_t>self.Hp * self.Wp, self.Wp,
                                   ip + tid * i_stride)


cdef void _pool_band(int pool, const float *tile, int rows, int Wo, int ph, int pw, int K,
                     ptrdiff_t width, float *out, ptrdiff_t out_plane, int Wp,
                     int64_t *idx) noexcept nogil:
    """Pool a band (K planes of rows x Wo, width apart) with a ph x pw window, stride the
    window, into out (K planes out_plane apart, the band's first pooled row)."""
    cdef cycnn_pool_geom g
    cdef int k
    g.H = rows
    g.W = Wo
    g.Ho = rows // ph
    g.Wo = Wp
    g.kh = ph
    g.kw = pw
    g.sh = ph
    g.sw = pw
    g.pad_top = 0
    g.pad_left = 0
    for k in range(K):
        if pool == 1:
            cycnn_maxpool2d_fwd_f32(&g, tile + k * width, out + k * out_plane, idx)
        else:
            cycnn_avgpool2d_fwd_f32(&g, tile + k * width, out + k * out_plane)


cdef class DenseStep:
    """y = act(x . kernel^T + bias) for x (N, F) on the packed kernel (F x units)."""
    cdef PackedWeights w
    cdef int F, units, nr
    cdef cycnn_epilogue ep
    cdef readonly tuple out_shape

    def __init__(self, PackedWeights w, str act, float slope):
        self.w = w
        self.F = w.depth
        self.units = w.rows
        self.nr = cycnn_sgemm_path_nr(w.path)
        self.ep.bias = w.bias
        self.ep.bias_mode = CYCNN_BIAS_COLS
        self.ep.act = ACT_CODES[act]
        self.ep.slope = slope
        self.out_shape = (self.units,)

    def scratch(self, int N, int nt):
        return 0, 0

    def work(self, N):
        return int(N) * self.F * self.units

    def parallel_units(self, int N):
        return (self.units + self.nr - 1) // self.nr     # NR-column panels

    def run(self, x, y, scratch, idx, ws, int nt):
        """x (N, F) IN; y (N, units) OUT; ws: GEMM workspaces."""
        cdef int N = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        cdef int panels = (self.units + self.nr - 1) // self.nr
        nt = max(1, min(nt, panels))
        cdef const float *xp = _fptr(x)
        cdef float *yp = _fptr(y)
        cdef char *wsp = _aligned(ws)
        cdef size_t ws_stride = workspace_bytes()
        cdef int t, s0, s1, j0, width
        cdef cycnn_epilogue eps[64]
        nt = min(nt, 64)
        for t in range(nt):       # per-thread epilogue: the bias starts at the block's column
            s0 = t * panels // nt
            eps[t] = self.ep
            if self.ep.bias != NULL:
                eps[t].bias = self.ep.bias + s0 * self.nr
        with nogil, parallel(num_threads=nt):
            for t in prange(nt, schedule='static'):
                s0 = t * panels // nt
                s1 = (t + 1) * panels // nt
                j0 = s0 * self.nr
                width = min(self.units, s1 * self.nr) - j0
                if width > 0:
                    cycnn_sgemm_bpacked(self.w.path, N, width, self.F, xp, self.F, 1,
                                        self.w.data + <ptrdiff_t>j0 * self.F, yp + j0,
                                        self.units, &eps[t], wsp + t * ws_stride)


cdef class PoolStep:
    """max/avg pooling of every (n, c) plane (any geometry the pool kernels take)."""
    cdef int pool, C, H, W
    cdef cycnn_pool_geom g
    cdef readonly tuple out_shape

    def __init__(self, pool, tuple in_shape, tuple window, tuple stride, tuple pads,
                 tuple out_hw):
        self.pool = POOL_CODES[pool]
        self.C, self.H, self.W = in_shape
        self.g.H, self.g.W = self.H, self.W
        self.g.Ho, self.g.Wo = out_hw
        self.g.kh, self.g.kw = window
        self.g.sh, self.g.sw = stride
        self.g.pad_top, self.g.pad_left = pads
        self.out_shape = (self.C,) + out_hw

    def scratch(self, int N, int nt):
        return 0, (self.g.Ho * self.g.Wo if self.pool == 1 else 0)

    def work(self, N):
        return int(N) * self.C * self.H * self.W

    def parallel_units(self, int N):
        return N * self.C

    def run(self, x, y, scratch, idx, ws, int nt):
        cdef int N = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        cdef const float *xp = _fptr(x)
        cdef float *yp = _fptr(y)
        cdef int64_t *ip = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>idx)
        cdef ptrdiff_t i_stride = cnp.PyArray_DIM(<cnp.ndarray>idx, 1)
        cdef ptrdiff_t hw = <ptrdiff_t>self.H * self.W, out = <ptrdiff_t>self.g.Ho * self.g.Wo
        cdef ptrdiff_t plane
        cdef int tid
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for plane in prange(<ptrdiff_t>N * self.C, schedule='static'):
                if self.pool == 1:
                    cycnn_maxpool2d_fwd_f32(&self.g, xp + plane * hw, yp + plane * out,
                                            ip + tid * i_stride)
                else:
                    cycnn_avgpool2d_fwd_f32(&self.g, xp + plane * hw, yp + plane * out)


def gemm_path_name(name):
    """The GEMM path a packing for ``name`` uses ('auto' resolves to the path in use in this
    extension), or None when this CPU cannot run it."""
    return None if cycnn_sgemm_path(name.encode()) == NULL else name


def packed_gemm(a, b, bias=None, bias_axis=0, act=None, float slope=0.01, packed="a",
                path="auto"):
    """Test/diagnostic entry: act(a @ b + bias) through the pre-packed GEMM with one operand
    packed (``packed`` 'a' or 'b') for ``path``. a (M, K), b (K, N) float32; bias (M,) with
    bias_axis 0 or (N,) with bias_axis 1. Returns a new (M, N) array."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"a (M, K) and b (K, N) must agree, got {a.shape} and {b.shape}")
    cdef int M = a.shape[0], K = a.shape[1], N = b.shape[1]
    c = np.empty((M, N), np.float32)
    ws = np.empty(workspace_bytes() + 64, np.uint8)
    cdef cycnn_epilogue ep
    ep.bias_mode = CYCNN_BIAS_ROWS if bias_axis == 0 else CYCNN_BIAS_COLS
    ep.act = ACT_CODES[act]
    ep.slope = slope
    bias_arr = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    if bias_arr is not None and bias_arr.shape != ((M,) if bias_axis == 0 else (N,)):
        raise ValueError(f"bias has shape {bias_arr.shape}, expected {(M,) if bias_axis == 0 else (N,)}")
    ep.bias = NULL if bias_arr is None else _fptr(bias_arr)
    cdef PackedWeights pw
    if packed == "a":
        pw = PackedWeights(a, None, "a", path)
        cycnn_sgemm_apacked(pw.path, M, N, K, pw.data, _fptr(b), N, 1, _fptr(c), N, &ep,
                            _aligned(ws))
    else:
        pw = PackedWeights(np.ascontiguousarray(b.T), None, "b", path)
        cycnn_sgemm_bpacked(pw.path, M, N, K, _fptr(a), K, 1, pw.data, _fptr(c), N, &ep,
                            _aligned(ws))
    return c
