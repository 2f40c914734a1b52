# Design: element-wise activation kernels of the training path, one pass over flat arrays.
#
#   relu_forward   y[i]  = x[i] < 0 ? 0 : x[i]          (y may be x: in place; NaN stays NaN)
#   relu_backward  dx[i] = y[i] > 0 ? dy[i] : 0          (y is the forward's output; dx may be dy)
#
# NumPy needs two or three passes and temporaries for the backward (a bool mask, a product, a
# cast); here each element is read and written once. The arrays are cut into one contiguous
# chunk per thread (prange over the chunks, static schedule); each chunk is a plain loop over
# raw pointers that the compiler turns into vector selects (no branch per element). Elementwise,
# so the result does not depend on the thread count. Threads: the n_threads given (cycnn._threads
# decides: 1 for small arrays); each region reports its team (last_parallel_region).
# Flat C-contiguous 1-D views (the caller reshapes); no allocation.

from cython cimport floating
from cython.parallel cimport prange

cdef extern from "team.h" nogil:
    void cycnn_note_team(int region)
    int cycnn_last_team()

_REGIONS = {1: "relu_forward", 2: "relu_backward"}


def last_parallel_region():
    """(name, team size) of this module's latest parallel loop; (None, 0) before the first."""
    cdef int r = cycnn_last_team()
    return _REGIONS.get(r >> 16), r & 0xffff


cdef inline void _relu(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        y[i] = 0 if v < 0 else v


cdef inline void _relu_grad(const floating *dy, const floating *y, floating *dx,
                            Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating g
    for i in range(n):
        g = dy[i]
        dx[i] = g if y[i] > 0 else 0


cdef inline int _threads(Py_ssize_t n, int n_threads) noexcept nogil:
    """At most one thread per 16 elements (the chunk granularity)."""
    return max(1, min(n_threads, <int>min(<Py_ssize_t>n_threads, (n + 15) // 16)))


cdef void _run(int op, const floating *a, const floating *b, floating *out, Py_ssize_t n,
               int n_threads) noexcept nogil:
    """op 1: out = relu(a); op 2: out = relu_grad(dy=a, y=b). Thread t takes the t-th chunk."""
    cdef int t, nt = _threads(n, n_threads)
    cdef Py_ssize_t chunk = ((n + nt - 1) // nt + 15) // 16 * 16, lo
    for t in prange(nt, schedule='static', chunksize=1, num_threads=nt):
        if t == 0:
            cycnn_note_team(op)
        lo = t * chunk
        if lo < n:
            if op == 1:
                _relu(a + lo, out + lo, min(chunk, n - lo))
            else:
                _relu_grad(a + lo, b + lo, out + lo, min(chunk, n - lo))


def relu_forward(const floating[::1] x, floating[::1] y, int n_threads):
    """y = max(x, 0). x IN, y OUT (may be the same memory as x)."""
    cdef Py_ssize_t n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"relu_forward: x has {n} elements, y {y.shape[0]}")
    if n:
        with nogil:
            _run(1, &x[0], &x[0], &y[0], n, n_threads)


def relu_backward(const floating[::1] dy, const floating[::1] y, floating[::1] dx, int n_threads):
    """dx = dy where y > 0, else 0. dy, y IN; dx OUT (may be the same memory as dy)."""
    cdef Py_ssize_t n = dy.shape[0]
    if y.shape[0] != n or dx.shape[0] != n:
        raise ValueError(f"relu_backward: dy, y and dx must have the same size, got {n}, "
                         f"{y.shape[0]} and {dx.shape[0]}")
    if n:
        with nogil:
            _run(2, &dy[0], &y[0], &dx[0], n, n_threads)
