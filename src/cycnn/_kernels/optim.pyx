# Design: the Adam update fused into one pass over the parameters, so a step reads p, g, m, v
# and writes p, m, v once each, where NumPy needs about a dozen temporaries of the full size.
#
#   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
#   p -= step_size * m / (sqrt(v) / sqrt_bc2 + eps)
#
# with step_size = lr / (1 - b1**t) and sqrt_bc2 = sqrt(1 - b2**t) computed by the caller
# (cycnn.optim.Adam). The same operation order as the NumPy formula it replaces. Elementwise, so
# prange over elements (static schedule); flat C-contiguous arrays; no allocation.

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt


def adam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                double step_size, double b1, double b2, double eps, double sqrt_bc2,
                int n_threads):
    """One fused Adam step. p, m, v IN/OUT; g IN; all of the same length."""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef floating fb1 = <floating>b1, fb2 = <floating>b2
    cdef floating cb1 = <floating>(1 - b1), cb2 = <floating>(1 - b2)
    cdef floating fstep = <floating>step_size, feps = <floating>eps
    cdef floating fbc2 = <floating>sqrt_bc2
    cdef floating gi, mi, vi
    if g.shape[0] != n or m.shape[0] != n or v.shape[0] != n:
        raise ValueError("adam_update: p, g, m and v must have the same length")
    for i in prange(n, nogil=True, schedule='static', num_threads=n_threads if n > 65536 else 1):
        gi = g[i]
        mi = fb1 * m[i] + cb1 * gi
        vi = fb2 * v[i] + cb2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - fstep * mi / (sqrt(vi) / fbc2 + feps)
