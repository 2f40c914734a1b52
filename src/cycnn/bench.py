"""Benchmark cycnn's kernels against PyTorch (when importable) and the NumPy reference.

Run ``python -m cycnn.bench --help``. Only cycnn and NumPy are needed (it works from an installed
wheel); PyTorch is an optional contender.

Method: every contender (cycnn, torch, the NumPy reference) runs in its OWN worker process
(``python -m cycnn.bench --worker IMPL``; two OpenMP runtimes in one process spin against each
other), one process per (contender, thread count), so each brings its own thread pool and none is
slowed by another's. All thread counts of a (shape, op) are timed in ONE rotation: the workers warm
up (their warm-up outputs are compared), then the parent gives them turns -- cycnn@1 torch@1 cycnn@2
torch@2 ..., the next round starting one further on -- each turn a short pause, one untimed call
(the turn before left the caches to another contender and, on a virtual machine, an idle core to
wake) and a block of timed calls, so that only one contender computes at any moment and a host that
slows down for a while slows them all alike. The reference (NumPy's BLAS threads, whatever --threads
says) is one contender per rotation, not one per thread count. Times are measured inside the workers
(garbage collector off). The table shows MEDIANS; rates and ratios are computed from the medians.
``--in-process`` runs all contenders in this process instead, one row at a time.

The machine's sgemm peak is a contender too: in every conv rotation, at each thread count,
cycnn's GEMM and NumPy's BLAS (float32, square matrices) each time blocks of products in a worker
of their own; ``sgemm GF/s`` is the larger median rate and ``% peak`` the conv row's GFLOP/s as
a share of it, both from the same minutes. The peak measured once at the start (each in a fresh
process) is printed in the header and ``% start pk`` is the share of it. The speed-up over 1
thread divides times of one rotation and is printed next to the sgemm peak's own.

* conv: FLOPs = 2*N*K*Ho*Wo*C*R*S per forward; forward + backward counts 3x that.
* max pool: bytes moved = forward (read x, write y + int64 indices) + backward (read dy +
  indices, write dx).
* ``x ref`` = reference time / cycnn time (speed-up); ``cyc/torch`` = cycnn time / torch time
  (below 1: cycnn is faster).

The case builders (:data:`SHAPES`, :func:`make_case`) are reused by the pytest-benchmark suite in
the repository's ``benchmarks/`` folder.
"""
import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

import cycnn
from cycnn import ops as _ops
from cycnn import reference as _reference
from cycnn._workers import SETTLE_S, WorkerError, serve, time_calls
from cycnn._workers import Worker as _Worker

__all__ = [
    "ConvShape", "PoolShape", "SHAPES", "OPS", "IMPLS", "Case", "make_case", "load_torch",
    "set_threads", "measure", "main",
]


# ----------------------------------------------------------------------------------------------
# shapes and ops
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvShape:
    """A float32 NCHW convolution: x (N, C, H, W), w (K, C, R, S), square stride and padding."""
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: int = 1
    pad: int = 0

    kind = "conv"

    def out_hw(self):
        ho = (self.h + 2 * self.pad - self.r) // self.stride + 1
        wo = (self.w + 2 * self.pad - self.s) // self.stride + 1
        return ho, wo

    def with_batch(self, n):
        return ConvShape(n, self.c, self.h, self.w, self.k, self.r, self.s, self.stride, self.pad)

    def work(self, op):
        """FLOPs of one call of ``op``."""
        ho, wo = self.out_hw()
        fwd = 2 * self.n * self.k * ho * wo * self.c * self.r * self.s
        return fwd if op == "conv_fwd" else 3 * fwd

    def describe(self):
        return (f"x {self.n}x{self.c}x{self.h}x{self.w}, w {self.k}x{self.c}x{self.r}x{self.s}, "
                f"stride {self.stride}, pad {self.pad}")


@dataclass(frozen=True)
class PoolShape:
    """A float32 NCHW max pooling of x (N, C, H, W), square window, no padding."""
    n: int
    c: int
    h: int
    w: int
    kernel: int = 2
    stride: int = 2

    kind = "pool"

    def out_hw(self):
        return ((self.h - self.kernel) // self.stride + 1,
                (self.w - self.kernel) // self.stride + 1)

    def with_batch(self, n):
        return PoolShape(n, self.c, self.h, self.w, self.kernel, self.stride)

    def work(self, op):
        """Bytes read + written by one forward + backward call."""
        ho, wo = self.out_hw()
        x = self.n * self.c * self.h * self.w
        y = self.n * self.c * ho * wo
        fwd = 4 * x + (4 + 8) * y          # read x; write y and int64 indices
        bwd = (4 + 8) * y + 4 * x          # read dy and indices; write dx
        return fwd + bwd

    def describe(self):
        return (f"x {self.n}x{self.c}x{self.h}x{self.w}, {self.kernel}x{self.kernel} window, "
                f"stride {self.stride}")


# The team guide's benchmark shapes (float32, NCHW).
SHAPES = {
    "lenet-c1": ConvShape(64, 1, 28, 28, 32, 5, 5, 1, 2),
    "lenet-c2": ConvShape(64, 32, 14, 14, 64, 5, 5, 1, 2),
    "cifar-3x3": ConvShape(64, 64, 32, 32, 64, 3, 3, 1, 1),
    "vgg-3x3": ConvShape(32, 128, 28, 28, 128, 3, 3, 1, 1),
    "1x1": ConvShape(64, 128, 16, 16, 64, 1, 1, 1, 0),
    "s2": ConvShape(64, 64, 32, 32, 128, 3, 3, 2, 1),
    "pool-28": PoolShape(64, 32, 28, 28, 2, 2),
    "pool-32": PoolShape(64, 64, 32, 32, 2, 2),
}

# Op keys (also used in the benchmark suite's test ids) and what they run.
OPS = {
    "conv_fwd": "conv2d forward",
    "conv_fwd_bwd": "conv2d forward + backward (dx, dw, db)",
    "maxpool_fwd_bwd": "max_pool2d forward + backward",
}
OPS_BY_KIND = {"conv": ("conv_fwd", "conv_fwd_bwd"), "pool": ("maxpool_fwd_bwd",)}
FWD_BWD_OPS = ("conv_fwd_bwd", "maxpool_fwd_bwd")
IMPLS = ("cycnn", "torch", "reference")

# Shapes on which the (slow) NumPy reference runs by default; --reference runs it everywhere.
DEFAULT_REFERENCE_SHAPES = ("lenet-c1", "lenet-c2", "1x1", "pool-28", "pool-32")

QUICK_BATCH = 4
QUICK_REPS = 3
DEFAULT_REPS = 10
MAX_REFERENCE_REPS = 3
DEFAULT_MIN_TIME = 0.25
MAX_AUTO_REPS = 100


# ----------------------------------------------------------------------------------------------
# contenders
# ----------------------------------------------------------------------------------------------

def load_torch():
    """The torch module, or None when it is not importable (or broken)."""
    try:
        import torch
        import torch.nn.functional  # noqa: F401
    except Exception:  # ImportError, or OSError from a broken install
        return None
    return torch


def set_threads(n, torch=None):
    """Run cycnn's kernels (and torch's, when given) on ``n`` threads."""
    cycnn.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


@dataclass
class Case:
    """One contender's callable for one (op, shape): ``fn()`` runs the op once and returns its
    outputs (arrays or tensors; :func:`as_numpy` converts them) for cross-checking."""
    impl: str
    op: str
    shape_name: str
    shape: object
    fn: object
    work: int
    unit: str  # "FLOP" or "B"


def _inputs(op, shape, seed):
    rng = np.random.default_rng(seed)

    def normal(*dims):
        return rng.standard_normal(dims, dtype=np.float32)

    if shape.kind == "conv":
        ho, wo = shape.out_hw()
        return {"x": normal(shape.n, shape.c, shape.h, shape.w),
                "w": normal(shape.k, shape.c, shape.r, shape.s) / np.float32(
                    math.sqrt(shape.c * shape.r * shape.s)),
                "b": normal(shape.k),
                "dy": normal(shape.n, shape.k, ho, wo)}
    ho, wo = shape.out_hw()
    return {"x": normal(shape.n, shape.c, shape.h, shape.w),
            "dy": normal(shape.n, shape.c, ho, wo)}


def _numpy_fn(module, op, shape, a):
    x, dy = a["x"], a["dy"]
    if op == "conv_fwd":
        w, b, st, pad = a["w"], a["b"], shape.stride, shape.pad
        return lambda: (module.conv2d(x, w, b, st, pad),)
    if op == "conv_fwd_bwd":
        w, b, st, pad = a["w"], a["b"], shape.stride, shape.pad

        def fwd_bwd():
            y = module.conv2d(x, w, b, st, pad)
            return (y,) + tuple(module.conv2d_backward(dy, x, w, st, pad, 1))
        return fwd_bwd
    k, st = shape.kernel, shape.stride

    def pool_fwd_bwd():
        y, idx = module.max_pool2d(x, k, st)
        return y, module.max_pool2d_backward(dy, idx, x.shape)
    return pool_fwd_bwd


def _torch_fn(torch, op, shape, a):
    F = torch.nn.functional
    t = {name: torch.from_numpy(arr) for name, arr in a.items()}
    if op == "conv_fwd":
        x, w, b, st, pad = t["x"], t["w"], t["b"], shape.stride, shape.pad

        def fwd():
            with torch.no_grad():
                return (F.conv2d(x, w, b, st, pad),)
        return fwd
    if op == "conv_fwd_bwd":
        x, w, b = (t[n].clone().requires_grad_(True) for n in ("x", "w", "b"))
        dy, st, pad = t["dy"], shape.stride, shape.pad

        def fwd_bwd():
            y = F.conv2d(x, w, b, st, pad)
            return (y,) + tuple(torch.autograd.grad(y, (x, w, b), dy))
        return fwd_bwd
    x, dy, k, st = t["x"].clone().requires_grad_(True), t["dy"], shape.kernel, shape.stride

    def pool_fwd_bwd():
        y = F.max_pool2d(x, k, st)
        return y, torch.autograd.grad(y, x, dy)[0]
    return pool_fwd_bwd


def make_case(impl, op, shape_name, batch=None, torch=None, seed=0):
    """A :class:`Case` running ``op`` on shape ``shape_name`` with ``impl``.

    ``batch`` overrides N; ``torch`` is the torch module (required for impl "torch"). All
    contenders built with the same seed see the same inputs.
    """
    if shape_name not in SHAPES:
        raise ValueError(f"unknown shape {shape_name!r}; choose from {', '.join(SHAPES)}")
    shape = SHAPES[shape_name]
    if op not in OPS_BY_KIND[shape.kind]:
        raise ValueError(f"op {op!r} does not apply to {shape.kind} shape {shape_name!r}")
    if batch is not None:
        shape = shape.with_batch(batch)
    a = _inputs(op, shape, seed)
    if impl == "cycnn":
        fn = _numpy_fn(_ops, op, shape, a)
    elif impl == "reference":
        fn = _numpy_fn(_reference, op, shape, a)
    elif impl == "torch":
        if torch is None:
            raise ValueError("impl 'torch' needs the torch module")
        fn = _torch_fn(torch, op, shape, a)
    else:
        raise ValueError(f"unknown impl {impl!r}; choose from {', '.join(IMPLS)}")
    unit = "FLOP" if shape.kind == "conv" else "B"
    return Case(impl, op, shape_name, shape, fn, shape.work(op), unit)


def as_numpy(outputs):
    """Outputs of a Case's fn as a tuple of float64 NumPy arrays."""
    result = []
    for out in outputs:
        if hasattr(out, "detach"):  # torch tensor
            out = out.detach().cpu().numpy()
        result.append(np.asarray(out, dtype=np.float64))
    return tuple(result)


def max_rel_error(outputs, expected):
    """Largest over outputs of max|a - b| / max(1, max|b|)."""
    worst = 0.0
    for a, b in zip(outputs, expected):
        if a.shape != b.shape:
            return math.inf
        if a.size:
            scale = max(1.0, float(np.max(np.abs(b))))
            worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return worst


# ----------------------------------------------------------------------------------------------
# measurement
# ----------------------------------------------------------------------------------------------

def _schedule(reps, rounds):
    """The rounds (of ``rounds``) in which a contender with ``reps`` repetitions runs: spread."""
    return {(j * rounds) // reps for j in range(reps)}


def _rotate(names, reps, time_one):
    """Time every contender ``reps[name]`` times, in rounds that run them in a rotated order
    (contenders with fewer repetitions spread over the rounds); ``time_one(name)`` returns a
    list of seconds. Returns {name: [seconds, ...]}."""
    rounds = max((reps[name] for name in names), default=0)
    plan = {name: _schedule(reps[name], rounds) for name in names}
    times = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if r in plan[name]:
                times[name] += time_one(name)
    return times


def measure(fns, reps, warmup=1, min_time=0.0, extend=(), max_reps=100, errors=None):
    """Time callables interleaved; returns ({name: [seconds, ...]}, {name: warm-up output}).

    ``fns`` maps names to zero-argument callables, ``reps`` maps names to repetition counts
    (contenders with fewer repetitions run in rounds spread over the whole measurement). Each
    round runs the contenders in a rotated order, so none always follows the same other one.
    Contenders named in ``extend`` get more repetitions (at most ``max_reps``) when fast, so
    that each is timed for about ``min_time`` seconds (estimated from the last warm-up call).
    With an ``errors`` dict, a contender whose warm-up raises is recorded there (name ->
    exception) and left out; without one, the exception propagates.
    """
    names = list(fns)
    reps = dict(reps)
    outputs = {}
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for name in list(names):
            elapsed = None
            try:
                for _ in range(warmup):
                    t0 = clock()
                    outputs[name] = fns[name]()
                    elapsed = clock() - t0
            except Exception as exc:
                if errors is None:
                    raise
                errors[name] = exc
                names.remove(name)
                outputs.pop(name, None)
                continue
            if name in extend and min_time > 0 and elapsed:
                wanted = min(max_reps, math.ceil(min_time / elapsed))
                reps[name] = max(reps[name], wanted)

        def time_one(name):
            fn = fns[name]
            t0 = clock()
            fn()
            return [clock() - t0]

        times = _rotate(names, reps, time_one)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times, outputs


# ----------------------------------------------------------------------------------------------
# worker processes: one per contender
# ----------------------------------------------------------------------------------------------

SGEMM_SIZE = 1024
SGEMM_QUICK_SIZE = 256


GEMM_IMPLS = ("cycnn", "numpy")


def _gemm_impls():
    """The sgemm peak's contenders: cycnn's GEMM, and NumPy's BLAS when threadpoolctl (which
    sets its thread count) is importable."""
    import importlib.util
    return GEMM_IMPLS if importlib.util.find_spec("threadpoolctl") else GEMM_IMPLS[:1]


def _sgemm_fn(impl, n, threads):
    """A zero-argument n x n float32 product with cycnn's GEMM ("cycnn") or NumPy's BLAS
    ("numpy", limited by threadpoolctl), this process set to ``threads`` threads for good: call
    it in a process of its own."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if impl == "cycnn":
        cycnn.set_num_threads(threads)
        return lambda: _ops.matmul(a, b)
    if impl != "numpy":
        raise ValueError(f"unknown sgemm impl {impl!r}; choose from {', '.join(GEMM_IMPLS)}")
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)        # not restored: the process is this contender's
    return lambda: a @ b


def _sgemm_rate(impl, n, threads, reps):
    """Median GFLOP/s of :func:`_sgemm_fn` over ``reps`` calls after two warm-up calls."""
    fn = _sgemm_fn(impl, n, threads)
    time_calls(fn, 2)
    return 2.0 * n ** 3 / statistics.median(time_calls(fn, reps)) / 1e9


def _worker_main(impl):
    """Serve one contender of the kernel benchmark (see _Worker): ``setup`` builds its case (or,
    with op "sgemm", the n x n product) on the given thread count and runs the warm-up calls,
    ``time`` times a block of calls, ``sgemm`` measures the start-of-run peak."""
    torch = load_torch() if impl == "torch" else None
    state = {"fn": None}

    def handle(cmd):
        if cmd["cmd"] == "sgemm":
            return {"rate": _sgemm_rate(impl, cmd["n"], cmd["threads"], cmd["reps"])}
        if cmd["cmd"] == "setup":
            state["fn"] = None
            gc.collect()
            if cmd["op"] == "sgemm":
                fn = _sgemm_fn(impl, cmd["n"], cmd["threads"])
            else:
                fn = make_case(impl, cmd["op"], cmd["shape"], cmd["batch"], torch).fn
                set_threads(cmd["threads"], torch)
            state["fn"] = fn
            elapsed, outputs = None, None
            for _ in range(cmd["warmup"]):
                t0 = time.perf_counter()
                outputs = fn()
                elapsed = time.perf_counter() - t0
            if cmd.get("save"):
                np.savez(cmd["save"], *as_numpy(outputs))
            if elapsed is not None and elapsed < ESTIMATE_MAX_S:
                # the first call pays for the thread pool, first touches and cold caches: the
                # blocks are sized from a warm one
                elapsed = min(elapsed, time_calls(fn, 1)[0])
            return {"elapsed": elapsed}
        if cmd["cmd"] == "time":
            return {"times": time_calls(state["fn"], cmd["reps"], cmd.get("warm", 0))}
        return {"error": f"unknown command {cmd['cmd']!r}"}

    return serve(handle)


# NumPy's OpenBLAS keeps a helper thread spinning for about 0.1 s after each multi-threaded call
# (0.09-0.10 s of CPU in the 200 ms after a 2-thread sgemm turn; none with this setting, at the
# same GFLOP/s), which would slow the next contender in the rotation: the workers running NumPy's
# BLAS (the sgemm peak's, the reference) let it sleep at once, unless the user set it.
BLAS_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}

# glibc's malloc maps every block above its mmap threshold afresh and unmaps it on free, and
# trims the heap's free top: a benchmark loop that allocates its outputs, returns them and
# frees them page-faults its way through fresh, zeroed pages on every call (cifar-3x3's
# forward+backward: ~1,000 faults and 0-48 ms of system time per call; torch's alike), where a
# training step, allocating and freeing in a steady pattern, takes none (0 faults per step
# measured). Every worker gets thresholds that keep freed memory for reuse, unless the user set
# them: the kernels are timed as they run in a training loop, every contender alike.
ALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def _worker_env(impl):
    """The environment variables a worker for contender ``impl`` gets (the user's own win)."""
    env = dict(ALLOC_ENV, **(BLAS_ENV if impl in ("numpy", "reference") else {}))
    return {k: v for k, v in env.items() if k not in os.environ}


def _worker(impl):
    """A new worker process for contender ``impl`` (see _Worker)."""
    return _Worker(impl, env=_worker_env(impl))


def sgemm_peaks(thread_counts, quick=False):
    """{threads: {"cycnn": GFLOP/s, "numpy": GFLOP/s}}: each measured in a fresh process."""
    n = SGEMM_QUICK_SIZE if quick else SGEMM_SIZE
    reps = 3 if quick else max(5, int(4e9 / n ** 3))
    peaks = {}
    for threads in thread_counts:
        peaks[threads] = {}
        for impl in _gemm_impls():
            worker = _worker(impl)
            try:
                peaks[threads][impl] = worker.ask(cmd="sgemm", n=n, threads=threads,
                                                  reps=reps)["rate"]
            except WorkerError as exc:
                print(f"ERROR: sgemm peak with {impl}: {exc}", file=sys.stderr)
            finally:
                worker.close()
    return peaks


BLOCK_S = 0.05     # calls of one turn: about this long in all
TURN_WARMUP = 1    # untimed calls that start every turn (see measure_workers)
ESTIMATE_MAX_S = 0.5   # a warm-up call faster than this is followed by one more to size blocks


def measure_workers(contenders, reps, warmup, min_time, extend, max_reps, errors, save_dir,
                    fill=()):
    """As :func:`measure`, each contender in its worker process: ``contenders`` maps names to
    (worker, setup request); each is timed ``reps[name]`` times, in blocks of calls lasting
    about BLOCK_S, except the contenders in ``fill`` (the sgemm peak): they are not cross-checked
    and take a turn in every round, about as long as the others' longest, at most ``reps[name]``
    calls. Returns ({name: [seconds, ...]}, {name: warm-up outputs as a tuple of float64
    arrays}, [the names in the order of their turns])."""
    names = list(contenders)
    reps = dict(reps)
    outputs = {}
    per_call = {}
    for name in list(names):
        worker, setup = contenders[name]
        path = None if name in fill else os.path.join(save_dir, f"{name}.npz")
        try:
            elapsed = worker.ask(cmd="setup", warmup=warmup, save=path, **setup)["elapsed"]
            if path:
                with np.load(path) as saved:
                    outputs[name] = tuple(saved[f"arr_{i}"] for i in range(len(saved.files)))
                os.remove(path)
        except WorkerError as exc:
            errors[name] = exc
            names.remove(name)
            continue
        if name in extend and min_time > 0 and elapsed:
            reps[name] = max(reps[name], min(max_reps, math.ceil(min_time / elapsed)))
        per_call[name] = elapsed or 0.0
    # A worker's OpenMP threads spin for a few milliseconds after each parallel region: timed
    # right after one, another contender's 2-thread call shares the cores with those spinners
    # (a 3 ms call measured 2.3x slower). So each turn pauses SETTLE_S first, and fast ops run
    # in blocks of calls (about BLOCK_S each) so that the pauses stay a small part of the run.
    def calls(name, seconds):
        return min(reps[name], max(1, int(seconds / per_call[name]) if per_call[name] else 1))

    block = {name: calls(name, BLOCK_S) for name in names if name not in fill}
    turns = {name: math.ceil(reps[name] / block[name]) for name in block}
    turn_s = min(BLOCK_S, max((block[n] * per_call[n] for n in block), default=BLOCK_S))
    rounds = max(turns.values(), default=1)
    for name in names:
        if name in fill:
            block[name], turns[name] = calls(name, turn_s), rounds
    order = []

    # Each turn starts with TURN_WARMUP untimed calls: the turn before left the caches full of
    # another contender's data and, on a virtual machine, a core idle for the pause (or for a
    # 1-thread contender's turn) comes back slowly. Timed as the first call of a turn, a 2-thread
    # cifar-3x3 forward+backward took 47 ms where back-to-back calls took 34, lenet-c1 2.6 ms
    # for 2.3, so rows made of a few calls per turn (and the sgemm peak's 2-3) measured the
    # wake-up more than the kernel.
    def time_block(name):
        time.sleep(SETTLE_S)
        order.append(name)
        return contenders[name][0].ask(cmd="time", reps=block[name],
                                       warm=TURN_WARMUP)["times"]

    times = _rotate(names, turns, time_block)
    return times, outputs, order


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _thread_list(text):
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of positive integers such as '1,2', got {text!r}")
    values = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"thread counts must be positive integers such as '1,2', got {text!r}")
        if value not in values:
            values.append(value)
    return values


def _name_list(choices, what):
    def parse(text):
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, "
                                             f"got {text!r}")
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(choices)}")
        return list(dict.fromkeys(items))
    return parse


OP_CHOICES = ("conv", "pool") + tuple(OPS)


def build_parser():
    shapes = "\n".join(f"  {name:10s} {shape.describe()}" for name, shape in SHAPES.items())
    ops = "\n".join(f"  {name:16s} {text}" for name, text in OPS.items())
    p = argparse.ArgumentParser(
        prog="python -m cycnn.bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Time cycnn's conv2d and max-pool kernels (float32, NCHW) against PyTorch "
                    "(when importable) and cycnn.reference (NumPy). Each contender runs in its "
                    "own worker process per thread count (--in-process: all in this one); all "
                    "thread counts of a shape and op take turns in one rotation after a warm-up "
                    "(blocks of timed calls, a pause between turns), together with the sgemm "
                    "peak (cycnn's GEMM and NumPy's BLAS). The table shows medians, the share of "
                    "that in-rotation sgemm peak and of the one measured at the start.",
        epilog=f"shapes:\n{shapes}\n\nops (--ops conv = conv_fwd,conv_fwd_bwd; "
               f"pool = maxpool_fwd_bwd):\n{ops}\n\nThe NumPy reference runs on "
               f"{', '.join(DEFAULT_REFERENCE_SHAPES)} by default (all shapes with --reference "
               f"or --quick) with at most {MAX_REFERENCE_REPS} repetitions.\n\n"
               f"--inference: model.predict next to ONNX Runtime and PyTorch instead "
               f"(python -m cycnn.bench --inference --help).")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: batch {QUICK_BATCH}, {QUICK_REPS} repetitions, reference "
                        f"on every shape (a few seconds)")
    p.add_argument("--threads", type=_thread_list, default=[1, 2], metavar="N[,N...]",
                   help="thread counts to run, comma-separated (default: 1,2)")
    p.add_argument("--shapes", type=_name_list(tuple(SHAPES), "shapes"), default=None,
                   metavar="NAME[,NAME...]", help="shapes to run (default: all; see below)")
    p.add_argument("--ops", type=_name_list(OP_CHOICES, "ops"), default=["conv", "pool"],
                   metavar="OP[,OP...]",
                   help=f"ops to run: {', '.join(OP_CHOICES)} (default: conv,pool)")
    p.add_argument("--reps", type=_positive_int, default=None, metavar="K",
                   help=f"timed repetitions per contender (default {DEFAULT_REPS}, more for "
                        f"fast ops: see --min-time; {QUICK_REPS} with --quick; the reference "
                        f"does at most {MAX_REFERENCE_REPS})")
    p.add_argument("--min-time", type=float, default=None, metavar="S",
                   help=f"fast ops get more repetitions than --reps (up to {MAX_AUTO_REPS}) so "
                        f"that cycnn and torch are each timed for about S seconds per row "
                        f"(default {DEFAULT_MIN_TIME}; 0, i.e. exactly --reps, when --reps or "
                        f"--quick is given)")
    p.add_argument("--warmup", type=_positive_int, default=1, metavar="W",
                   help="untimed warm-up calls per contender (default 1)")
    p.add_argument("--batch", type=_positive_int, default=None, metavar="N",
                   help=f"override the batch size N of every shape (--quick: {QUICK_BATCH})")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", dest="reference", action="store_const", const="all",
                     default=None, help="run the NumPy reference on every shape")
    ref.add_argument("--no-reference", dest="reference", action="store_const", const="none",
                     help="never run the NumPy reference")
    p.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch")
    p.add_argument("--profile", action="store_true",
                   help="instead of the kernel table: the per-layer breakdown of a training step "
                        "of the reference network next to torch's step (cycnn._profile; uses "
                        "--threads, --reps (timed steps, default 40), --warmup, --batch, "
                        "--no-torch)")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="also write settings and raw per-repetition times as JSON to PATH")
    p.add_argument("--in-process", action="store_true",
                   help="run every contender in this process (default: each in its own worker "
                        "process, one row at a time) and skip the sgemm peaks")
    p.add_argument("--worker", choices=IMPLS + ("numpy",), default=None, help=argparse.SUPPRESS)
    return p


def _rows(args):
    ops = []
    for item in args.ops:
        for op in OPS_BY_KIND.get(item, (item,)):
            if op not in ops:
                ops.append(op)
    rows = []
    for shape_name in args.shapes or list(SHAPES):
        kind = SHAPES[shape_name].kind
        for op in OPS_BY_KIND[kind]:
            if op in ops:
                for threads in args.threads:
                    rows.append((shape_name, op, threads))
    return rows


def _fmt_ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


def _fmt_ratio(value):
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


COLUMNS = (("shape", 10, "<"), ("op", 15, "<"), ("thr", 3, ">"), ("cycnn ms", 9, ">"),
           ("torch ms", 9, ">"), ("ref ms", 9, ">"), ("cycnn rate", 10, ">"), ("unit", 7, "<"),
           ("x ref", 7, ">"), ("cyc/torch", 9, ">"), ("check", 8, "<"), ("sgemm GF/s", 10, ">"),
           ("% peak", 6, ">"), ("% start pk", 10, ">"))


def _line(cells):
    parts = [f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS)]
    return "| " + " | ".join(parts) + " |"


def _geomean(values):
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


_THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_PROC_BIND",
               "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _loadavg():
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except (AttributeError, OSError):
        return None


def _header(args, torch, reps, ref_reps, out):
    info = cycnn.build_info()
    torch_version = torch.__version__ if torch is not None else (
        "not used (--no-torch)" if args.no_torch else "not importable")
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    print(f"cycnn benchmark: cycnn {info.get('version')}, numpy {np.__version__}, "
          f"torch {torch_version}, python {platform.python_version()}", file=out)
    print("build_info: " + ", ".join(f"{k}={v}" for k, v in info.items()), file=out)
    load = _loadavg()
    print(f"machine: {platform.platform()}, {cpus} usable CPUs, load average "
          f"{load if load else 'unknown'} at start", file=out)
    env = [f"{k}={os.environ[k]}" for k in _THREAD_ENV if k in os.environ]
    print(f"thread environment: {', '.join(env) if env else 'none of ' + ', '.join(_THREAD_ENV)}",
          file=out)
    ref_on = {"all": "every shape", "none": "off"}.get(
        args.reference, ", ".join(DEFAULT_REFERENCE_SHAPES))
    more = (f", more to fill {args.min_time:g} s (max {MAX_AUTO_REPS})"
            if args.min_time else "")
    print(f"settings: threads {','.join(map(str, args.threads))}; {reps} timed reps{more} "
          f"(reference {ref_reps}) after {args.warmup} warm-up; "
          f"batch {args.batch if args.batch else 'per shape'}; reference on: {ref_on}", file=out)
    if not info.get("openmp") and max(args.threads) > 1:
        print("WARNING: cycnn was built without OpenMP: its kernels run on 1 thread whatever "
              "--threads says", file=out)
    if load and cpus and load[0] > cpus:
        print(f"WARNING: load average {load[0]} exceeds the {cpus} usable CPUs: other processes "
              f"compete for the cores and multi-threaded timings will suffer most", file=out)
    if cpus and max(args.threads) > cpus:
        print(f"WARNING: more threads ({max(args.threads)}) than usable CPUs ({cpus})", file=out)
    print("times: medians of interleaved runs, milliseconds. rate: cycnn GFLOP/s (conv, "
          "2*N*K*Ho*Wo*C*R*S per fwd, fwd+bwd = 3x) or GB/s (pool, bytes read + written).",
          file=out)
    if not args.in_process:
        print("rotation: every thread count of a shape and op is timed in ONE rotation of worker "
              "processes (cycnn@1 torch@1 cycnn@2 torch@2 ..., the reference as one contender), "
              "with the sgemm peak as contenders: sgemm GF/s = the larger of cycnn's GEMM and "
              "NumPy's BLAS (median, each in its own worker at the row's thread count); % peak = "
              "cycnn conv GFLOP/s / sgemm GF/s of the same rotation; % start pk = / the peak "
              "measured at the start (below).", file=out)
        alloc = [f"{k}={v}" for k, v in ALLOC_ENV.items() if k not in os.environ]
        if alloc:
            print(f"every worker gets {', '.join(alloc)}: freed memory is kept for reuse, so no "
                  f"call page-faults through fresh pages (as in a training loop).", file=out)
        blas = [f"{k}={v}" for k, v in BLAS_ENV.items() if k not in os.environ]
        if blas:
            print(f"the workers running NumPy's BLAS (sgemm, reference) get {', '.join(blas)}: "
                  f"its helper threads sleep after a call instead of spinning ~0.1 s into the "
                  f"next contender's turn.", file=out)
    print("x ref = reference ms / cycnn ms (speed-up); cyc/torch = cycnn ms / torch ms "
          "(< 1: cycnn faster); check = outputs agree (max rel. error <= 1e-3). The reference "
          "uses NumPy's BLAS threads, whatever --threads says.", file=out)
    print("shapes (float32, NCHW):", file=out)
    for name in dict.fromkeys(row[0] for row in _rows(args)):
        shape = SHAPES[name] if args.batch is None else SHAPES[name].with_batch(args.batch)
        print(f"  {name:10s} {shape.describe()}", file=out)


def _groups(args):
    """The rows of :func:`_rows` by (shape, op): {(shape, op): [threads, ...]}, in order."""
    groups = {}
    for shape_name, op, threads in _rows(args):
        groups.setdefault((shape_name, op), []).append(threads)
    return groups


def _rotation(args, shape_name, op, counts, impls, reps, ref_reps, get_worker, save_dir):
    """Time every thread count of (shape, op) in ONE rotation of worker processes, each with its
    thread count fixed: cycnn and torch at each count, the reference as one contender (it runs on
    NumPy's BLAS threads whatever --threads says) and, for a conv, the sgemm peak at each count
    (cycnn's GEMM and NumPy's BLAS). ``get_worker(impl, name)`` gives contender ``name``'s process.
    Returns (times, outputs, errors, turn order), keyed by contender name: "cycnn@2", "reference",
    "sgemm-numpy@1", ..."""
    contenders, rep_counts, extend, fill = {}, {}, [], []
    case = dict(shape=shape_name, op=op, batch=args.batch)
    n = SGEMM_QUICK_SIZE if args.quick else SGEMM_SIZE
    for threads in counts:
        for impl in impls:
            if impl != "reference":
                name = f"{impl}@{threads}"
                contenders[name] = (get_worker(impl, name), dict(case, threads=threads))
                rep_counts[name] = reps
                extend.append(name)
        if SHAPES[shape_name].kind == "conv":
            for impl in _gemm_impls():
                name = f"sgemm-{impl}@{threads}"
                contenders[name] = (get_worker(impl, name),
                                    dict(op="sgemm", n=n, threads=threads))
                rep_counts[name] = reps
                fill.append(name)
    if "reference" in impls:
        contenders["reference"] = (get_worker("reference", "reference"),
                                   dict(case, threads=counts[0]))
        rep_counts["reference"] = ref_reps
    errors = {}
    times, outputs, order = measure_workers(contenders, rep_counts, args.warmup, args.min_time,
                                            extend, MAX_AUTO_REPS, errors, save_dir, fill)
    return times, outputs, errors, order


def _row(case, threads, times, outputs, errors, sgemm_times, sgemm_n, start_peak, rotation,
         out):
    """One table row from its contenders' times (``sgemm_times``: the sgemm contenders' of the
    same rotation, by GEMM impl), printed to ``out``. Returns (the row as a dict, 1 if cycnn
    failed or its outputs disagree else 0)."""
    for impl, exc in errors.items():
        print(f"ERROR: {impl} failed on {case.shape_name} {case.op} with {threads} thread(s): "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
    med = {i: statistics.median(ts) for i, ts in times.items()}
    rate = case.work / med["cycnn"] / 1e9 if "cycnn" in med else None
    vs_ref = med["reference"] / med["cycnn"] if {"reference", "cycnn"} <= set(med) else None
    vs_torch = med["cycnn"] / med["torch"] if {"torch", "cycnn"} <= set(med) else None
    error = None
    others = [i for i in ("torch", "reference") if i in outputs]
    if others and "cycnn" in outputs:
        mine = as_numpy(outputs["cycnn"])
        error = max(max_rel_error(mine, as_numpy(outputs[i])) for i in others)
    ok = None if error is None else error <= 1e-3
    sgemm_rates = {impl: 2.0 * sgemm_n ** 3 / statistics.median(ts) / 1e9
                   for impl, ts in sgemm_times.items()}
    peak = max(sgemm_rates.values(), default=None)
    start = max((start_peak or {}).values(), default=None)
    conv = rate is not None and case.unit == "FLOP"
    share = rate / peak if conv and peak else None
    share_start = rate / start if conv and start else None
    row = {
        "shape": case.shape_name, "op": case.op, "threads": threads, "rotation": rotation,
        "geometry": asdict(case.shape), "work": case.work,
        "work_unit": case.unit,
        "rate_unit": "GFLOP/s" if case.unit == "FLOP" else "GB/s",
        "cycnn_rate": rate,
        "median_s": med, "times_s": times,
        "speedup_vs_reference": vs_ref, "ratio_cycnn_torch": vs_torch,
        "max_rel_error": error, "check": ok,
        "sgemm_n": sgemm_n if sgemm_times else None, "sgemm_times_s": sgemm_times,
        "sgemm_rates_rotation": sgemm_rates, "sgemm_peak_rotation": peak,
        "share_of_sgemm_peak": share,
        "sgemm_peak_start": start, "share_of_start_peak": share_start,
        "errors": {i: f"{type(e).__name__}: {e}" for i, e in errors.items()},
    }
    check = ("ERROR" if "cycnn" in errors else "-" if ok is None else "ok" if ok else "MISMATCH")
    ms = {i: "error" if i in errors else _fmt_ms(med.get(i)) for i in IMPLS}
    print(_line([case.shape_name, case.op, str(threads), ms["cycnn"], ms["torch"],
                 ms["reference"], "-" if rate is None else
                 f"{rate:.2f}" if rate < 100 else f"{rate:.1f}", row["rate_unit"],
                 _fmt_ratio(vs_ref), _fmt_ratio(vs_torch), check,
                 "-" if peak is None or not conv else f"{peak:.1f}",
                 "-" if share is None else f"{100 * share:.0f}%",
                 "-" if share_start is None else f"{100 * share_start:.0f}%"]), file=out)
    out.flush()
    return row, (ok is False) + ("cycnn" in errors)


def run(args, out=None):
    """Run the benchmark for parsed ``args``; returns (rows as dicts, number of mismatches).
    In worker mode ``args.rotations`` records each rotation's (shape, op, thread counts, turn
    order)."""
    out = sys.stdout if out is None else out
    torch = None if args.no_torch else load_torch()
    reps = args.reps or (QUICK_REPS if args.quick else DEFAULT_REPS)
    ref_reps = min(reps, MAX_REFERENCE_REPS)
    if args.min_time is None:
        args.min_time = 0.0 if (args.quick or args.reps) else DEFAULT_MIN_TIME
    if args.quick and args.batch is None:
        args.batch = QUICK_BATCH
    if args.reference is None and args.quick:
        args.reference = "all"
    _header(args, torch, reps, ref_reps, out)
    peaks = {}
    sgemm_n = SGEMM_QUICK_SIZE if args.quick else SGEMM_SIZE
    if not args.in_process and any(SHAPES[r[0]].kind == "conv" for r in _rows(args)):
        peaks = sgemm_peaks(args.threads, args.quick)
        print(f"sgemm peak at the start (float32 {sgemm_n}x{sgemm_n}x{sgemm_n}, median, each in "
              f"a fresh process; '% start pk' = cycnn conv GFLOP/s / the larger):", file=out)
        for threads, rates in peaks.items():
            print(f"  {threads} thread{'s' if threads > 1 else ' '}: " + ", ".join(
                f"{impl} {rate:.1f} GFLOP/s" for impl, rate in rates.items()), file=out)
        if "numpy" not in _gemm_impls():
            print("  (NumPy's BLAS left out of the sgemm peaks: threadpoolctl, which sets its "
                  "thread count, is not installed)", file=out)
    args.sgemm_peaks = {str(t): r for t, r in peaks.items()}
    args.rotations = []
    print("", file=out)
    print(_line([name for name, _, _ in COLUMNS]), file=out)
    print("|" + "|".join(("-" * (w + 1) + ":" if a == ">" else "-" * (w + 2))
                         for _, w, a in COLUMNS) + "|", file=out)
    out.flush()

    saved = (cycnn.get_num_threads(), torch.get_num_threads() if torch is not None else None)
    results, mismatches = [], 0
    workers = {}

    def get_worker(impl, name):
        if name not in workers:
            workers[name] = _worker(impl)
        return workers[name]

    if not args.in_process:
        import tempfile
        save_dir = tempfile.mkdtemp(prefix="cycnn-bench-")
    try:
        for index, ((shape_name, op), counts) in enumerate(_groups(args).items()):
            use_ref = args.reference == "all" or (
                args.reference is None and shape_name in DEFAULT_REFERENCE_SHAPES)
            impls = ["cycnn"] + (["torch"] if torch is not None else []) + (
                ["reference"] if use_ref else [])
            case = make_case("cycnn", op, shape_name, args.batch)
            rows = []
            if not args.in_process:
                times, outputs, errors, order = _rotation(args, shape_name, op, counts, impls,
                                                          reps, ref_reps, get_worker, save_dir)
                args.rotations.append({"shape": shape_name, "op": op, "threads": counts,
                                       "order": order})
                for threads in counts:       # this thread count's contenders, by impl
                    name = {i: "reference" if i == "reference" else f"{i}@{threads}"
                            for i in impls}
                    name.update({f"sgemm {g}": f"sgemm-{g}@{threads}" for g in GEMM_IMPLS})

                    def pick(found, keys):
                        return {k.split()[-1]: found[name[k]] for k in keys if name[k] in found}
                    rows.append(_row(case, threads, pick(times, impls), pick(outputs, impls),
                                     {k: errors[n] for k, n in name.items() if n in errors},
                                     pick(times, [f"sgemm {g}" for g in GEMM_IMPLS]), sgemm_n,
                                     peaks.get(threads), index, out))
                del outputs
            else:
                for threads in counts:
                    cases = {impl: make_case(impl, op, shape_name, args.batch, torch)
                             for impl in impls}
                    set_threads(threads, torch)
                    errors = {}
                    times, outputs = measure(
                        {i: c.fn for i, c in cases.items()},
                        {i: (ref_reps if i == "reference" else reps) for i in impls},
                        warmup=args.warmup, min_time=args.min_time, extend=("cycnn", "torch"),
                        max_reps=MAX_AUTO_REPS, errors=errors)
                    rows.append(_row(case, threads, times, outputs, errors, {}, None, None,
                                     None, out))
                    del outputs, cases
            for row, bad in rows:
                results.append(row)
                mismatches += bad
    finally:
        for worker in workers.values():
            worker.close()
        if not args.in_process:
            import shutil
            shutil.rmtree(save_dir, ignore_errors=True)
        cycnn.set_num_threads(saved[0])
        if torch is not None:
            torch.set_num_threads(saved[1])
    return results, mismatches


def summary(results):
    """Geometric means of the cycnn/torch time ratios: {label: (value, count)}."""
    out = {}

    def add(label, rows):
        ratios = [r["ratio_cycnn_torch"] for r in rows if r["ratio_cycnn_torch"] is not None]
        if ratios:
            out[label] = (_geomean(ratios), len(ratios))

    fwd_bwd = [r for r in results if r["op"] in FWD_BWD_OPS]
    add("fwd+bwd, all rows", fwd_bwd)
    for threads in dict.fromkeys(r["threads"] for r in results):
        add(f"fwd+bwd, {threads} thread{'s' if threads > 1 else ''}",
            [r for r in fwd_bwd if r["threads"] == threads])
    add("conv fwd+bwd", [r for r in results if r["op"] == "conv_fwd_bwd"])
    add("maxpool fwd+bwd", [r for r in results if r["op"] == "maxpool_fwd_bwd"])
    add("conv fwd (not in the headline)", [r for r in results if r["op"] == "conv_fwd"])
    ref = [r["speedup_vs_reference"] for r in results if r["speedup_vs_reference"] is not None]
    return out, (_geomean(ref), len(ref)) if ref else None


def thread_scaling(results):
    """{(shape, op): (threads, cycnn speed-up, sgemm speed-up or None)}: cycnn's time at 1
    thread / its time at the largest other count, and the in-rotation sgemm peak's rate there /
    at 1 thread, from rows of the same rotation (in worker mode every thread count of a (shape,
    op) is timed in one; --in-process rows are measured one after the other)."""
    one = {(r["shape"], r["op"]): r for r in results if r["threads"] == 1}
    out = {}
    for r in results:
        key, t = (r["shape"], r["op"]), r["median_s"].get("cycnn")
        base = one.get(key)
        if (r["threads"] > 1 and base and base["rotation"] == r["rotation"] and t
                and base["median_s"].get("cycnn") and r["threads"] >= out.get(key, (0,))[0]):
            peaks = (base.get("sgemm_peak_rotation"), r.get("sgemm_peak_rotation"))
            out[key] = (r["threads"], base["median_s"]["cycnn"] / t,
                        peaks[1] / peaks[0] if all(peaks) else None)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--inference" in argv:   # model.predict vs ONNX Runtime / PyTorch (_bench_inference.py)
        from . import _bench_inference
        return _bench_inference.main([a for a in argv if a != "--inference"])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        return _worker_main(args.worker)
    if args.profile:
        from . import _profile
        return _profile.main(args)
    if args.min_time is not None and not (0 <= args.min_time < 3600):
        parser.error(f"argument --min-time: expected seconds in [0, 3600), got {args.min_time}")
    if not _rows(args):
        parser.error(f"no benchmark matches --shapes {','.join(args.shapes or SHAPES)} "
                     f"with --ops {','.join(args.ops)}")
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            parser.error(f"argument --json: folder {folder!r} does not exist")

    started = time.time()
    results, mismatches = run(args)
    ratios, ref = summary(results)
    print("")
    if ratios:
        print("geometric mean of cycnn/torch time ratios (< 1: cycnn faster):")
        for label, (value, count) in ratios.items():
            print(f"  {label:32s} {value:.3f}  ({count} rows)")
    else:
        print("geometric mean of cycnn/torch fwd+bwd time ratios: - (torch not used)")
    if ref:
        print(f"geometric mean speed-up of cycnn over the NumPy reference: {ref[0]:.2f}x "
              f"({ref[1]} rows)")
    scaling = thread_scaling(results)
    shown = {k: v for k, v in scaling.items() if k[1] in FWD_BWD_OPS}
    if shown:
        print("cycnn fwd+bwd speed-up over 1 thread (times of one rotation; sgemm: the "
              "in-rotation sgemm peak's): " + ", ".join(
                  f"{shape} {v:.2f}x ({t} thr" + ("" if g is None else f"; sgemm {g:.2f}x") + ")"
                  for (shape, op), (t, v, g) in shown.items()))
    elapsed = time.time() - started
    print(f"total time {elapsed:.1f} s; load average at end {_loadavg() or 'unknown'}")
    if mismatches:
        print(f"ERROR: {mismatches} row(s) where cycnn failed or its outputs differ from "
              f"torch/reference (see the check column)", file=sys.stderr)

    if args.json:
        torch = None if args.no_torch else load_torch()
        doc = {
            "cycnn": cycnn.build_info(),
            "numpy": np.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_end": _loadavg(),
            "environment": {k: os.environ[k] for k in _THREAD_ENV if k in os.environ},
            "settings": {k: v for k, v in vars(args).items()
                         if k not in ("sgemm_peaks", "rotations")},
            "summary": {label: {"geomean_ratio_cycnn_torch": v, "rows": n}
                        for label, (v, n) in ratios.items()},
            "elapsed_s": elapsed,
            "sgemm_peak_gflops": args.sgemm_peaks,
            "rotations": args.rotations,
            "thread_scaling": {f"{shape} {op}": {"threads": t, "speedup": v,
                                                 "sgemm_speedup": g}
                               for (shape, op), (t, v, g) in scaling.items()},
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
