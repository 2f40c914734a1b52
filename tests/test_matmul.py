"""cycnn.ops.matmul (the GEMM behind Dense) against cycnn.reference.matmul."""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv as conv_kernels

TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (64, 3136, 1000), (33, 65, 129),
                                   (1000, 64, 300), (7, 1, 513), (2, 0, 3)])
@pytest.mark.parametrize("layout", ["c", "a_t", "b_t", "both_t", "strided"])
def test_matmul_matches_reference(dtype, m, k, n, layout, threads):
    rng = np.random.default_rng(m * 1000 + k + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    if layout in ("a_t", "both_t"):
        a = np.ascontiguousarray(a.T).T
    if layout in ("b_t", "both_t"):
        b = np.ascontiguousarray(b.T).T
    if layout == "strided":
        a = np.repeat(a, 2, axis=1)[:, ::2]
        b = np.repeat(b, 3, axis=0)[::3]
    got = ops.matmul(a, b)
    if m and n:    # one column block of at least 64 per thread
        assert conv_kernels.last_parallel_region() == ("gemm", min(threads, (n + 63) // 64))
    want = reference.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.dtype == dtype and got.shape == (m, n)
    rtol, atol = TOL[dtype]
    err = np.abs(got - want).max() if got.size else 0.0
    bound = atol * np.sqrt(max(k, 1)) + rtol * np.abs(want).max() if got.size else 0.0
    assert err <= bound, f"{m}x{k}x{n} {layout}: max error {err} > {bound}"


def test_matmul_broadcast_read_only_and_mixed_dtypes():
    a = np.broadcast_to(np.arange(4.0, dtype=np.float32), (5, 4))
    b = np.arange(12, dtype=np.float64).reshape(4, 3)
    b.flags.writeable = False
    got = ops.matmul(a, b)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.asarray(a, np.float64) @ b)
    ints = ops.matmul([[1, 2], [3, 4]], [[5], [6]])
    np.testing.assert_array_equal(ints, [[17.0], [39.0]])


def test_matmul_nan_propagates():
    a = np.ones((3, 4), np.float32)
    a[1, 2] = np.nan
    got = ops.matmul(a, np.ones((4, 2), np.float32))
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()


@pytest.mark.parametrize("fn", [ops.matmul, reference.matmul])
@pytest.mark.parametrize("a,b,exc,msg", [
    (np.ones((2, 3)), np.ones((4, 2)), ValueError, "a has 3 columns but b has 4 rows"),
    (np.ones(3), np.ones((3, 2)), ValueError, "a must be 2-D"),
    (np.ones((2, 3)), np.ones((3, 2, 1)), ValueError, "b must be 2-D"),
    (np.array([["x"]]), np.ones((1, 1)), TypeError, "a must be a real numeric array"),
])
def test_matmul_bad_input(fn, a, b, exc, msg):
    with pytest.raises(exc, match=msg):
        fn(a, b)


@pytest.mark.parametrize("fn", [ops.matmul, ops.conv2d])
def test_misaligned_input_is_read_correctly(fn):
    """Arrays that start at an odd byte offset (e.g. views into a byte buffer)."""
    raw = np.zeros(4 * 36 + 1, np.uint8)
    a = raw[1:].view(np.float32)
    a[:] = np.arange(36, dtype=np.float32)
    assert not a.flags.aligned
    if fn is ops.matmul:
        a2 = a.reshape(6, 6)
        np.testing.assert_array_equal(fn(a2, a2.T), np.arange(36.0).reshape(6, 6) @
                                      np.arange(36.0).reshape(6, 6).T)
    else:
        x = a.reshape(1, 1, 6, 6)
        w = np.ones((1, 1, 3, 3), np.float32)
        np.testing.assert_allclose(fn(x, w), reference.conv2d(np.array(x), w), rtol=1e-6)
