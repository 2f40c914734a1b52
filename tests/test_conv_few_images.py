"""conv2d with fewer images than threads: the threads share each image by bands of output rows."""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference


@pytest.fixture(params=[2, 3], ids=["2threads", "3threads"])
def threads(request):
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    cycnn.set_num_threads(request.param)
    yield request.param
    cycnn.set_num_threads(None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c,h,w,k,r,stride,padding,dilation,bias", [
    (1, 8, 17, 19, 16, 3, 1, 1, 1, True),        # odd rows: unequal bands
    (1, 16, 12, 12, 33, 3, 2, "same", 1, True),   # stride 2, TF padding (extra row at the bottom)
    (2, 6, 21, 9, 24, 5, (2, 1), 2, (1, 2), False),
    (1, 64, 8, 8, 64, 1, 1, 0, 1, True),         # 1x1
    (1, 40, 2, 40, 40, 2, 1, 0, 1, True),        # fewer output rows than threads
])
def test_matches_reference(dtype, n, c, h, w, k, r, stride, padding, dilation, bias, threads):
    rng = np.random.default_rng(c * 100 + k)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, r, r)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    if n >= threads:
        pytest.skip("needs fewer images than threads")
    got = ops.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation)
    want = reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                            None if b is None else b.astype(np.float64),
                            stride=stride, padding=padding, dilation=dilation)
    assert got.shape == want.shape and got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-11
    err = np.abs(got - want).max()
    assert err <= tol * (1 + np.abs(want).max()), f"max error {err} for {x.shape} * {wt.shape}"
