"""Threads: the thread-count policy (cycnn._threads) against OpenMP and threadpoolctl, the team
sizes the kernels report, SIMD switching while kernels run, and the bounded scratch memory."""
import gc
import os
import threading

import numpy as np
import pytest

import cycnn
from cycnn import _scratch, _threads, ops, optim, reference
from cycnn._kernels import _openmp
from cycnn._kernels import conv as conv_kernels
from cycnn._kernels import optim as optim_kernels
from cycnn._kernels import pool as pool_kernels

OPENMP = _openmp.openmp_enabled()
needs_openmp = pytest.mark.skipif(not OPENMP, reason="built without OpenMP")


@pytest.fixture(autouse=True)
def follow_openmp():
    """Every test starts and ends following OpenMP's setting, on the best SIMD path."""
    cycnn.set_num_threads(None)
    yield
    cycnn.set_num_threads(None)
    conv_kernels.simd_select("auto")


def conv_team(n_images, **kw):
    """Run a small conv2d forward and return what the kernel reports about its parallel region."""
    x = np.ones((n_images, 3, 8, 8), np.float32)
    ops.conv2d(x, np.ones((4, 3, 3, 3), np.float32), **kw)
    return conv_kernels.last_parallel_region()


# ------------------------------------------------------------------ policy: OpenMP, threadpoolctl

def test_default_is_openmps_own_setting():
    assert cycnn.get_num_threads() == (_openmp.openmp_max_threads() if OPENMP else 1)


def test_threads_for_threshold_and_cap():
    cycnn.set_num_threads(3 if OPENMP else 1)
    n = cycnn.get_num_threads()
    small = _threads.MIN_PARALLEL_WORK - 1
    assert _threads.threads_for(small) == 1
    assert _threads.threads_for(_threads.MIN_PARALLEL_WORK) == n
    assert _threads.threads_for(10 ** 9, units=2) == min(n, 2)
    assert _threads.threads_for(10 ** 9, units=0) == 1
    with _threads.force_parallel():
        assert _threads.threads_for(small) == n
        assert _threads.threads_for(1, units=1) == 1
    assert _threads.threads_for(small) == 1            # threshold restored


@needs_openmp
def test_small_calls_run_serially_unless_forced():
    cycnn.set_num_threads(2)
    assert conv_team(4) == ("conv2d_forward", 1)       # 4*4*27*36 multiply-adds: too little
    with _threads.force_parallel():
        assert conv_team(4) == ("conv2d_forward", 2)
        assert conv_team(1) == ("conv2d_forward_split", 2)


@needs_openmp
def test_threadpoolctl_limits_cycnn():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    # threadpoolctl finds the very OpenMP runtime the kernels call
    ours = os.path.realpath(_openmp.runtime_path())
    assert os.path.basename(ours).startswith(("libgomp", "libomp", "libiomp"))
    found = [os.path.realpath(info["filepath"]) for info in threadpoolctl.threadpool_info()
             if info["user_api"] == "openmp"]
    assert ours in found, f"threadpoolctl sees {found}, the kernels call {ours}"
    with _threads.force_parallel():
        with threadpoolctl.threadpool_limits(2, user_api="openmp"):
            assert cycnn.get_num_threads() == 2
            assert conv_team(4) == ("conv2d_forward", 2)
        with threadpoolctl.threadpool_limits(1):
            assert cycnn.get_num_threads() == 1
            assert conv_team(4) == ("conv2d_forward", 1)
            assert conv_team(1) == ("conv2d_forward", 1)   # no split on 1 thread
            # an explicit count wins over OpenMP's setting; None follows it again
            cycnn.set_num_threads(2)
            assert cycnn.get_num_threads() == 2
            assert conv_team(4) == ("conv2d_forward", 2)
            cycnn.set_num_threads(None)
            assert cycnn.get_num_threads() == 1
            assert conv_team(4) == ("conv2d_forward", 1)
        assert cycnn.get_num_threads() == _openmp.openmp_max_threads()


def test_omp_num_threads_in_a_fresh_process(subprocess_env):
    import subprocess
    import sys
    code = ("import cycnn; from cycnn import _threads, ops; import numpy as np\n"
            "from cycnn._kernels import conv\n"
            "with _threads.force_parallel():\n"
            "    ops.conv2d(np.ones((5, 2, 6, 6)), np.ones((3, 2, 3, 3)))\n"
            "print(cycnn.get_num_threads(), conv.last_parallel_region()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=subprocess_env(OMP_NUM_THREADS="3"), timeout=120)
    assert out.returncode == 0, out.stderr
    expected = 3 if OPENMP else 1
    assert out.stdout.split() == [str(expected), str(expected)]


# ------------------------------------------------------------------ every kernel reports its team

@needs_openmp
@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_parallel_region_runs_the_threads_it_was_given(n):
    rng = np.random.default_rng(0)
    cycnn.set_num_threads(n)
    x = rng.standard_normal((4, 3, 9, 9))
    w = rng.standard_normal((5, 3, 3, 3))
    with _threads.force_parallel():
        y = ops.conv2d(x, w)
        assert conv_kernels.last_parallel_region() == ("conv2d_forward", n)
        ops.conv2d(x[:1], w)
        assert conv_kernels.last_parallel_region() == (
            "conv2d_forward" if n == 1 else "conv2d_forward_split", n)
        ops.conv2d_backward(y, x, w)
        assert conv_kernels.last_parallel_region() == ("conv2d_backward", n)
        ops.matmul(rng.standard_normal((5, 7)), rng.standard_normal((7, 64 * n)))
        assert conv_kernels.last_parallel_region() == ("gemm", n)
        ops.matmul(rng.standard_normal((5, 7)), rng.standard_normal((7, 64)))
        assert conv_kernels.last_parallel_region() == ("gemm", 1)      # one 64-column block
        p, idx = ops.max_pool2d(x, 2)
        assert pool_kernels.last_parallel_region() == ("max_pool2d_forward", n)
        ops.max_pool2d_backward(p, idx, x.shape)
        assert pool_kernels.last_parallel_region() == ("max_pool2d_backward", n)
        a = ops.avg_pool2d(x, 2)
        assert pool_kernels.last_parallel_region() == ("avg_pool2d_forward", n)
        ops.avg_pool2d_backward(a, x.shape, 2)
        assert pool_kernels.last_parallel_region() == ("avg_pool2d_backward", n)
        ops.max_pool2d(x[:1, :1], 2)                                    # a single plane
        assert pool_kernels.last_parallel_region() == ("max_pool2d_forward", 1)
        params = [np.ones(100)]
        optim.SGD(lr=0.1).step(params, [np.ones(100)])
        assert optim_kernels.last_parallel_region() == ("update", n)
        np.testing.assert_array_equal(params[0], np.full(100, 0.9))


# ------------------------------------------------------------------ SIMD switching while running

def test_switching_simd_paths_while_kernels_run_in_other_threads():
    """Python threads flip the GEMM path while others run matmuls and convolutions on 2 OpenMP
    threads each. Every GEMM call runs wholly on one path, so every output element equals the
    result of one of the paths bit for bit (a torn dispatch would give garbage or crash)."""
    paths = [p for p in conv_kernels.SIMD_PATHS if conv_kernels.simd_supported(p)]
    if len(paths) < 2:
        pytest.skip(f"this CPU runs only the {paths} path: nothing to switch between")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((67, 301)).astype(np.float32)
    b = rng.standard_normal((301, 259)).astype(np.float32)
    x = rng.standard_normal((3, 16, 11, 10)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    cycnn.set_num_threads(2)
    with _threads.force_parallel():
        want = {}
        for p in paths:
            conv_kernels.simd_select(p)
            want[p] = (ops.matmul(a, b), ops.conv2d(x, w, padding=1))
        # the paths round differently, so the comparison below can tell them apart
        assert not np.array_equal(want[paths[0]][0], want[paths[-1]][0])
        stop = threading.Event()
        errors = []

        def switch():
            i = 0
            while not stop.is_set():
                conv_kernels.simd_select(paths[i % len(paths)])
                i += 1

        def compute():
            try:
                for _ in range(40):
                    for k, got in enumerate((ops.matmul(a, b), ops.conv2d(x, w, padding=1))):
                        ok = np.zeros(got.shape, bool)
                        for p in paths:
                            ok |= got == want[p][k]
                        if not ok.all():
                            errors.append(f"output {k}: {int((~ok).sum())} elements match no path")
            except Exception as exc:   # noqa: BLE001 - reported below
                errors.append(repr(exc))

        switchers = [threading.Thread(target=switch) for _ in range(2)]
        workers = [threading.Thread(target=compute) for _ in range(3)]
        for t in switchers + workers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        for t in switchers:
            t.join()
    assert not errors, errors[:5]
    conv_kernels.simd_select("auto")
    assert conv_kernels.simd_name() == paths[-1]


# ------------------------------------------------------------------ scratch memory

def _conv_in_thread(x, w, out, i):
    out[i] = ops.conv2d(x, w, padding=1)


def test_release_scratch_frees_everything_and_later_calls_still_work():
    x = np.random.default_rng(1).standard_normal((2, 8, 12, 12)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((6, 8, 3, 3)).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    ops.conv2d(x, w, padding=1)
    kept = cycnn.scratch_bytes()
    assert kept >= 2 * 8 * 9 * 144 * 4 // 2           # at least the column matrix is kept
    assert cycnn.release_scratch() == kept
    assert cycnn.scratch_bytes() == 0
    np.testing.assert_allclose(ops.conv2d(x, w, padding=1), want, rtol=1e-4, atol=1e-4)
    assert cycnn.scratch_bytes() > 0                  # kept again


def test_scratch_of_an_ended_thread_is_freed():
    cycnn.release_scratch()
    x = np.ones((1, 4, 10, 10), np.float32)
    w = np.ones((2, 4, 3, 3), np.float32)
    out = [None]
    t = threading.Thread(target=_conv_in_thread, args=(x, w, out, 0))
    t.start()
    t.join()
    np.testing.assert_array_equal(out[0][0, :, 4, 4], [36.0, 36.0])
    del t
    gc.collect()
    assert cycnn.scratch_bytes() == 0


def test_scratch_stays_within_its_total_bound(monkeypatch):
    """Many Python threads convolving at once keep at most KEEP_BYTES_TOTAL bytes between calls;
    the calls beyond the bound get fresh buffers and still compute the right result."""
    cycnn.release_scratch()
    x = np.random.default_rng(3).standard_normal((2, 16, 20, 20)).astype(np.float32)
    w = np.random.default_rng(4).standard_normal((8, 16, 3, 3)).astype(np.float32)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    ops.conv2d(x, w, padding=1)
    per_call = cycnn.scratch_bytes()                  # what one call keeps
    cycnn.release_scratch()
    assert per_call > 0
    bound = 3 * per_call
    monkeypatch.setattr(_scratch, "KEEP_BYTES_TOTAL", bound)
    barrier = threading.Barrier(6)
    out, peaks = [None] * 6, []

    def work(i):
        barrier.wait()
        for _ in range(3):
            _conv_in_thread(x, w, out, i)
            peaks.append(cycnn.scratch_bytes())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(peaks) <= bound
    assert max(peaks) >= per_call                     # something was kept
    for got in out:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    cycnn.release_scratch()


def test_scratch_buffers_above_the_per_buffer_bound_are_not_kept(monkeypatch):
    cycnn.release_scratch()
    monkeypatch.setattr(_scratch, "KEEP_BYTES_PER_BUFFER", 1000)
    big = _scratch.scratch("test-big", (300,), np.float64)      # 2400 bytes
    assert big.shape == (300,) and cycnn.scratch_bytes() == 0
    small = _scratch.scratch("test-small", (100,), np.float64)  # 800 bytes: kept
    assert small.shape == (100,) and cycnn.scratch_bytes() == 800
    again = _scratch.scratch("test-small", (10, 5), np.float64)  # reuses the kept buffer
    assert np.shares_memory(again, small) and cycnn.scratch_bytes() == 800
    cycnn.release_scratch()


# ------------------------------------------------------------------ no NumPy BLAS in cycnn's paths

BLAS_CALLS = {"dot", "matmul", "tensordot", "inner", "vdot", "linalg"}
NOT_ENGINE = {"reference.py", "bench.py", "_profile.py", "_torch_train.py"}


def test_the_engine_never_calls_numpys_blas():
    """cycnn's own code (ops, layers, models, losses, optimizers...) never calls NumPy's BLAS
    (``@``, np.dot, np.matmul, np.tensordot, np.linalg, einsum(optimize=...)): OpenBLAS's thread
    pool would then spin against cycnn's OpenMP threads (README, notes on speed). The NumPy
    oracle, the benchmark drivers and the examples may."""
    import ast
    import pathlib
    root = pathlib.Path(cycnn.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.name in NOT_ENGINE or rel.parts[0] == "examples":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
                found.append(f"{rel}:{node.lineno} @")
            elif isinstance(node, ast.Attribute) and node.attr in BLAS_CALLS and (
                    node.attr in ("dot", "vdot")     # also ndarray.dot
                    or getattr(node.value, "id", "") in ("np", "numpy")):
                found.append(f"{rel}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "einsum" \
                    and any(k.arg == "optimize" for k in node.keywords):
                found.append(f"{rel}:{node.lineno} einsum(optimize=...)")
    assert root.joinpath("ops.py").exists() and root.joinpath("layers").is_dir()
    assert not found, found
