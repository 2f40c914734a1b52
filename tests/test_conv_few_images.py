"""conv2d with fewer images than threads: the threads share each image by bands of output rows.

Every case runs with the parallel-work threshold at 0 (small inputs still take the parallel path)
and checks, from the team size the kernel reports, that the split-image path ran on all threads.
"""
import numpy as np
import pytest

import cycnn
from cycnn import _threads, ops, reference
from cycnn._kernels import conv as conv_kernels

CASES = [
    # n, c, h, w, k, r, stride, padding, dilation, bias
    (1, 8, 17, 19, 16, 3, 1, 1, 1, True),        # odd rows: unequal bands
    (1, 16, 12, 12, 33, 3, 2, "same", 1, True),   # stride 2, TF padding (extra row at the bottom)
    (2, 6, 21, 9, 24, 5, (2, 1), 2, (1, 2), False),
    (1, 64, 8, 8, 64, 1, 1, 0, 1, True),         # 1x1
    (1, 40, 5, 40, 40, 2, 1, 0, 1, True),        # 4 output rows: on 3 threads one band is empty
]
# every case with every thread count above its image count
PARAMS = [pytest.param(threads, case, id=f"{threads}threads-n{case[0]}-c{case[1]}-k{case[4]}")
          for case in CASES for threads in (2, 3) if case[0] < threads]


@pytest.fixture
def split_threads():
    """set_num_threads(n) with the parallel-work threshold at 0; back to following OpenMP."""
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")

    def use(n):
        cycnn.set_num_threads(n)
    with _threads.force_parallel():
        yield use
    cycnn.set_num_threads(None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads, case", PARAMS)
def test_matches_reference(dtype, threads, case, split_threads):
    n, c, h, w, k, r, stride, padding, dilation, bias = case
    split_threads(threads)
    rng = np.random.default_rng(c * 100 + k)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, r, r)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    got = ops.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation)
    # one band of output rows per thread, at most one per row
    team = min(threads, got.shape[2])
    assert team > n
    assert conv_kernels.last_parallel_region() == ("conv2d_forward_split", team)
    want = reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                            None if b is None else b.astype(np.float64),
                            stride=stride, padding=padding, dilation=dilation)
    assert got.shape == want.shape and got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    err = np.abs(got - want).max()
    assert err <= tol * (1 + np.abs(want).max()), f"max error {err} for {x.shape} * {wt.shape}"
