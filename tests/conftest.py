import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _mnist_dir():
    candidates = []
    if os.environ.get("CYCNN_DATA"):
        candidates.append(pathlib.Path(os.environ["CYCNN_DATA"]) / "mnist")
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    for path in candidates:
        if (path / "train-labels-idx1-ubyte.gz").exists():
            return path
    return None


@pytest.fixture(scope="session")
def mnist_dir():
    """Folder holding the four real MNIST IDX gzip files ($CYCNN_DATA/mnist or ../shared/data/mnist).

    Skips where they are absent, except under CI=true, where their absence is a failure.
    """
    path = _mnist_dir()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("MNIST files not found: set CYCNN_DATA or put them in ../shared/data/mnist")
        pytest.skip("MNIST files not found (set CYCNN_DATA)")
    return path


@pytest.fixture(scope="session")
def subprocess_env():
    """Environment for `python -c ...` subprocesses that must import the same cycnn as the tests
    (the installed one in CI, the in-place build during development)."""
    import cycnn

    site = str(pathlib.Path(cycnn.__file__).resolve().parents[1])

    def make(**extra):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
        env.update(extra)
        return env

    return make
