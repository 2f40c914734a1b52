"""build_info(), the thread-count policy and the SIMD selection environment variable."""
import json
import os
import subprocess
import sys

import pytest

import cycnn


@pytest.fixture
def run(subprocess_env):
    """Run python -c CODE with the same cycnn, OMP_NUM_THREADS/CYCNN_SIMD only as given."""
    def _run(code, **env):
        full_env = subprocess_env()
        for key in ("OMP_NUM_THREADS", "CYCNN_SIMD"):
            full_env.pop(key, None)
        full_env.update(env)
        out = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out
    return _run


def test_build_info_keys_and_types():
    info = cycnn.build_info()
    assert info["version"] == cycnn.__version__
    assert isinstance(info["openmp"], bool)
    assert info["simd"] in ("generic", "avx2", "avx512")
    assert info["simd"] in info["simd_supported"]
    assert "generic" in info["simd_supported"]
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert info["num_threads"] == cycnn.get_num_threads()


def test_default_threads_follow_omp_num_threads(run):
    out = run("import cycnn; print(cycnn.get_num_threads(), cycnn.build_info()['openmp'])",
               OMP_NUM_THREADS="3")
    n, openmp = out.stdout.split()
    assert int(n) == (3 if openmp == "True" else 1)


def test_default_threads_are_the_usable_cpus(run):
    out = run("import cycnn; print(cycnn.get_num_threads(), cycnn.build_info()['openmp'])")
    n, openmp = out.stdout.split()
    expected = len(os.sched_getaffinity(0)) if openmp == "True" else 1
    assert int(n) == expected


def test_set_num_threads_round_trip_and_reset():
    before = cycnn.get_num_threads()
    try:
        cycnn.set_num_threads(1)
        assert cycnn.get_num_threads() == 1
        cycnn.set_num_threads(2)
        assert cycnn.get_num_threads() == (2 if cycnn.build_info()["openmp"] else 1)
    finally:
        cycnn.set_num_threads(None)
    assert cycnn.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="n must be a positive int"):
        cycnn.set_num_threads(bad)


@pytest.mark.parametrize("path", ["generic", "avx2", "avx512"])
def test_cycnn_simd_environment_variable_forces_a_path(path, run):
    from cycnn._kernels import conv
    if not conv.simd_supported(path):
        pytest.skip(f"this CPU cannot run {path}")
    out = run("import cycnn, json; print(json.dumps(cycnn.build_info()))", CYCNN_SIMD=path)
    assert json.loads(out.stdout.strip().splitlines()[-1])["simd"] == path


def test_unknown_cycnn_simd_warns_and_falls_back(run):
    out = run("import warnings; warnings.simplefilter('always')\n"
               "import cycnn; print(cycnn.build_info()['simd'])", CYCNN_SIMD="sse9")
    assert "CYCNN_SIMD='sse9'" in out.stderr
    assert out.stdout.strip() in ("generic", "avx2", "avx512")
