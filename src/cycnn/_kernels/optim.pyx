# Design: one fused, parallel pass of an optimiser update over ALL parameter arrays of a model.
#
# A model holds a handful of parameter arrays of very different sizes (the reference network:
# 800, 32, 51200, 64, 3.1 M, 1000, 10000, 10). One call receives lists of the arrays -- params p,
# gradients g and the optimiser's per-parameter state s1, s2 -- and treats them as one virtual
# flat vector of T = sum(sizes) elements. The vector is cut into n_threads equal chunks (multiples
# of 16 elements); thread t walks the arrays that overlap its chunk and updates that range of
# each. So every thread gets the same work whatever the array sizes, a step reads and writes each
# array once, and there is one parallel region per step instead of one per array.
# Updates are elementwise, so the result does not depend on the thread count (deterministic).
#
# Formulas (torch.optim's; wd = weight_decay, folded into the gradient as L2, not AdamW):
#   every kind:   g' = g + wd * p
#   SGD           momentum 0:  p -= lr * g'
#                 else:        s1 = momentum * s1 + g'         (s1 starts at 0, so step 1 gives g')
#                              p -= lr * (g' + momentum * s1 if nesterov else s1)
#   Adam          s1 = b1 * s1 + (1 - b1) * g';  s2 = b2 * s2 + (1 - b2) * g'^2
#                 p -= step_size * s1 / (sqrt(s2) / sqrt_bc2 + eps)
#                 (step_size = lr / (1 - b1^t) and sqrt_bc2 = sqrt(1 - b2^t), from the caller)
#   RMSprop       s1 = rho * s1 + (1 - rho) * g'^2;  d = g' / (sqrt(s1) + eps)
#                 momentum 0: p -= lr * d;  else s2 = momentum * s2 + d;  p -= lr * s2
# Every array of a call has the same dtype (float32 or float64, computed in that dtype, as
# torch.optim does) and is C-contiguous; p, s1, s2 are updated in place (IN/OUT), g is IN.
# Threads: the n_threads given (cycnn._threads decides: 1 for small models); the region reports
# its team (last_parallel_region).
# Memory: three pointer tables of len(params) entries, allocated before the parallel region.

from cython cimport floating
from cython.parallel cimport prange
from libc.stddef cimport ptrdiff_t
from libc.math cimport sqrt, sqrtf
from libc.stdlib cimport free, malloc

import numpy as np

DEF SGD = 0
DEF ADAM = 1
DEF RMSPROP = 2
KINDS = {"sgd": SGD, "adam": ADAM, "rmsprop": RMSPROP}

cdef extern from "optim/adam.h" nogil:
    ctypedef struct cycnn_adam_hyper:
        float b1, c1, b2, c2, step_size, sqrt_bc2, eps, wd
        int has_wd
    void cycnn_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                        const cycnn_adam_hyper *h)
    int cycnn_adam_f32_path()
    void cycnn_adam_f32_set_path(int allow_avx2)

cdef extern from "team.h" nogil:
    void cycnn_note_team(int region)
    int cycnn_last_team()


def adam_path():
    """'avx2' or 'generic': the build of the float32 Adam loop that update() runs now."""
    return "avx2" if cycnn_adam_f32_path() else "generic"


def set_adam_avx2(bint allowed):
    """Tests: False forces the portable float32 Adam loop, True restores the automatic
    choice (AVX2+FMA where the CPU has them). Returns the previous setting."""
    old = adam_path() == "avx2"
    cycnn_adam_f32_set_path(allowed)
    return old


def last_parallel_region():
    """(name, team size) of this module's latest parallel loop; (None, 0) before the first."""
    cdef int r = cycnn_last_team()
    return ("update" if r >> 16 == 1 else None), r & 0xffff


cdef struct Hyper:
    double lr, a, b, eps, c, wd, momentum
    int nesterov, has_wd


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)     # stays in float: the loop vectorises without widening to double
    else:
        return sqrt(x)


cdef inline void _range(int kind, floating *p, const floating *g, floating *s1, floating *s2,
                        Py_ssize_t n, Hyper *h) noexcept nogil:
    """The update of elements [0, n) of one array (pointers already offset)."""
    cdef Py_ssize_t i
    cdef floating wd = <floating>h.wd, lr = <floating>h.lr, eps = <floating>h.eps
    cdef floating a = <floating>h.a, b = <floating>h.b, c = <floating>h.c
    cdef floating ca = <floating>(1 - h.a), cb = <floating>(1 - h.b)
    cdef floating mom = <floating>h.momentum
    cdef floating gi, mi, vi, di
    cdef cycnn_adam_hyper ah
    if floating is float:
        if kind == ADAM:   # float32 Adam: the C loop (csrc/optim), AVX2 where the CPU has it
            ah.b1, ah.c1, ah.b2, ah.c2 = h.a, 1 - h.a, h.b, 1 - h.b
            ah.step_size, ah.sqrt_bc2 = h.lr, h.c
            ah.eps, ah.wd, ah.has_wd = h.eps, h.wd, h.has_wd
            cycnn_adam_f32(p, g, s1, s2, n, &ah)
            return
    if kind == ADAM:   # a = b1, b = b2, lr = step_size, c = sqrt_bc2
        if h.has_wd:
            for i in range(n):
                gi = g[i] + wd * p[i]
                mi = a * s1[i] + ca * gi
                vi = b * s2[i] + cb * gi * gi
                s1[i] = mi
                s2[i] = vi
                p[i] = p[i] - lr * mi / (_sqrt(vi) / c + eps)
        else:
            for i in range(n):
                gi = g[i]
                mi = a * s1[i] + ca * gi
                vi = b * s2[i] + cb * gi * gi
                s1[i] = mi
                s2[i] = vi
                p[i] = p[i] - lr * mi / (_sqrt(vi) / c + eps)
    elif kind == SGD:
        if mom == 0:
            for i in range(n):
                p[i] = p[i] - lr * (g[i] + wd * p[i])
        elif h.nesterov:
            for i in range(n):
                gi = g[i] + wd * p[i]
                mi = mom * s1[i] + gi
                s1[i] = mi
                p[i] = p[i] - lr * (gi + mom * mi)
        else:
            for i in range(n):
                gi = g[i] + wd * p[i]
                mi = mom * s1[i] + gi
                s1[i] = mi
                p[i] = p[i] - lr * mi
    elif mom == 0:     # RMSPROP: a = rho
        for i in range(n):
            gi = g[i] + wd * p[i]
            vi = a * s1[i] + ca * gi * gi
            s1[i] = vi
            p[i] = p[i] - lr * (gi / (_sqrt(vi) + eps))
    else:
        for i in range(n):
            gi = g[i] + wd * p[i]
            vi = a * s1[i] + ca * gi * gi
            s1[i] = vi
            di = mom * s2[i] + gi / (_sqrt(vi) + eps)
            s2[i] = di
            p[i] = p[i] - lr * di


cdef void _run(int kind, void **pp, void **gp, void **s1p, void **s2p, Py_ssize_t *start,
               Py_ssize_t n_arrays, Hyper *h, int nt, floating dummy) noexcept nogil:
    """Thread t updates elements [t*chunk, (t+1)*chunk) of the virtual concatenation;
    start[i] is the offset of array i in it (start[n_arrays] = total)."""
    cdef Py_ssize_t total = start[n_arrays]
    cdef Py_ssize_t chunk = ((total + nt - 1) // nt + 15) // 16 * 16
    cdef Py_ssize_t lo, hi, i, a0, a1, off
    cdef int t
    for t in prange(nt, schedule='static', chunksize=1, num_threads=nt):
        if t == 0:
            cycnn_note_team(1)
        lo = t * chunk
        hi = min(total, lo + chunk)
        for i in range(n_arrays):
            a0 = max(lo, start[i])
            a1 = min(hi, start[i + 1])
            if a0 < a1:
                off = a0 - start[i]
                _range(kind, <floating *>pp[i] + off, <const floating *>gp[i] + off,
                       <floating *>s1p[i] + off if s1p[i] != NULL else NULL,
                       <floating *>s2p[i] + off if s2p[i] != NULL else NULL,
                       a1 - a0, h)


cdef void *_address(arr, bint writable, dtype, str what, Py_ssize_t i,
                    Py_ssize_t size) except *:
    """Data pointer of a C-contiguous array of ``dtype`` with ``size`` elements."""
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or not arr.flags.c_contiguous \
            or (writable and not arr.flags.writeable) or arr.size != size:
        raise ValueError(f"{what}[{i}] must be a C-contiguous{' writable' if writable else ''} "
                         f"{np.dtype(dtype).name} array of {size} elements, got "
                         f"{type(arr).__name__} {getattr(arr, 'dtype', '')} "
                         f"{getattr(arr, 'shape', '')}")
    return <void *><size_t>arr.__array_interface__["data"][0]


def update(str kind, list params, list grads, list state1, list state2, double lr, double a,
           double b, double eps, double c, double weight_decay, double momentum, bint nesterov,
           int n_threads):
    """One update of every array of ``params`` (IN/OUT) from ``grads`` (IN) and the state lists
    ``state1``/``state2`` (IN/OUT; an empty list when the kind does not use that slot), as in
    the design note. All arrays share one dtype (float32 or float64) and are C-contiguous."""
    cdef int k = KINDS[kind]
    cdef Py_ssize_t n = len(params), i, size
    if len(grads) != n:
        raise ValueError(f"grads must hold {n} arrays, got {len(grads)}")
    for lst, what in ((state1, "state1"), (state2, "state2")):
        if len(lst) != 0 and len(lst) != n:
            raise ValueError(f"{what} must hold 0 or {n} arrays, got {len(lst)}")
    if n == 0:
        return
    dtype = params[0].dtype if isinstance(params[0], np.ndarray) else None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"params must be float32 or float64 arrays, got {dtype}")
    cdef Hyper h
    h.lr, h.a, h.b, h.eps, h.c = lr, a, b, eps, c
    h.wd, h.momentum, h.nesterov, h.has_wd = weight_decay, momentum, nesterov, weight_decay != 0
    cdef bint use1 = len(state1) == n, use2 = len(state2) == n
    cdef bint single = dtype == np.float32
    cdef int nt
    if (k == ADAM and not (use1 and use2)) or (k == SGD and momentum != 0 and not use1) \
            or (k == RMSPROP and not use1) or (k == RMSPROP and momentum != 0 and not use2):
        raise ValueError(f"{kind} needs its state arrays")
    cdef void **table = <void **>malloc(4 * n * sizeof(void *))
    cdef Py_ssize_t *start = <Py_ssize_t *>malloc((n + 1) * sizeof(Py_ssize_t))
    if table == NULL or start == NULL:
        free(table)
        free(start)
        raise MemoryError()
    try:
        start[0] = 0
        for i in range(n):
            size = params[i].size if isinstance(params[i], np.ndarray) else 0
            table[i] = _address(params[i], True, dtype, "params", i, size)
            table[n + i] = _address(grads[i], False, dtype, "grads", i, size)
            table[2 * n + i] = _address(state1[i], True, dtype, "state1", i, size) if use1 \
                else NULL
            table[3 * n + i] = _address(state2[i], True, dtype, "state2", i, size) if use2 \
                else NULL
            start[i + 1] = start[i] + size
        nt = max(1, n_threads)
        with nogil:
            if single:
                _run(k, table, table + n, table + 2 * n, table + 3 * n, start, n, &h, nt,
                     <float>0)
            else:
                _run(k, table, table + n, table + 2 * n, table + 3 * n, start, n, &h, nt,
                     <double>0)
    finally:
        free(table)
        free(start)
