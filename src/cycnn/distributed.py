"""Data-parallel training over MPI (mpi4py), as Horovod and PyDTNN do it.

    from cycnn import distributed
    distributed.init()          # join the MPI world; after this, model.fit is data-parallel
    model.fit(x, y, batch_size=256, ...)        # 256 = the global batch, over all ranks

Run with ``mpiexec -n 2 python train.py`` (``pip install "cycnn[mpi]"``; on one machine
``pip install mpi4py mpich`` brings an MPI and its ``mpiexec`` with no system packages).

How a step works (design)
-------------------------
* Every rank holds the whole dataset and the whole model. Rank 0's shuffling order is broadcast
  at the start of every epoch, so the global batches are the ones a single process with the same
  seed would draw; rank ``r`` of ``P`` trains on its contiguous share of each global batch
  (``np.array_split`` of the batch's rows).
* Forward and loss run locally. Then one small allreduce carries (loss * rows, correct * rows,
  rows, failed): every rank learns the global loss and accuracy (so all print and log the same
  numbers and take the same EarlyStopping decisions) and whether any rank failed (an exception
  in forward or loss, or a NaN/inf loss). A failure ends the step on every rank with the same
  error instead of leaving the others waiting in the gradient allreduce.
* Backward runs locally; the gradients are copied into one flat float buffer, scaled by
  ``rows / global rows`` and summed with ONE in-place allreduce, so every rank applies the mean
  gradient of the global batch, exactly as a single process would (up to float rounding: the
  sum is split differently). The optimizer then runs on identical inputs on every rank, which
  keeps the weights bit-identical (with 2 ranks the sum a+b == b+a exactly; MPI implementations
  give every rank the same reduction result).
* Weights, buffers and optimizer state are broadcast from rank 0 when ``fit`` starts. BatchNorm
  running statistics are computed per rank from its share of each batch and averaged over the
  ranks at the end of every epoch, so saved models do not depend on the rank.
* Validation and ``evaluate``: each rank evaluates its share of the rows; sums are reduced.
* Only rank 0 prints progress and writes files (``Model.save``, ``ModelCheckpoint``,
  ``CSVLogger``); other ranks skip them.
* An exception that escapes on any rank (e.g. in a callback) prints its traceback and calls
  ``MPI_Abort``, which ends every rank: nobody hangs waiting for a dead peer.
* Threads: unless the user chose a count (``cycnn.set_num_threads`` or ``OMP_NUM_THREADS``),
  each rank takes its share of the machine's CPUs: usable CPUs // ranks on this node.
"""
import os
import sys
import time
import traceback

import numpy as np

__all__ = ["init", "is_initialized", "rank", "size", "is_main", "barrier", "allreduce_mean",
           "shutdown"]

_comm = None            # the communicator once init() has run
_helper = None          # its DataParallel helper (kept: it holds the flat gradient buffer)
_failed_everywhere = False   # a step failure every rank agreed on (each raises it; no abort)
_previous_hook = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("cycnn.distributed needs mpi4py: pip install 'cycnn[mpi]' (and, without "
                          "a system MPI, pip install mpich)") from exc
    return MPI


def init(comm=None, set_threads=True):
    """Join the MPI world (``comm``: an mpi4py communicator, default COMM_WORLD). Idempotent.

    After it, ``Model.fit`` / ``evaluate`` run data-parallel over the ranks of ``comm``.
    ``set_threads``: give each rank its share of this node's CPUs unless the user chose a
    thread count (``cycnn.set_num_threads`` or ``OMP_NUM_THREADS``).
    Returns the communicator.
    """
    global _comm, _helper, _previous_hook
    MPI = _mpi()
    if comm is None:
        comm = MPI.COMM_WORLD
    if _comm is not None:
        return _comm
    _comm = comm
    _helper = DataParallel(comm) if comm.Get_size() > 1 else None
    if set_threads:
        _share_cores(comm, MPI)
    if comm.Get_size() > 1:
        _previous_hook = sys.excepthook
        sys.excepthook = _abort_on_uncaught
    return comm


def shutdown():
    """Leave data-parallel mode (fit runs single-process again); for tests and notebooks."""
    global _comm, _helper, _previous_hook
    _comm = _helper = None
    if _previous_hook is not None:
        sys.excepthook = _previous_hook
        _previous_hook = None


def _share_cores(comm, MPI):
    from . import _threads
    if _threads._explicit is not None or os.environ.get("OMP_NUM_THREADS"):
        return
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        per_node = local.Get_size()
    finally:
        local.Free()
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    _threads.set_num_threads(max(1, cpus // per_node))


def _abort_on_uncaught(kind, value, tb):
    """sys.excepthook under MPI: print the error with the rank, then end every rank -- unless
    every rank already knows (a failed step: each raises it and exits by itself; aborting
    here could kill the others before they have said why)."""
    if _failed_everywhere:
        traceback.print_exception(kind, value, tb)
        return
    # the error itself on the first line, the traceback in one write, a moment for mpiexec to
    # forward them: Abort kills the ranks at once, and a traceback written line by line was seen
    # cut short before its last line (the error) reached the terminal
    summary = "".join(traceback.format_exception_only(kind, value)).strip()
    sys.stderr.write(f"cycnn.distributed: uncaught exception on rank {rank()} of {size()} "
                     f"({summary}); aborting all ranks\n"
                     + "".join(traceback.format_exception(kind, value, tb)))
    sys.stderr.flush()
    time.sleep(0.2)
    _comm.Abort(1)


def is_initialized():
    """True after :func:`init` (and before :func:`shutdown`)."""
    return _comm is not None


def rank():
    """This process's rank (0 when not initialized)."""
    return _comm.Get_rank() if _comm is not None else 0


def size():
    """Number of ranks (1 when not initialized)."""
    return _comm.Get_size() if _comm is not None else 1


def is_main():
    """True on rank 0 (and when not initialized): the rank that prints and writes files."""
    return rank() == 0


def barrier():
    """Wait for every rank (no-op when not initialized)."""
    if _comm is not None:
        _comm.Barrier()


def allreduce_mean(values):
    """Mean over the ranks of a float array (a new float64 array; identity when single)."""
    values = np.array(values, dtype=np.float64)
    if active() is None:
        return values
    out = np.empty_like(values)
    _comm.Allreduce(values, out, op=_mpi().SUM)
    return out / size()


def active():
    """The :class:`DataParallel` helper when training should be data-parallel, else None."""
    return _helper


class RankFailed(RuntimeError):
    """Raised on every rank when a step failed on some rank."""


class DataParallel:
    """What ``Model.fit`` / ``evaluate`` call when running on several ranks (see module doc)."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._flat = None
        self.comm_seconds = 0.0     # time spent in the gradient allreduce (benchmarks read it)
        self.steps = 0

    # -- start of training -------------------------------------------------------------------
    def broadcast_model(self, model):
        """Rank 0's weights, buffers and optimizer state on every rank."""
        for layer in model.layers:
            for store in (layer.params, layer.buffers):
                for arr in store.values():
                    if arr.flags.c_contiguous:
                        self.comm.Bcast(arr, root=0)
                    else:
                        tmp = np.ascontiguousarray(arr)
                        self.comm.Bcast(tmp, root=0)
                        arr[...] = tmp
        if model.optimizer is not None:
            state = self.comm.bcast(model.optimizer.state_dict() if self.rank == 0 else None,
                                    root=0)
            model.optimizer.load_state_dict(state)
        model.mark_weights_changed()

    def permutation(self, rng, n):
        """Rank 0's shuffling order of n rows, on every rank."""
        order = rng.permutation(n) if self.rank == 0 else np.empty(n, dtype=np.int64)
        order = np.ascontiguousarray(order, dtype=np.int64)
        self.comm.Bcast(order, root=0)
        return order

    def share(self, start, stop):
        """This rank's rows [a, b) of the global rows [start, stop)."""
        n = stop - start
        base, extra = divmod(n, self.size)
        a = start + self.rank * base + min(self.rank, extra)
        return a, a + base + (1 if self.rank < extra else 0)

    # -- one step ------------------------------------------------------------------------------
    def agree(self, sums, rows, error):
        """Sum ``sums`` (floats) and ``rows`` over the ranks and check nobody failed.

        ``error``: the exception this rank hit (or None). Raises on every rank when any rank
        failed; returns (global sums, global rows)."""
        global _failed_everywhere
        MPI = _mpi()
        local = np.array(list(sums) + [rows, 1.0 if error is not None else 0.0], np.float64)
        total = np.empty_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)
        if total[-1] > 0:
            _failed_everywhere = True
            messages = self.comm.allgather(None if error is None
                                           else f"{type(error).__name__}: {error}")
            if error is not None:
                raise error
            failed = "; ".join(f"rank {r}: {m}" for r, m in enumerate(messages) if m)
            raise RankFailed(f"training stopped on every rank because another rank failed "
                             f"({failed})")
        return total[:-2], int(total[-2])

    def reduce_grads(self, grads, rows, total_rows):
        """Mean gradient of the global batch, from this rank's mean over its ``rows``: one
        allreduce of a flat buffer. Returns views of that buffer shaped like ``grads``."""
        sizes = [g.size for g in grads]
        dtype = np.result_type(*grads)
        n = sum(sizes)
        if self._flat is None or self._flat.size != n or self._flat.dtype != dtype:
            self._flat = np.empty(n, dtype)
        flat = self._flat
        weight = rows / total_rows
        views, offset = [], 0
        for g, k in zip(grads, sizes):
            view = flat[offset:offset + k]
            np.multiply(g.reshape(-1), weight, out=view, casting="unsafe")
            views.append(view.reshape(g.shape))
            offset += k
        t0 = time.perf_counter()
        self.comm.Allreduce(_mpi().IN_PLACE, flat, op=_mpi().SUM)
        self.comm_seconds += time.perf_counter() - t0
        self.steps += 1
        return views

    def average_buffers(self, model):
        """Average every buffer (BatchNorm running statistics) over the ranks."""
        MPI = _mpi()
        for layer in model.layers:
            for arr in layer.buffers.values():
                if arr.dtype.kind != "f":
                    continue
                tmp = np.ascontiguousarray(arr)
                self.comm.Allreduce(MPI.IN_PLACE, tmp, op=MPI.SUM)
                arr[...] = tmp / self.size
