"""benchmarks/compare_training.py's timing schedule and its thread-count table (cycnn alone:
torch is not needed to check how the runs are ordered and summarised)."""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "compare_training.py"


def _module():
    if not SCRIPT.exists():
        pytest.skip("benchmarks/ not shipped here")
    spec = importlib.util.spec_from_file_location("compare_training", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_round_runs_each_thread_count_and_contender_alternating():
    order = _module().run_order([1, 2], ["cycnn", "torch"], 3)
    first = [(1, "cycnn"), (1, "torch"), (2, "cycnn"), (2, "torch")]
    assert order == first + first[::-1] + first
    # a 2-thread run never waits for all the 1-thread runs: both counts in every round
    for r in range(3):
        assert {t for t, _ in order[4 * r:4 * r + 4]} == {1, 2}


def test_two_thread_counts_give_rows_and_the_speed_up_from_their_medians():
    import cycnn    # the child imports this very copy (the source tree or the installed wheel)
    root = str(pathlib.Path(cycnn.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    _module()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--synthetic", "--threads", "1,2",
                           "--steps", "2", "--warmup", "1", "--runs", "2", "--batch-size", "8",
                           "--no-torch"], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    rate = {}
    for line in proc.stdout.splitlines():
        for t in (1, 2):
            if line.startswith(f"| {t} | cycnn"):
                rate[t] = float(line.split("|")[3].replace(",", ""))
    assert set(rate) == {1, 2} and min(rate.values()) > 0, proc.stdout
    speed_up, = [line for line in proc.stdout.splitlines() if line.startswith("speed-up 2 threads")]
    # the printed images/s are rounded to whole images: the ratio of the rounded figures is
    # within their rounding of the printed speed-up
    assert float(speed_up.split("cycnn ")[1].rstrip("x")) == pytest.approx(rate[2] / rate[1],
                                                                            abs=0.01 + 1 / rate[1])
