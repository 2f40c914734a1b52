"""pytest-benchmark suite: cycnn's kernels vs cycnn.reference (NumPy) vs PyTorch (if importable).

Run:   PYTHONPATH=src pytest benchmarks                      # measure (compare per group)
       PYTHONPATH=src pytest benchmarks --benchmark-disable   # smoke: every body runs once
       PYTHONPATH=src pytest benchmarks -k "not reference"    # skip the slow NumPy reference

Test modules set ``BENCH_OPS`` (op keys of :data:`cycnn.bench.OPS`) and define a test taking
``impl, op, shape, threads`` and the ``run_bench`` fixture; ``pytest_generate_tests`` below
parametrizes them over impl x op x shape x threads with ids ``{impl}-{op}-{shape}-{threads}``
(e.g. ``cycnn-conv_fwd_bwd-lenet-c2-2``). Results are grouped by op + shape + threads, so
pytest-benchmark prints the contenders side by side.

Environment:
    CYCNN_BENCH_THREADS     thread counts, comma-separated (default "1,2")
    CYCNN_BENCH_SHAPES      shape names, comma-separated (default: all of cycnn.bench.SHAPES)
    CYCNN_BENCH_BATCH       override the batch size N when measuring (default: the shape's)
    CYCNN_BENCH_SMOKE_BATCH batch size N under --benchmark-disable (default 4)
    CYCNN_BENCH_REF_ROUNDS  rounds for the NumPy reference, 1 iteration each (default 1)

Speed is never asserted here.
"""
import os

import pytest

import cycnn
from cycnn import bench

try:
    import pytest_benchmark  # noqa: F401
except ImportError:  # without the plugin there is no `benchmark` fixture: collect nothing
    collect_ignore_glob = ["test_*.py"]

TORCH = bench.load_torch()
IMPLS = ("cycnn", "torch", "reference")


def _env_list(name, default):
    text = os.environ.get(name, "").strip()
    return [t.strip() for t in text.split(",") if t.strip()] if text else list(default)


def _env_int(name, default):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value = int(text)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return value


THREADS = [int(t) for t in _env_list("CYCNN_BENCH_THREADS", ["1", "2"])]
SHAPE_NAMES = _env_list("CYCNN_BENCH_SHAPES", bench.SHAPES)
for _name in SHAPE_NAMES:
    if _name not in bench.SHAPES:
        raise ValueError(f"CYCNN_BENCH_SHAPES: unknown shape {_name!r}; "
                         f"choose from {', '.join(bench.SHAPES)}")
BATCH = _env_int("CYCNN_BENCH_BATCH", None)
SMOKE_BATCH = _env_int("CYCNN_BENCH_SMOKE_BATCH", 4)
REF_ROUNDS = _env_int("CYCNN_BENCH_REF_ROUNDS", 1)

_NO_TORCH = pytest.mark.skip(reason="torch is not importable")


def _params(ops):
    params = []
    for name in SHAPE_NAMES:
        for op in ops:
            if op not in bench.OPS_BY_KIND[bench.SHAPES[name].kind]:
                continue
            for threads in THREADS:
                for impl in IMPLS:
                    marks = [_NO_TORCH] if impl == "torch" and TORCH is None else []
                    params.append(pytest.param(impl, op, name, threads, marks=marks,
                                               id=f"{impl}-{op}-{name}-{threads}"))
    return params


def pytest_generate_tests(metafunc):
    ops = getattr(metafunc.module, "BENCH_OPS", None)
    if ops is None or "impl" not in metafunc.fixturenames:
        return
    metafunc.parametrize("impl,op,shape,threads", _params(ops), indirect=["threads"])


@pytest.fixture
def threads(request):
    """Run cycnn (and torch) on ``request.param`` threads; restore the previous counts after."""
    n = request.param
    saved = cycnn.get_num_threads()
    saved_torch = TORCH.get_num_threads() if TORCH is not None else None
    bench.set_threads(n, TORCH)
    try:
        yield n
    finally:
        cycnn.set_num_threads(saved)
        if TORCH is not None:
            TORCH.set_num_threads(saved_torch)


@pytest.fixture
def run_bench(benchmark, threads):
    """``run_bench(impl, op, shape)`` benchmarks one contender on one shape; returns its output."""
    def run(impl, op, shape):
        smoke = benchmark.disabled
        batch = SMOKE_BATCH if smoke else BATCH
        case = bench.make_case(impl, op, shape, batch=batch, torch=TORCH)
        benchmark.group = f"{op}-{shape}-{threads}"
        benchmark.extra_info.update({
            "impl": impl, "op": op, "shape": shape, "threads": threads,
            "batch": case.shape.n, "work": case.work, "work_unit": case.unit,
        })
        if impl == "reference":
            # The NumPy oracle is slow: REF_ROUNDS rounds (default 1) of one call, no warm-up.
            return benchmark.pedantic(case.fn, rounds=REF_ROUNDS, iterations=1, warmup_rounds=0)
        if not smoke:
            case.fn()  # warm up (first-touch, thread pools) outside the measurement
        return benchmark(case.fn)
    return run
