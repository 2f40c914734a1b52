"""The kernel tests under AddressSanitizer + UndefinedBehaviorSanitizer (tools/sanitize.sh).

Several minutes (a separate sanitized build, then the kernel tests under it), so it runs only
when asked: CYCNN_TEST_SANITIZE=1 python -m pytest tests/test_sanitizers.py
"""
import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "sanitize.sh"


@pytest.mark.skipif(os.environ.get("CYCNN_TEST_SANITIZE") != "1",
                    reason="set CYCNN_TEST_SANITIZE=1 to build with ASan+UBSan and run the kernel "
                           "tests under it (tools/sanitize.sh, several minutes)")
def test_kernel_tests_run_clean_under_asan_and_ubsan():
    if not SCRIPT.exists() or shutil.which("gcc") is None:
        pytest.skip("needs the source checkout (tools/sanitize.sh) and gcc")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CYCNN_TEST_SANITIZE")}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, capture_output=True, text=True,
                          timeout=3000, env=env)
    out = proc.stdout + proc.stderr
    assert "AddressSanitizer is live" in out, out[-3000:]
    assert proc.returncode == 0, out[-5000:]
    assert " passed" in out and "failed" not in out.splitlines()[-1], out[-3000:]
