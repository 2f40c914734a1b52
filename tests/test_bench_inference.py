"""``python -m cycnn.bench --inference``: the turn order, the paired ratio, the worker protocol
and the printed table. Speed is never asserted."""
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import cycnn
from cycnn import _bench_inference as bi
from cycnn import bench


def _env():
    env = dict(os.environ)
    root = str(pathlib.Path(cycnn.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_inference(*args):
    proc = subprocess.run([sys.executable, "-m", "cycnn.bench", "--inference", *args],
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def table(stdout):
    """(header cells, {batch: row cells}) of the first table printed."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0].strip().strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "batch":
            break
        rows[int(cells[0])] = cells
    return head, rows


def parse_cell(cell):
    """(ms, img/s or None, GFLOP/s or None) of a contender's cell."""
    m = re.fullmatch(r"([\d.]+) ms(?: \(([\d,]+) img/s\), (\d+) GFLOP/s)?", cell)
    assert m, cell
    ms, ips, gf = m.groups()
    return float(ms), ips and float(ips.replace(",", "")), gf and float(gf)


# ---------------------------------------------------------------- pure functions

def test_paired_ratio_is_the_median_of_per_round_ratios_of_block_medians():
    cyc = [[1.0, 1.0, 9.0], [2.0, 2.0, 2.0], [3.0, 30.0, 3.0]]   # block medians 1, 2, 3
    ort = [[2.0, 2.0], [2.0, 2.0, 100.0], [3.0, 3.0, 3.0]]       # block medians 2, 2, 3
    assert bi.paired_ratio(cyc, ort) == pytest.approx(1.0)      # median of 0.5, 1, 1
    assert bi.paired_ratio(ort, cyc) == pytest.approx(1.0)      # median of 2, 1, 1


def test_paired_ratio_cancels_slow_phases_and_ignores_one_bad_turn():
    """The host runs at 60% speed in some rounds: each round's ratio is still 1.2. One round in
    which only cycnn's turn was hit (3.0 s calls) does not move the median (a mean would)."""
    speed = [1.0, 0.6, 1.0, 0.6, 0.6]
    cyc = [[1.2 / s] * 3 for s in speed]
    ort = [[1.0 / s] * 3 for s in speed]
    assert bi.paired_ratio(cyc, ort) == pytest.approx(1.2)
    cyc[2] = [3.0] * 3
    assert bi.paired_ratio(cyc, ort) == pytest.approx(1.2)
    assert bi.paired_ratio(ort, cyc) == pytest.approx(1 / 1.2)


def test_paired_ratio_needs_matching_rounds():
    with pytest.raises(ValueError, match="same number"):
        bi.paired_ratio([[1.0]], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="same number"):
        bi.paired_ratio([], [])


def test_turn_order_keeps_cycnn_and_ort_adjacent_and_rotates():
    names = ["cycnn", "ort", "torch"]
    orders = [bi.turn_order(names, r) for r in range(4)]
    assert orders == [["cycnn", "ort", "torch"], ["torch", "cycnn", "ort"],
                      ["ort", "cycnn", "torch"], ["torch", "ort", "cycnn"]]
    for r in range(12):
        order = bi.turn_order(names, r)
        assert sorted(order) == sorted(names)
        assert abs(order.index("cycnn") - order.index("ort")) == 1
    # without the pair it is the plain rotation of bench._rotate
    assert [bi.turn_order(["cycnn", "torch"], r) for r in range(3)] == [
        ["cycnn", "torch"], ["torch", "cycnn"], ["cycnn", "torch"]]
    assert [bi.turn_order(["cycnn", "ort"], r) for r in range(3)] == [
        ["cycnn", "ort"], ["ort", "cycnn"], ["cycnn", "ort"]]
    assert bi.turn_order(["cycnn"], 5) == ["cycnn"]


# ---------------------------------------------------------------- worker protocol

def test_worker_protocol_setup_warm_time_and_errors():
    worker = bench._Worker("cycnn", module="cycnn._bench_inference",
                           env={"OMP_NUM_THREADS": "1"})
    try:
        with pytest.raises(bench.WorkerError, match="net must be one of"):
            worker.ask(cmd="setup", net="resnet", threads=1)
        ans = worker.ask(cmd="setup", net="mnist", threads=1)
        model = bi.build_net("mnist")
        check_x = np.random.default_rng(7).standard_normal((16, 1, 28, 28)).astype(np.float32)
        np.testing.assert_allclose(np.asarray(ans["check"], np.float32), model.predict(check_x),
                                   rtol=1e-5, atol=1e-5)
        assert ans["flops"] == bi.net_flops(model) > 0
        with pytest.raises(bench.WorkerError, match="KeyError"):
            worker.ask(cmd="time", reps=2)              # no batch warmed up yet
        assert worker.ask(cmd="warm", batch=2)["per_call"] > 0
        times = worker.ask(cmd="time", reps=3)["times"]
        assert len(times) == 3 and all(t > 0 for t in times)
        with pytest.raises(bench.WorkerError, match="unknown command"):
            worker.ask(cmd="nope")
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_measure_batch_runs_rounds_until_the_budget():
    worker = bench._Worker("cycnn", module="cycnn._bench_inference",
                           env={"OMP_NUM_THREADS": "1"})
    workers = {"cycnn": worker}
    try:
        worker.ask(cmd="setup", net="mnist", threads=1)
        blocks = bi._measure_batch(workers, 1, 3, 0.05, print)
    finally:
        worker.close()
    rounds = blocks["cycnn"]
    assert len(rounds) >= 3 and all(len(b) >= 1 for b in rounds)
    assert sum(map(sum, rounds)) >= 0.05


# ---------------------------------------------------------------- the command

def test_cli_cycnn_only_prints_the_table():
    out = run_inference("--nets", "mnist", "--batches", "1,2", "--seconds", "0.05",
                        "--rounds", "2", "--threads", "1", "--contenders", "cycnn")
    assert "mnist: 27.6 MFLOP per image" in out and "1 threads" in out
    assert "taking turns in blocks of ~0.05 s" in out     # a tiny budget: short turns
    head, rows = table(out)
    assert head == ["batch", "cycnn predict"]
    assert sorted(rows) == [1, 2]
    ms1, _, _ = parse_cell(rows[1][1])
    ms2, ips, gflops = parse_cell(rows[2][1])
    assert ms1 > 0 and ms2 > 0
    assert ips == pytest.approx(2 / (ms2 / 1e3), rel=0.01)
    assert gflops == pytest.approx(2 * 27.6e6 / (ms2 / 1e3) / 1e9, rel=0.05, abs=1)
    assert "outputs:" not in out     # nothing to compare with


def test_missing_contender_is_skipped_visibly(monkeypatch):
    available = bi._available
    monkeypatch.setattr(bi, "_available", lambda c: c != "torch" and available(c))
    lines = []
    res = bi.run(nets=("mnist",), batches=(1,), threads=1, rounds=1, seconds=0.01,
                 contenders=("cycnn", "torch"), out=lines.append)
    assert "torch: not installed, skipped" in lines
    assert list(res["mnist"]["median"]) == ["cycnn"] and res["mnist"]["ratio"] == {}
    assert res["mnist"]["rounds"][1] >= 1


@pytest.fixture(scope="module")
def all_run():
    """One run with cycnn and every other contender that is installed."""
    others = [c for c in ("ort", "torch") if bi._available(c)]
    if not others:
        pytest.skip("neither onnxruntime+onnx nor torch is installed")
    out = run_inference("--nets", "mnist", "--batches", "1", "--seconds", "0.05", "--rounds",
                        "2", "--threads", "1", "--contenders", ",".join(["cycnn"] + others))
    return others, out


@pytest.mark.parametrize("contender, module", [("ort", "onnxruntime"), ("torch", "torch")])
def test_cli_other_contender_column_and_output_check(all_run, contender, module):
    pytest.importorskip(module)
    others, out = all_run
    head, rows = table(out)
    name = {"ort": "ONNX Runtime", "torch": "PyTorch eager"}[contender]
    assert head[:2] == ["batch", "cycnn predict"]
    assert parse_cell(rows[1][1])[0] > 0 and parse_cell(rows[1][head.index(name)])[0] > 0
    err = re.search(rf"max \|{contender} - cycnn\| = (\S+)", out)
    assert err and float(err.group(1)) < 1e-4, out


def test_cli_ratio_column_is_the_paired_ratio(all_run):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    head, rows = table(all_run[1])
    assert head[-1] == "cycnn / ORT time (median of paired per-round ratios)"
    assert float(rows[1][-1]) > 0


@pytest.mark.parametrize("args, message", [
    (["--batches", "0"], "--batches must be positive ints"),
    (["--rounds", "0"], "--rounds must be in"),
    (["--seconds", "-1"], "--seconds must be in"),
    (["--threads", "0"], "--threads must be in"),
    (["--nets", "resnet"], "--nets must name some of"),
    (["--contenders", "tf"], "--contenders must name some of"),
])
def test_bad_options_are_rejected(args, message):
    with pytest.raises(SystemExit, match=message):
        bi.main(args)
