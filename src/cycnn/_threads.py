"""The one place that decides how many threads the kernels use.

Policy (as scikit-learn's ``_openmp_effective_n_threads``, plus an explicit override):

* ``set_num_threads(n)`` wins while it is in force; ``set_num_threads(None)`` ends it.
* Otherwise the kernels follow OpenMP's own setting, ``omp_get_max_threads()`` of the calling
  thread: ``OMP_NUM_THREADS`` when set, else the CPUs this process may run on, changed at run time
  by ``omp_set_num_threads`` -- which is what ``threadpoolctl.threadpool_limits`` calls, so
  ``with threadpool_limits(1): ...`` runs cycnn on one thread as it does scikit-learn and NumPy.
* Always 1 when the kernels were built without OpenMP.

Every kernel takes ``n_threads`` from :func:`threads_for`, which also decides when a call has too
little work to pay for a parallel region (``MIN_PARALLEL_WORK``, in multiply-adds or element
visits) and caps the count at the number of independent pieces of work. The kernels use the
count they are given and decide nothing themselves. :func:`force_parallel` drops the work
threshold so tests reach the parallel paths with small inputs; each kernel module's
``last_parallel_region()`` reports the team OpenMP really ran its latest parallel region on.
"""
import contextlib
import threading

from ._kernels import _openmp

# Work (multiply-adds, or element visits for memory-bound kernels) below which a parallel
# region costs more than it saves (measured: fork/join of a 2-thread team is ~5-20 us).
MIN_PARALLEL_WORK = 1 << 18
_MAX_THREADS = 4096

_explicit = None           # set_num_threads(n), or None to follow OpenMP
_min_work = MIN_PARALLEL_WORK
_lock = threading.Lock()


def get_num_threads():
    """Number of threads the kernels use: ``set_num_threads``'s value while one is in force,
    else OpenMP's ``omp_get_max_threads()`` (``OMP_NUM_THREADS``, ``omp_set_num_threads``,
    threadpoolctl), 1 when built without OpenMP."""
    n = _explicit
    if n is None:
        n = _openmp.openmp_max_threads()
    return max(1, min(n, _MAX_THREADS))


def set_num_threads(n):
    """Run the kernels on ``n`` threads from now on, whatever OpenMP's setting; ``None`` goes
    back to following OpenMP (``OMP_NUM_THREADS``, ``omp_set_num_threads``, threadpoolctl).

    Without OpenMP the kernels always run on one thread, whatever is set here.
    """
    global _explicit
    if n is None:
        _explicit = None
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > _MAX_THREADS:
        raise ValueError(f"n must be a positive int (at most {_MAX_THREADS}) or None, got {n!r}")
    _explicit = n if _openmp.openmp_enabled() else 1


def threads_for(work, units=None):
    """Threads for one kernel call: 1 when ``work`` is below the parallel threshold, else
    :func:`get_num_threads`, at most ``units`` (the number of independent pieces the kernel
    splits the work into: images, planes, column blocks) when given."""
    if work < _min_work:
        return 1
    n = get_num_threads()
    if units is not None and units < n:
        n = max(1, units)
    return n


@contextlib.contextmanager
def force_parallel():
    """Within the block the work threshold is 0: every call runs on :func:`get_num_threads`
    threads (capped by its pieces of work). For tests: small inputs reach the parallel paths.
    Process-wide; not meant to be nested from several Python threads at once."""
    global _min_work
    with _lock:
        saved, _min_work = _min_work, 0
    try:
        yield
    finally:
        with _lock:
            _min_work = saved
