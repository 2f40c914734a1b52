"""Data-parallel training over MPI (cycnn.distributed), run under ``mpiexec -n 2``.

Each case runs tests/_mpi_worker.py in subprocesses with a timeout, so a hang fails the test
instead of blocking the suite. Skipped (visibly) where mpi4py or mpiexec is missing, except under
CI=true, where they are part of the set-up and their absence is a failure.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cycnn import distributed

WORKER = pathlib.Path(__file__).with_name("_mpi_worker.py")


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("mpi4py is not installed (CI installs cycnn[mpi] and mpich)")
        pytest.skip("mpi4py is not installed (pip install 'cycnn[mpi]' mpich)")
    exe = shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                         os.environ.get("PATH", "")]))
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mpiexec not found (pip install mpich)")
        pytest.skip("mpiexec not found (pip install mpich)")
    return exe


def _run(args, env, timeout=120):
    try:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{args} hung for {timeout}s:\n{exc.stdout}\n{exc.stderr}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, subprocess_env):
    """Weights and logs of one epoch: on 2 ranks and in a single process (same global batch)."""
    exe = _mpiexec()
    out = tmp_path_factory.mktemp("mpi")
    results = {}
    for mode in ("train", "train_bn"):
        folder = out / mode
        folder.mkdir()
        ran = _run([exe, "-n", "2", sys.executable, str(WORKER), mode, str(folder)],
                   subprocess_env())
        assert ran.returncode == 0, ran.stdout + ran.stderr
        single = _run([sys.executable, str(WORKER), mode, str(folder)], subprocess_env())
        assert single.returncode == 0, single.stdout + single.stderr
        results[mode] = folder
    return results


def _load(folder, rank, size):
    with np.load(folder / f"weights-{rank}-of-{size}.npz") as f:
        weights = [f[f"arr_{i}"] for i in range(len(f.files))]
    with open(folder / f"result-{rank}-of-{size}.json") as f:
        return weights, json.load(f)


def test_two_ranks_match_a_single_process_with_the_same_global_batch(trained):
    w0, r0 = _load(trained["train"], 0, 2)
    w_single, r_single = _load(trained["train"], 0, 1)
    assert len(w0) == len(w_single) == 4
    with np.load(trained["train"] / "initial.npz") as f:
        initial = [f[f"arr_{i}"] for i in range(len(f.files))]
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(w0, initial)) > 1e-3  # it trained
    for a, b in zip(w0, w_single):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the starting weights differ by 1.0 on rank 1: without the broadcast they could not match
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(r0["history"][key], r_single["history"][key], rtol=1e-5)
    np.testing.assert_allclose(r0["evaluate"]["loss"], r_single["evaluate"]["loss"], rtol=1e-5)
    assert r0["evaluate"]["accuracy"] == r_single["evaluate"]["accuracy"]


@pytest.mark.parametrize("mode", ["train", "train_bn"])
def test_every_rank_ends_with_bit_identical_weights_and_the_same_logs(trained, mode):
    w0, r0 = _load(trained[mode], 0, 2)
    w1, r1 = _load(trained[mode], 1, 2)
    assert len(w0) == len(w1) == (8 if mode == "train_bn" else 4)
    for a, b in zip(w0, w1):
        assert a.tobytes() == b.tobytes()
    assert r0 == r1


def test_a_nan_on_one_rank_stops_every_rank_with_a_clear_error(tmp_path, subprocess_env):
    ran = _run([_mpiexec(), "-n", "2", sys.executable, str(WORKER), "nan", str(tmp_path)],
               subprocess_env())
    assert ran.returncode != 0
    assert "rank 0 done" not in ran.stdout and "rank 1 done" not in ran.stdout
    assert "loss became nan" in ran.stderr
    assert "another rank failed (rank 1: FloatingPointError" in ran.stderr   # said on rank 0


def test_an_exception_in_a_callback_on_one_rank_ends_every_rank(tmp_path, subprocess_env):
    ran = _run([_mpiexec(), "-n", "2", sys.executable, str(WORKER), "callback", str(tmp_path)],
               subprocess_env(), timeout=60)
    assert ran.returncode != 0
    assert "rank 0 done" not in ran.stdout
    assert "boom from a callback" in ran.stderr
    # the error is on the first line, which reaches the terminal even if Abort cuts the rest
    first, = [line for line in ran.stderr.splitlines()
              if "uncaught exception on rank 1 of 2" in line]
    assert "boom from a callback" in first


def test_single_process_defaults():
    assert not distributed.is_initialized()
    assert (distributed.rank(), distributed.size(), distributed.is_main()) == (0, 1, True)
    assert distributed.active() is None
    np.testing.assert_array_equal(distributed.allreduce_mean([1.0, 3.0]), [1.0, 3.0])
