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


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Run the test body with cycnn.set_num_threads(n) and the parallel-work threshold at 0, so
    every op runs its parallel path on n threads (at most one per piece of work: image, plane,
    column block); tests check the team size the kernels report (``last_parallel_region()`` of
    each kernel module). cycnn follows OpenMP's setting again afterwards."""
    import cycnn
    from cycnn import _threads
    if request.param > 1 and not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP: the kernels run on 1 thread")
    cycnn.set_num_threads(request.param)
    try:
        with _threads.force_parallel():
            yield request.param
    finally:
        cycnn.set_num_threads(None)


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
