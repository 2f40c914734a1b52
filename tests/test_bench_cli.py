"""The benchmark command line, ``python -m cycnn.bench``: runs, prints its table, writes JSON,
rejects bad options. Speed is never asserted."""
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import cycnn
from cycnn import bench

CONV_SHAPES = [name for name, s in bench.SHAPES.items() if s.kind == "conv"]
POOL_SHAPES = [name for name, s in bench.SHAPES.items() if s.kind == "pool"]


def _env():
    """The environment for a child Python that imports this very copy of cycnn."""
    env = dict(os.environ)
    root = str(pathlib.Path(cycnn.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "cycnn.bench", *args], env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def table_rows(stdout):
    """Data rows of the printed table as lists of cell strings."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith("|") and not line.startswith("|--"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0] != "shape":
                rows.append(cells)
    return rows


def _header_cells(stdout):
    for line in stdout.splitlines():
        if line.startswith("| shape"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise AssertionError(f"no table header in:\n{stdout}")


@pytest.fixture(scope="module")
def quick_run():
    proc = run_cli("--quick", "--no-torch", "--threads", "1")
    return proc


def test_quick_exits_zero(quick_run):
    assert quick_run.returncode == 0, quick_run.stdout + quick_run.stderr


def test_quick_header(quick_run):
    out = quick_run.stdout
    assert f"cycnn {cycnn.__version__}" in out
    assert "numpy" in out and "build_info:" in out
    assert "torch not used (--no-torch)" in out


def test_quick_table_has_every_shape_and_op(quick_run):
    rows = table_rows(quick_run.stdout)
    header = _header_cells(quick_run.stdout)
    assert header[:6] == ["shape", "op", "thr", "cycnn ms", "torch ms", "ref ms"]
    seen = {(r[0], r[1]) for r in rows}
    expected = {(s, op) for s in CONV_SHAPES for op in ("conv_fwd", "conv_fwd_bwd")}
    expected |= {(s, "maxpool_fwd_bwd") for s in POOL_SHAPES}
    assert seen == expected
    assert len(rows) == len(expected)  # one thread count


def test_quick_table_numeric_columns(quick_run):
    header = _header_cells(quick_run.stdout)
    col = {name: i for i, name in enumerate(header)}
    for row in table_rows(quick_run.stdout):
        assert row[col["thr"]] == "1"
        for name in ("cycnn ms", "ref ms", "cycnn rate", "x ref"):  # --quick runs the reference
            assert float(row[col[name]]) > 0, (name, row)
        assert row[col["torch ms"]] == "-" and row[col["cyc/torch"]] == "-"
        assert row[col["unit"]] == ("GB/s" if row[col["op"]].startswith("maxpool") else "GFLOP/s")
        assert row[col["check"]] == "ok", row


def test_json_output(tmp_path):
    path = tmp_path / "bench.json"
    proc = run_cli("--quick", "--no-torch", "--threads", "1", "--shapes", "lenet-c1,pool-28",
                   "--reps", "2", "--json", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(path.read_text())
    assert doc["cycnn"]["version"] == cycnn.__version__
    assert doc["torch"] is None
    results = doc["results"]
    assert [(r["shape"], r["op"]) for r in results] == [
        ("lenet-c1", "conv_fwd"), ("lenet-c1", "conv_fwd_bwd"), ("pool-28", "maxpool_fwd_bwd")]
    for r in results:
        assert r["threads"] == 1 and r["geometry"]["n"] == bench.QUICK_BATCH
        assert set(r["times_s"]) == {"cycnn", "reference"}
        assert len(r["times_s"]["cycnn"]) == 2
        assert all(t > 0 for ts in r["times_s"].values() for t in ts)
        for impl, ts in r["times_s"].items():
            assert r["median_s"][impl] == pytest.approx(float(np.median(ts)), rel=1e-12)
        # work is the shape's FLOPs / bytes at the quick batch; the rate is work per median second
        shape = bench.SHAPES[r["shape"]].with_batch(bench.QUICK_BATCH)
        assert r["work"] == shape.work(r["op"])
        assert r["cycnn_rate"] == pytest.approx(r["work"] / r["median_s"]["cycnn"] / 1e9)
        assert r["check"] is True
        # the sgemm peak is timed in conv rotations only
        conv = r["work_unit"] == "FLOP"
        assert set(r["sgemm_times_s"]) == ({"cycnn", "numpy"} if conv else set())
        assert (r["share_of_sgemm_peak"] is not None) == conv


@pytest.mark.skipif(bench.load_torch() is None, reason="torch is not importable")
def test_quick_with_torch():
    proc = run_cli("--quick", "--threads", "1", "--shapes", "lenet-c1,pool-28")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = _header_cells(proc.stdout)
    rows = table_rows(proc.stdout)
    assert len(rows) == 3
    for row in rows:
        cyc, torch_ms = (float(row[header.index(c)]) for c in ("cycnn ms", "torch ms"))
        assert torch_ms > 0
        # the ratio column is cycnn's median over torch's (both printed to >= 3 digits)
        assert float(row[header.index("cyc/torch")]) == pytest.approx(cyc / torch_ms, rel=0.02)
    assert "geometric mean of cycnn/torch time ratios" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--threads", "0"], "--threads"),
    (["--threads", "1,x"], "--threads"),
    (["--threads", ""], "--threads"),
    (["--threads", "1,,2"], "--threads"),
    (["--shapes", "lenet-c9"], "lenet-c9"),
    (["--ops", "fft"], "fft"),
    (["--reps", "0"], "--reps"),
    (["--reps", "many"], "--reps"),
    (["--batch", "-4"], "--batch"),
    (["--warmup", "0"], "--warmup"),
    (["--min-time", "-1"], "--min-time"),
    (["--min-time", "soon"], "--min-time"),
    (["--reference", "--no-reference"], "not allowed with"),
    (["--shapes", "pool-28", "--ops", "conv"], "no benchmark matches"),
    (["--json", "/nonexistent-folder-xyz/out.json"], "--json"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_bad_options_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err, err


def test_bad_option_subprocess_exit_2():
    proc = run_cli("--threads", "two", timeout=60)
    assert proc.returncode == 2
    assert "argument --threads" in proc.stderr and "positive integers" in proc.stderr
    assert proc.stdout == ""


def test_help_lists_shapes():
    proc = run_cli("--help", timeout=60)
    assert proc.returncode == 0
    for name in bench.SHAPES:
        assert name in proc.stdout
    for option in ("--quick", "--threads", "--shapes", "--ops", "--reps", "--no-torch",
                   "--reference", "--json"):
        assert option in proc.stdout


def test_work_formulas():
    conv = bench.SHAPES["lenet-c2"]
    assert conv.out_hw() == (14, 14)
    assert conv.work("conv_fwd") == 2 * 64 * 64 * 14 * 14 * 32 * 5 * 5
    assert conv.work("conv_fwd_bwd") == 3 * conv.work("conv_fwd")
    assert bench.SHAPES["s2"].out_hw() == (16, 16)
    pool = bench.SHAPES["pool-32"]
    x, y = 64 * 64 * 32 * 32, 64 * 64 * 16 * 16
    assert pool.work("maxpool_fwd_bwd") == (4 * x + 12 * y) + (12 * y + 4 * x)


def test_measure_interleaves_and_counts():
    order = []
    fns = {name: (lambda name=name: order.append(name)) for name in "ABC"}
    times, outputs = bench.measure(fns, {"A": 4, "B": 4, "C": 2}, warmup=1)
    assert order[:3] == ["A", "B", "C"]  # warm-up
    timed = order[3:]
    assert [len(times[n]) for n in "ABC"] == [4, 4, 2]
    assert timed.count("C") == 2 and all(t >= 0 for ts in times.values() for t in ts)
    # rounds rotate: no contender always runs first
    assert timed[0] == "A" and timed[3] == "B"  # round 0: A B C; round 1: B A (C skipped)
    assert set(outputs) == set("ABC")


def test_measure_extends_fast_contenders():
    fns = {"fast": lambda: None, "slow": lambda: time.sleep(0.01)}
    times, _ = bench.measure(fns, {"fast": 2, "slow": 2}, warmup=1, min_time=0.05,
                             extend=("fast", "slow"), max_reps=20)
    assert len(times["fast"]) == 20  # capped at max_reps
    assert 2 <= len(times["slow"]) <= 6  # about 0.05 s / 0.01 s
    times, _ = bench.measure(fns, {"fast": 2, "slow": 2}, warmup=1, min_time=0.05,
                             extend=("slow",), max_reps=20)
    assert len(times["fast"]) == 2


def test_main_in_process(capsys):
    before = cycnn.get_num_threads()
    code = bench.main(["--quick", "--no-torch", "--threads", "1", "--shapes", "1x1",
                       "--ops", "conv_fwd", "--reps", "1"])
    out = capsys.readouterr().out
    assert code == 0
    rows = table_rows(out)
    assert [(r[0], r[1]) for r in rows] == [("1x1", "conv_fwd")]
    assert cycnn.get_num_threads() == before          # the thread count is restored


def test_failing_kernel_is_reported_not_fatal(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise NotImplementedError("pool kernel missing")
    monkeypatch.setattr(bench._ops, "max_pool2d", broken)
    code = bench.main(["--quick", "--no-torch", "--threads", "1", "--shapes", "1x1,pool-28",
                       "--ops", "conv_fwd,pool", "--reps", "1", "--in-process"])
    captured = capsys.readouterr()
    assert code == 1
    rows = {r[0]: r for r in table_rows(captured.out)}
    header = _header_cells(captured.out)
    assert rows["pool-28"][header.index("cycnn ms")] == "error"
    assert rows["pool-28"][header.index("check")] == "ERROR"
    assert float(rows["pool-28"][header.index("ref ms")]) > 0
    assert rows["1x1"][header.index("check")] == "ok"
    assert "pool kernel missing" in captured.err


def test_profile_prints_the_training_step_breakdown():
    proc = run_cli("--profile", "--threads", "1", "--reps", "2", "--warmup", "1", "--batch", "8",
                   "--no-torch")
    assert proc.returncode == 0, proc.stderr
    parts = {row[0]: float(row[1]) for row in table_rows(proc.stdout) if row[1] != "ms"}
    expected = ["forward  conv2d", "forward  max_pool2d", "forward  dense", "loss",
                "backward conv2d", "backward dense", "optimizer Adam", "sum of the parts",
                "model.train_step", "model.fit"]
    for name in expected:
        assert any(key.startswith(name) for key in parts), (name, sorted(parts))
    total = parts["sum of the parts"]
    assert 0 < total and sum(v for k, v in parts.items()
                             if k.startswith(("forward", "backward", "loss", "optimizer"))) \
        == pytest.approx(total, rel=0.01, abs=0.02)
    assert "cycnn model.fit:" in proc.stdout and "img/s" in proc.stdout


def test_compare_training_script_runs_its_workers():
    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "compare_training.py"
    if not script.exists():
        pytest.skip("benchmarks/ not shipped here")
    proc = subprocess.run([sys.executable, str(script), "--synthetic", "--threads", "1",
                           "--steps", "2", "--warmup", "1", "--runs", "1", "--batch-size", "8",
                           "--no-torch"], env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 1 | cycnn")]
    assert len(rows) == 1, proc.stdout
    assert float(rows[0].split("|")[3].replace(",", "")) > 0      # images/s


def test_compare_training_epoch_over_seeds_gives_each_run_and_their_mean():
    script = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "compare_training.py"
    if not script.exists():
        pytest.skip("benchmarks/ not shipped here")
    proc = subprocess.run([sys.executable, str(script), "--synthetic", "--epoch", "--seeds", "2",
                           "--images", "256", "--threads", "1", "--no-torch"],
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    runs = [line.split("|") for line in proc.stdout.splitlines() if line.startswith("| 1 | cycnn |")]
    assert [int(r[3]) for r in runs[:2]] == [0, 1], proc.stdout    # one row per seed
    acc = [float(r[4]) for r in runs[:2]]
    mean, = [line.split("|") for line in proc.stdout.splitlines()
             if line.startswith("| 1 | cycnn | 0.") and line.count("|") == 6]
    assert float(mean[3]) == pytest.approx(sum(acc) / 2, abs=1e-4), proc.stdout
    assert mean[4].strip() == f"{min(acc):.4f} - {max(acc):.4f}"


def _sgemm_rate(n, times):
    return 2.0 * n ** 3 / float(np.median(times)) / 1e9


def test_thread_counts_and_sgemm_peak_are_timed_in_one_rotation(tmp_path):
    """Default mode: each (contender, thread count) in its own process, all thread counts of a
    (shape, op) in ONE rotation with cycnn's GEMM and NumPy's BLAS as contenders; '% peak' is
    the share of that in-rotation sgemm peak, '% start pk' of the peak measured first, and the
    speed-up over 1 thread divides times of the same rotation."""
    path = tmp_path / "bench.json"
    proc = run_cli("--quick", "--no-torch", "--threads", "1,2", "--shapes", "1x1",
                   "--ops", "conv_fwd_bwd", "--reps", "2", "--json", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sgemm peak at the start" in proc.stdout
    doc = json.loads(path.read_text())
    rotation, = doc["rotations"]
    assert (rotation["shape"], rotation["op"], rotation["threads"]) == ("1x1", "conv_fwd_bwd",
                                                                          [1, 2])
    sgemm = [f"sgemm-{g}@{t}" for t in (1, 2) for g in ("cycnn", "numpy")]
    assert set(rotation["order"]) == {"cycnn@1", "cycnn@2", "reference"} | set(sgemm)
    header = _header_cells(proc.stdout)
    rows = doc["results"]
    assert [(r["threads"], r["rotation"]) for r in rows] == [(1, 0), (2, 0)]
    for row, cells in zip(rows, table_rows(proc.stdout)):
        t = row["threads"]
        start = doc["sgemm_peak_gflops"][str(t)]
        assert set(start) == {"cycnn", "numpy"} and all(v > 0 for v in start.values())
        assert row["sgemm_peak_start"] == pytest.approx(max(start.values()))
        # the in-rotation peak: the sgemm contenders' raw times, one turn in every round
        assert row["sgemm_n"] == bench.SGEMM_QUICK_SIZE
        rates = {g: _sgemm_rate(row["sgemm_n"], ts) for g, ts in row["sgemm_times_s"].items()}
        assert set(rates) == {"cycnn", "numpy"} and all(v > 0 for v in rates.values())
        assert rotation["order"].count(f"sgemm-cycnn@{t}") == rotation["order"].count(
            f"sgemm-numpy@{t}") >= 1
        assert row["sgemm_rates_rotation"] == pytest.approx(rates)
        assert row["sgemm_peak_rotation"] == pytest.approx(max(rates.values()))
        assert row["share_of_sgemm_peak"] == pytest.approx(
            row["cycnn_rate"] / row["sgemm_peak_rotation"])
        assert row["share_of_start_peak"] == pytest.approx(
            row["cycnn_rate"] / row["sgemm_peak_start"])
        assert cells[header.index("sgemm GF/s")] == f"{row['sgemm_peak_rotation']:.1f}"
        assert cells[header.index("% peak")] == f"{100 * row['share_of_sgemm_peak']:.0f}%"
        assert cells[header.index("% start pk")] == f"{100 * row['share_of_start_peak']:.0f}%"
        assert row["check"] is True and len(row["times_s"]["cycnn"]) == 2
    # the reference takes part once per rotation: both rows show its one set of times
    assert rows[0]["times_s"]["reference"] == rows[1]["times_s"]["reference"]
    one, two = rows
    speedup = one["median_s"]["cycnn"] / two["median_s"]["cycnn"]
    sgemm_speedup = two["sgemm_peak_rotation"] / one["sgemm_peak_rotation"]
    scaling = doc["thread_scaling"]["1x1 conv_fwd_bwd"]
    assert scaling["threads"] == 2
    assert scaling["speedup"] == pytest.approx(speedup)
    assert scaling["sgemm_speedup"] == pytest.approx(sgemm_speedup)
    assert f"1x1 {speedup:.2f}x (2 thr; sgemm {sgemm_speedup:.2f}x)" in proc.stdout


def test_sgemm_peak_leaves_numpy_out_without_threadpoolctl(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    assert bench._gemm_impls() == ("cycnn", "numpy")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "threadpoolctl" else real(name, *a))
    assert bench._gemm_impls() == ("cycnn",)


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs Linux /proc")
def test_blas_workers_let_openblas_threads_sleep(monkeypatch):
    """NumPy's OpenBLAS threads would spin ~0.1 s into the next contender's turn: the workers
    running it (sgemm, reference) get OPENBLAS_THREAD_TIMEOUT, the others do not; every worker
    gets malloc thresholds that keep freed memory (the user's own settings win)."""
    def environ(impl):
        worker = bench._worker(impl)
        try:
            with pytest.raises(bench.WorkerError, match="unknown command"):
                worker.ask(cmd="hello")                     # the worker is up and serving
            with open(f"/proc/{worker.proc.pid}/environ", "rb") as f:
                return f.read().split(b"\0")
        finally:
            worker.close()

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    for impl, expected in (("numpy", True), ("reference", True), ("cycnn", False)):
        env = environ(impl)
        assert (b"OPENBLAS_THREAD_TIMEOUT=4" in env) == expected, impl
        # every worker keeps freed memory for reuse (no fresh pages per call)
        assert f"MALLOC_MMAP_THRESHOLD_={1 << 30}".encode() in env, impl
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "8")        # the user's settings are kept
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    env = environ("numpy")
    assert b"OPENBLAS_THREAD_TIMEOUT=8" in env and b"MALLOC_MMAP_THRESHOLD_=65536" in env


def test_one_thread_count_alone():
    proc = run_cli("--quick", "--no-torch", "--no-reference", "--threads", "2", "--shapes",
                   "lenet-c1", "--ops", "conv_fwd", "--reps", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = _header_cells(proc.stdout)
    row, = table_rows(proc.stdout)
    assert row[header.index("thr")] == "2" and float(row[header.index("sgemm GF/s")]) > 0
    assert "speed-up over 1 thread" not in proc.stdout


class _FakeWorker:
    """Answers measure_workers' requests like a worker process, logging them in ``log``."""

    def __init__(self, name, per_call, log):
        self.name, self.per_call, self.log = name, per_call, log

    def ask(self, cmd, **request):
        self.log.append((self.name, cmd, request.get("reps")))
        if cmd == "time":
            assert request["warm"] == bench.TURN_WARMUP >= 1   # every turn starts warm
        if cmd == "setup":
            if request["save"]:
                np.savez(request["save"], np.full(2, len(self.name), np.float32))
            return {"elapsed": self.per_call}
        return {"times": [self.per_call] * request["reps"]}


def test_rotation_interleaves_thread_counts_and_fills_every_round_with_the_peak(tmp_path):
    log = []
    per_call = {"c@1": 0.02, "c@2": 0.01, "t@1": 0.05, "s@1": 0.02, "s@2": 0.002}
    contenders = {n: (_FakeWorker(n, p, log), {"op": "x"}) for n, p in per_call.items()}
    errors = {}
    times, outputs, order = bench.measure_workers(
        contenders, {n: 6 for n in per_call}, 1, 0.0, (), 100, errors, str(tmp_path),
        fill=("s@1", "s@2"))
    assert errors == {} and set(outputs) == {"c@1", "c@2", "t@1"}   # fill: not cross-checked
    assert outputs["c@1"][0].tolist() == [3.0, 3.0]
    timed = [(n, reps) for n, cmd, reps in log if cmd == "time"]
    assert [n for n, _ in timed] == order
    # blocks of about BLOCK_S (0.05 s): c@1 2 calls (3 turns), c@2 5 (2 turns), t@1 1 (6 turns)
    assert {n: [r for m, r in timed if m == n] for n in ("c@1", "c@2", "t@1")} == {
        "c@1": [2, 2, 2], "c@2": [5, 5], "t@1": [1] * 6}
    assert [len(times[n]) for n in ("c@1", "c@2", "t@1")] == [6, 10, 6]
    # the sgemm contenders take a turn in every round (6 rounds), each as long as the longest
    # of the others' turns (0.05 s: 2 calls of s@1), at most reps (6) calls (s@2)
    assert order.count("s@1") == order.count("s@2") == 6
    assert {m: {r for n, r in timed if n == m} for m in ("s@1", "s@2")} == {"s@1": {2},
                                                                            "s@2": {6}}
    # thread counts interleave: c@2 runs between c@1's first and last turns, and rounds rotate
    first, last = order.index("c@1"), len(order) - 1 - order[::-1].index("c@1")
    assert first < order.index("c@2") < last
    # round r starts r places further on; c@1 runs in rounds 0, 2, 4 and c@2 in 0, 3
    assert order == ["c@1", "c@2", "t@1", "s@1", "s@2",
                     "t@1", "s@1", "s@2",
                     "t@1", "s@1", "s@2", "c@1",
                     "s@1", "s@2", "c@2", "t@1",
                     "s@2", "c@1", "t@1", "s@1",
                     "t@1", "s@1", "s@2"]


def test_rotation_leaves_out_a_contender_whose_setup_fails(tmp_path):
    class Broken(_FakeWorker):
        def ask(self, cmd, **request):
            raise bench.WorkerError("no such kernel")
    log = []
    contenders = {"c@1": (_FakeWorker("c@1", 0.01, log), {}), "c@2": (Broken("c@2", 0, log), {}),
                  "s@1": (_FakeWorker("s@1", 0.01, log), {})}
    errors = {}
    times, outputs, order = bench.measure_workers(
        contenders, {n: 2 for n in contenders}, 1, 0.0, (), 100, errors, str(tmp_path),
        fill=("s@1",))
    assert set(errors) == {"c@2"} and "no such kernel" in str(errors["c@2"])
    assert set(times) == {"c@1", "s@1"} and order == ["c@1", "s@1"]


def test_thread_scaling_divides_times_of_one_rotation():
    def row(threads, rotation, t, peak):
        return {"shape": "a", "op": "conv_fwd_bwd", "threads": threads, "rotation": rotation,
                "median_s": {"cycnn": t}, "sgemm_peak_rotation": peak}
    scaling = bench.thread_scaling([row(1, 0, 4.0, 80.0), row(2, 0, 2.5, 140.0)])
    assert scaling == {("a", "conv_fwd_bwd"): (2, pytest.approx(1.6), pytest.approx(1.75))}
    assert bench.thread_scaling([row(1, 0, 4.0, 80.0), row(2, 1, 2.5, 140.0)]) == {}
    # --in-process: no rotation and no in-rotation peak
    assert bench.thread_scaling([row(1, None, 4.0, None), row(2, None, 2.0, None)]) == {
        ("a", "conv_fwd_bwd"): (2, pytest.approx(2.0), None)}


def test_worker_protocol_reports_errors():
    """A worker answers one JSON line per request and reports a bad request as an error."""
    worker = bench._Worker("cycnn")
    try:
        with pytest.raises(bench.WorkerError, match="unknown shape"):
            worker.ask(cmd="setup", shape="nope", op="conv_fwd", batch=1, threads=1, warmup=1)
        worker.ask(cmd="setup", shape="1x1", op="conv_fwd", batch=1, threads=1, warmup=1)
        times = worker.ask(cmd="time", reps=3)["times"]
        assert len(times) == 3 and all(t > 0 for t in times)
        worker.ask(cmd="setup", op="sgemm", n=32, threads=1, warmup=1)   # the peak's setup
        times = worker.ask(cmd="time", reps=2)["times"]
        assert len(times) == 2 and all(t > 0 for t in times)
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_time_calls_runs_the_untimed_warm_calls_first():
    from cycnn._workers import time_calls
    calls = []
    times = time_calls(lambda: calls.append(len(calls)), 3, warm=2)
    assert len(calls) == 5 and len(times) == 3 and all(t >= 0 for t in times)
    assert len(time_calls(lambda: calls.append(0), 2)) == 2 and len(calls) == 7
