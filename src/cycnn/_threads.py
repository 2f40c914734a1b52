"""The one place that decides how many threads the kernels use.

Default: OMP_NUM_THREADS when set (its first entry), else the CPUs this process may run on;
always 1 when the kernels were built without OpenMP. ``set_num_threads`` overrides it.
"""
import os

from ._kernels import _openmp

_num_threads = None


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _default_num_threads():
    if not _openmp.openmp_enabled():
        return 1
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return max(1, _usable_cpus())


def get_num_threads():
    """Number of threads the kernels use (1 when built without OpenMP)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_num_threads()
    return _num_threads


def set_num_threads(n):
    """Set the number of threads the kernels use; ``None`` restores the default.

    Without OpenMP the kernels always run on one thread, whatever is set here.
    """
    global _num_threads
    if n is None:
        _num_threads = _default_num_threads()
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > 4096:
        raise ValueError(f"n must be a positive int (at most 4096), got {n!r}")
    _num_threads = n if _openmp.openmp_enabled() else 1
