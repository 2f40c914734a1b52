"""The installed package: its metadata, files and build_info agree, and a repaired wheel runs on
the libgomp it vendors.

Imported from a source tree (PYTHONPATH=src) these tests skip, visibly. CI runs the suite against
installed builds and says what it installed in CYCNN_TEST_INSTALLED: "wheel" (the auditwheel-
repaired wheel) or "source" (`pip install .`). Then an import from anywhere but the environment's
site-packages, or a repaired wheel without its own libgomp, fails instead of skipping.
"""
import importlib
import importlib.metadata
import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

import cycnn

EXPECT = os.environ.get("CYCNN_TEST_INSTALLED", "")
PKG = pathlib.Path(cycnn.__file__).resolve().parent


def _installed_distribution():
    """The distribution this cycnn was imported from, or None when it comes from a source tree."""
    try:
        dist = importlib.metadata.distribution("cycnn")
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.read_text("RECORD") is None:
        return None  # an egg-info left in a source tree by setup.py: not an installation
    if pathlib.Path(dist.locate_file("cycnn/__init__.py")).resolve() != PKG / "__init__.py":
        return None  # a cycnn is installed, but the one imported lives elsewhere
    return dist


def _skip_unless(condition, reason):
    """Skip with `reason` unless `condition`; under CYCNN_TEST_INSTALLED, fail instead."""
    if condition:
        return
    if EXPECT:
        pytest.fail(f"{reason} (CYCNN_TEST_INSTALLED={EXPECT!r})")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dist():
    found = _installed_distribution()
    _skip_unless(found is not None, f"cycnn is imported from a source tree ({PKG}), not installed")
    return found


def test_installed_package_is_the_one_imported(dist):
    site_dirs = {pathlib.Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert PKG.parent in site_dirs, f"cycnn imported from {PKG}, not from {sorted(site_dirs)}"
    assert dist.version == cycnn.__version__ == cycnn.build_info()["version"]


def test_every_kernel_module_is_installed_and_imports(dist):
    files = {pathlib.Path(dist.locate_file(f)).resolve() for f in dist.files}
    sources = sorted(p.stem for p in (PKG / "_kernels").glob("*.pyx"))
    assert sources, f"no Cython sources shipped in {PKG / '_kernels'}"
    for name in sources:
        module = importlib.import_module(f"cycnn._kernels.{name}")
        path = pathlib.Path(module.__file__).resolve()
        assert path.suffix == ".so" and path in files, (name, path)
    shipped_c = [f for f in dist.files if str(f).endswith(".c")]
    assert not shipped_c, f"generated C shipped: {shipped_c}"


def test_build_info_is_sane(dist):
    info = cycnn.build_info()
    assert info["simd"] in info["simd_supported"] and "generic" in info["simd_supported"], info
    assert info["compiler"].split()[0] in ("gcc", "clang"), info
    from cycnn._kernels import _openmp
    # following OpenMP's own setting (omp_get_max_threads), 1 in a serial build
    assert info["num_threads"] == (_openmp.openmp_max_threads() if info["openmp"] else 1), info
    if EXPECT == "wheel":  # wheels are built with OpenMP: a serial wheel would be a packaging bug
        assert info["openmp"] is True, info


def test_repaired_wheel_loads_its_vendored_libgomp(dist, subprocess_env):
    libs = PKG.parent / "cycnn.libs"
    if not libs.is_dir():
        reason = f"no {libs}: this cycnn is not an auditwheel-repaired wheel"
        if EXPECT == "wheel":
            pytest.fail(reason)
        pytest.skip(reason + " (built from source, it uses the system's OpenMP runtime, if any)")
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs /proc/self/maps (Linux)")
    vendored = {str(p.resolve()) for p in libs.glob("libgomp*.so*")}
    assert vendored, f"no libgomp in {sorted(p.name for p in libs.iterdir())}"
    # A fresh process: nothing but cycnn (and NumPy) decides which libgomp gets loaded. A 2-thread
    # matmul makes sure the OpenMP runtime really runs; _openmp.runtime_path() names the library
    # omp_get_max_threads comes from (dladdr), /proc/self/maps every libgomp mapped.
    code = ("import numpy as np, cycnn\n"
            "cycnn.set_num_threads(2)\n"
            "a = np.ones((256, 256), np.float32)\n"
            "assert float(cycnn.ops.matmul(a, a)[0, 0]) == 256.0\n"
            "from cycnn._kernels import _openmp\n"
            "import os\n"
            "print(cycnn.build_info()['openmp'], os.path.realpath(_openmp.runtime_path()))\n"
            "for line in open('/proc/self/maps'):\n"
            "    if 'libgomp' in line: print(line.split()[-1])\n")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    openmp, called, *mapped = out.stdout.split()
    assert openmp == "True"
    assert called in vendored, f"the kernels call {called}, vendored {sorted(vendored)}"
    assert set(mapped) == vendored, f"loaded {sorted(set(mapped))}, vendored {sorted(vendored)}"
