# Design: the native steps of the inference plan (cycnn.models.plan), float32 only.
#
# What: a convolution (+ bias + ReLU/leaky ReLU) (+ a non-overlapping max/avg pool) as one
# step, a dense layer (+ bias + activation) as one step, and a plain pooling step, each on
# C-contiguous NCHW / (N, F) float32 arrays. Weights are packed ONCE (PackedWeights), for one
# GEMM path: conv filters either for the implicit-GEMM convolution of csrc/conv/sconv_igemm.c
# (cycnn_sconv_pack_weights), for the broadcast convolution of csrc/conv/sconv_direct.c
# (cycnn_sconv_direct_pack_weights) -- the kernels training's forward pass uses -- or, 5x5 and
# 3x3 at stride 1, transformed for the Winograd convolution of csrc/conv/swino.c
# (cycnn_swino_pack_weights; it reads the image in place, its workspace in the thread's
# scratch); the plan picks one per layer, models/plan.py conv_kernel -- dense kernels as the
# pre-packed B operand of the GEMM (csrc/gemm/gemm.h); bias
# and activation run in the kernels' epilogue while the output block is in cache.
#
# Convolution loop: work items are (image, band of output rows). With enough images a band is
# the whole image; with fewer images than threads (or a batch that does not divide among the
# threads) every image is cut into n_threads bands, so batch 1 keeps every core busy -- or,
# with the broadcast kernel when its 16-filter panels share out more evenly than the rows
# (7 pooled rows on 2 threads, 4 panels), into n_threads groups of whole panels. One item:
# copy the rows of the image the band reads into the thread's zero-padded buffer
# (cycnn_sconv_pad_image with the band's own top padding pt - oh0*sh and height), then either
# the implicit GEMM C (K x rows*Wo) = Wpacked (K x CRS) . B, its B panels packed straight from
# the padded buffer (no im2col matrix), with the epilogue (cycnn_sconv_igemm_act), or the
# broadcast kernel: tiles of 6 pixels x 16 filters, inputs broadcast from the padded buffer,
# stored filter-major with bias and ReLU (cycnn_sconv_direct; a leaky ReLU is one more pass
# over the block it wrote, still in cache). With a fused pool
# the band height is a multiple of the pool stride and the conv output goes to the thread's
# scratch (K x rows*Wo) and is pooled from there (cycnn_sconv_pool_tile: no indices, AVX2 for
# 2x2), while it is in L2, into the step's output, so the full-size conv output is never
# written to memory.
# Dense: y (N x units) = x (N x F) . Wpacked (F x units); threads split the units into whole
# NR-column panels, each thread running its own GEMM over all rows.
#
# Parallel: one prange per step on the thread count the caller passes (the plan asks
# cycnn._threads.threads_for with each step's work() and parallel_units()). The convolution's
# items are handed out dynamically (one at a time): on a shared machine a thread that starts
# late or runs on a busy core takes fewer images instead of holding up the step (reference
# network, batch 256, 2 threads, other work on the machine: conv2 step median 43.4 ms against
# 45.2 static, five alternating runs). Each item writes its own outputs only, so results do
# not depend on which thread ran it. Dense and pool steps split statically.
# Memory: nothing allocated here while running. Per-thread scratch (padded image or band, conv
# tile, indices of a plain max-pool step) and workspaces (workspace_bytes(): GEMM and both
# convolution kernels) come from the caller's arena (each step's scratch() says how much).
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

from cycnn._kernels._sconv cimport (
    cycnn_conv_geom, cycnn_sconv_packed_weights_floats, cycnn_sconv_pack_weights,
    cycnn_sconv_padded_floats, cycnn_sconv_pad_image, cycnn_sconv_workspace_bytes,
    cycnn_sconv_igemm_act, cycnn_sconv_pool_tile, cycnn_sconv_direct_packed_floats,
    cycnn_sconv_direct_pack_weights, cycnn_sconv_direct_workspace_bytes, cycnn_sconv_direct,
    cycnn_swino_tile, cycnn_swino_panel_floats, cycnn_swino_packed_floats,
    cycnn_swino_pack_weights, cycnn_swino_workspace_bytes, cycnn_swino)

cdef extern from "pool/pool.h" nogil:
    ctypedef struct cycnn_pool_geom:
        int H, W, Ho, Wo, kh, kw, sh, sw, pad_top, pad_left
    void cycnn_maxpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y,
                                 int64_t *idx)
    void cycnn_avgpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y)

ACT_CODES = {None: 0, "relu": 1, "leaky_relu": 2}
cdef enum:
    IGEMM = 0
    DIRECT = 1
    WINOGRAD = 2
POOL_CODES = {None: 0, "max": 1, "avg": 2}

cdef size_t _workspace_bytes():
    cdef size_t n = cycnn_gemm_workspace_size()
    cdef const void *p
    for name in (b"generic", b"avx2", b"avx512"):
        p = cycnn_sgemm_path(name)
        if p != NULL:
            n = max(n, cycnn_sconv_workspace_bytes(p))
    return (n + 63) // 64 * 64

cdef size_t _WS_BYTES = _workspace_bytes()


def workspace_bytes():
    """Bytes of one thread's workspace (64-byte aligned stride): enough for the packed GEMM
    and the implicit-GEMM convolution on every path this CPU has."""
    return _WS_BYTES


def direct_fits(crs):
    """True when the direct convolution's workspace for a depth of crs taps fits one
    workspace_bytes() slot."""
    cdef cycnn_conv_geom g
    g.C, g.R, g.S = crs, 1, 1
    return cycnn_sconv_direct_workspace_bytes(&g) <= _WS_BYTES


cdef inline float *_fptr(object arr):
    return <float *>cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef inline char *_aligned(object arr):
    cdef uintptr_t a = <uintptr_t>cnp.PyArray_DATA(<cnp.ndarray>arr)
    return <char *>((a + 63) // 64 * 64)


cdef class PackedWeights:
    """A weight matrix packed once for one GEMM path (and its bias), as the GEMM reads it.

    kind 'a': a matrix (M, K) as the A operand (MR-row panels);
    kind 'b': a dense kernel (units, features) as the B operand (features x units, NR-column
    panels);
    kind 'conv': a conv kernel (K, C, R, S) as the implicit-GEMM convolution's filter matrix
    (K x C*R*S, cycnn_sconv_pack_weights: MR-row panels, depth-blocked as the kernel walks
    them); kind 'direct': the same for the broadcast convolution (csrc/conv/sconv_direct.c,
    cycnn_sconv_direct_pack_weights: panels of 16 filters, tap-major); kind 'winograd': a 5x5
    or 3x3 conv kernel transformed for the Winograd convolution (csrc/conv/swino.c,
    cycnn_swino_pack_weights: 16-filter panels of 36 x C x 16). ``nbytes`` is what it holds."""
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
        elif kind == "conv":
            count = cycnn_sconv_packed_weights_floats(p, self.rows, self.depth)
        elif kind == "winograd":
            if (kernel.ndim != 4 or kernel.shape[2] != kernel.shape[3]
                    or kernel.shape[2] not in (3, 5)):
                raise ValueError(f"'winograd' needs a (K, C, 3, 3) or (K, C, 5, 5) kernel, got "
                                 f"{kernel.shape}")
            count = cycnn_swino_packed_floats(self.rows, kernel.shape[1])
        elif kind == "direct":
            if not direct_fits(self.depth):
                raise ValueError(f"a depth of {self.depth} taps is too deep for 'direct'")
            count = cycnn_sconv_direct_packed_floats(self.rows, self.depth)
        else:
            raise ValueError(f"kind must be 'a', 'b', 'conv', 'direct' or 'winograd', got "
                             f"{kind!r}")
        self.buf = np.zeros(count + 16, np.float32)
        self.data = <float *>_aligned(self.buf)
        if kind == "a":      # A[i, p] = kernel[i].flat[p]
            cycnn_sgemm_pack_a(p, self.rows, self.depth, src, self.depth, 1, self.data)
        elif kind == "conv":
            if self.depth > 0:
                cycnn_sconv_pack_weights(p, self.rows, self.depth, src, self.depth, 1,
                                         self.data)
        elif kind == "direct":
            cycnn_sconv_direct_pack_weights(self.rows, self.depth, src, self.data)
        elif kind == "winograd":
            cycnn_swino_pack_weights(self.rows, kernel.shape[1], kernel.shape[2], src, self.data)
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
    cdef cycnn_conv_geom g
    cdef int pool, ph, pw, Hq, Wq, h_used, act
    cdef int algo                            # IGEMM, DIRECT or WINOGRAD
    cdef readonly str kernel                 # 'igemm', 'direct' or 'winograd'
    cdef float slope
    cdef size_t pad_floats
    cdef readonly tuple out_shape

    def __init__(self, PackedWeights w, tuple in_shape, tuple geometry, tuple out_hw,
                 str act, float slope, pool, tuple pool_hw):
        if w.kind not in ("conv", "direct", "winograd"):
            raise ValueError(f"ConvStep needs weights packed as 'conv', 'direct' or 'winograd', "
                             f"got {w.kind!r}")
        self.algo = {"conv": IGEMM, "direct": DIRECT, "winograd": WINOGRAD}[w.kind]
        self.kernel = "igemm" if w.kind == "conv" else w.kind
        self.w = w
        self.g.C, self.g.H, self.g.W = in_shape
        self.g.K = w.rows
        (self.g.R, self.g.S, self.g.sh, self.g.sw, self.g.pt, self.g.pl, self.g.dh,
         self.g.dw) = geometry
        self.g.Ho, self.g.Wo = out_hw
        self.act = ACT_CODES[act]
        self.slope = slope
        self.pool = POOL_CODES[pool]
        self.ph, self.pw = pool_hw if pool else (1, 1)
        self.Hq, self.Wq = self.g.Ho // self.ph, self.g.Wo // self.pw     # pooled output
        self.h_used = self.Hq * self.ph        # conv rows a floor-mode pool reads
        if self.algo == WINOGRAD:   # its workspace (HWC copy, transforms) instead of the padding
            if cycnn_swino_tile(&self.g) == 0:
                raise ValueError("'winograd' runs 5x5 and 3x3 filters at stride 1, no dilation")
            self.pad_floats = cycnn_swino_workspace_bytes(&self.g) // 4 + 16
        else:
            self.pad_floats = cycnn_sconv_padded_floats(w.path, &self.g)  # whole image: largest
        self.out_shape = (self.g.K, self.Hq, self.Wq)

    cdef int _bands(self, int N, int nt) noexcept nogil:
        if nt <= 1 or (N % nt == 0) or N >= 4 * nt:
            return 1
        return nt

    cdef int _band_rows(self, int nb) noexcept nogil:
        cdef int units = self.Hq if self.pool else self.g.Ho
        return (units + nb - 1) // nb * self.ph

    def scratch(self, int N, int nt):
        """(floats per thread, int64 pool indices per thread) this step needs on up to nt
        threads: the padded image (or band) and, with a fused pool, the conv output of the
        band -- sized for a whole image, the largest band. (The fused pool keeps no indices.)"""
        cdef int rows = self._band_rows(1)
        floats = self.pad_floats + 16
        if self.pool:
            floats += <size_t>self.g.K * rows * self.g.Wo + 16
        return floats, 0

    def work(self, N):
        """Multiply-adds for a batch of N (a Python int: no overflow)."""
        return (int(N) * self.g.K * self.g.Ho * self.g.Wo * self.g.C * self.g.R *
                self.g.S)

    def parallel_units(self, int N):
        return None     # images, or bands of output rows when there are few images

    cdef int _groups(self, int N, int nt) noexcept nogil:
        """Filter groups per image: nt when few images would otherwise be cut into bands of
        rows that do not divide evenly (e.g. 7 pooled rows on 2 threads) while the broadcast
        kernel's 16-filter panels do; else 1 (bands, or whole images)."""
        cdef int units = self.Hq if self.pool else self.g.Ho
        cdef int panels = (self.g.K + 15) // 16
        if self.algo == IGEMM or self._bands(N, nt) == 1 or units <= 0:
            return 1
        # the busiest thread's share, in units of the ideal 1/nt: bands vs filter panels
        if (<long>((panels + nt - 1) // nt) * nt * units <
                <long>((units + nt - 1) // nt) * nt * panels):
            return nt
        return 1

    def work_split(self, int N, int nt):
        """How a batch of N is shared by nt threads: ('images', 1), ('bands', bands per
        image) or ('filters', groups per image). For tests."""
        if self._groups(N, nt) > 1:
            return ("filters", self._groups(N, nt))
        nb = self._bands(N, nt)
        return ("bands", nb) if nb > 1 else ("images", 1)

    cdef inline void _conv(self, const cycnn_conv_geom *gb, int k0, const float *padded,
                           ptrdiff_t width, float *y, ptrdiff_t ldy, void *ws) noexcept nogil:
        """Filters [k0, k0 + gb.K) (k0 a multiple of 16 when > 0: not the implicit GEMM).
        padded: the band's padded image, or for WINOGRAD the image itself (ws: its
        workspace)."""
        cdef const float *bias = NULL if self.w.bias == NULL else self.w.bias + k0
        cdef int k
        cdef ptrdiff_t j
        cdef float v
        cdef float *row
        if self.algo != IGEMM:   # their store has bias + ReLU; a leaky ReLU is a pass in cache
            if self.algo == DIRECT:
                cycnn_sconv_direct(self.w.path, gb, self.w.data + <ptrdiff_t>k0 * self.w.depth,
                                   padded, 0, width, bias, self.act == 1, y, ldy, ws)
            else:
                cycnn_swino(self.w.path, gb, self.w.data + <ptrdiff_t>(k0 // 16) *
                            cycnn_swino_panel_floats(gb.C), padded, bias, self.act == 1, y,
                            ldy, ws)
            if self.act == 2:
                for k in range(gb.K):
                    row = y + k * ldy
                    for j in range(width):
                        v = row[j]
                        row[j] = self.slope * v if v < 0 else v
        else:
            cycnn_sconv_igemm_act(self.w.path, gb, self.w.data, padded, 0, width, bias,
                                  self.act, self.slope, y, ldy, ws)

    cdef void _item(self, const float *x, int oh0, int rows, int k0, int k1, float *scratch,
                    float *y, void *ws) noexcept nogil:
        """One work item: output rows [oh0, oh0 + rows) of filters [k0, k1) of the image x
        (C, H, W) into y, the step's output for that image (or, with a pool, its pooled rows
        from oh0 // ph)."""
        cdef cycnn_conv_geom gb = self.g       # the band: its own top padding and height
        cdef float *tile
        cdef const float *image
        cdef ptrdiff_t width = <ptrdiff_t>rows * self.g.Wo
        gb.pt = self.g.pt - oh0 * self.g.sh
        gb.Ho = rows
        gb.K = k1 - k0
        if self.algo == WINOGRAD:      # reads x in place; scratch (aligned) is its workspace
            image = x
            ws = <void *>((<uintptr_t>scratch + 63) // 64 * 64)
        else:
            cycnn_sconv_pad_image(self.w.path, &gb, x, scratch)
            image = scratch
        if self.pool == 0:
            self._conv(&gb, k0, image, width,
                       y + (<ptrdiff_t>k0 * self.g.Ho + oh0) * self.g.Wo,
                       <ptrdiff_t>self.g.Ho * self.g.Wo, ws)
            return
        tile = scratch + (self.pad_floats + 15) // 16 * 16 + 16
        self._conv(&gb, k0, image, width, tile, width, ws)
        cycnn_sconv_pool_tile(self.w.path, self.pool, tile, rows, self.g.Wo, self.ph, self.pw,
                              k1 - k0, width,
                              y + (<ptrdiff_t>k0 * self.Hq + oh0 // self.ph) * self.Wq,
                              <ptrdiff_t>self.Hq * self.Wq, self.Wq)

    def run(self, x, y, scratch, idx, ws, int nt):
        """x (N, C, H, W) IN; y (N, K, Hq, Wq) OUT; scratch (nt, f) float32, idx (nt, i) int64
        and ws (workspaces) from the arena."""
        cdef int N = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        cdef int ng = self._groups(N, nt)
        cdef int nb = self._bands(N, nt) if ng == 1 else 1
        cdef int per = nb if ng == 1 else ng         # items per image
        cdef int band = self._band_rows(nb)
        cdef int last = self.h_used if self.pool else self.g.Ho
        cdef int panels = (self.g.K + 15) // 16
        cdef const float *xp = _fptr(x)
        cdef float *yp = _fptr(y)
        cdef float *sp = _fptr(scratch)
        cdef ptrdiff_t s_stride = cnp.PyArray_DIM(<cnp.ndarray>scratch, 1)
        cdef char *wsp = _aligned(ws)
        cdef size_t ws_stride = workspace_bytes()
        cdef ptrdiff_t plane_x = <ptrdiff_t>self.g.C * self.g.H * self.g.W
        cdef ptrdiff_t plane_y = <ptrdiff_t>self.g.K * self.Hq * self.Wq
        cdef int item, n, b, oh0, k0, k1, tid
        if self.g.K == 0 or N == 0 or last <= 0:
            return
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for item in prange(N * per, schedule='dynamic'):
                n = item // per
                b = item % per
                if ng > 1:          # filter group b: whole 16-filter panels
                    k0 = min(self.g.K, 16 * (b * panels // ng))
                    k1 = min(self.g.K, 16 * ((b + 1) * panels // ng))
                    oh0 = 0
                    if k1 > k0:
                        self._item(xp + n * plane_x, 0, last, k0, k1, sp + tid * s_stride,
                                   yp + n * plane_y, wsp + tid * ws_stride)
                else:
                    oh0 = b * band
                    if oh0 < last:
                        self._item(xp + n * plane_x, oh0, min(last - oh0, band), 0, self.g.K,
                                   sp + tid * s_stride, yp + n * plane_y,
                                   wsp + tid * ws_stride)


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

