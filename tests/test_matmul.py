"""cycnn.ops.matmul (the GEMM behind Dense) against cycnn.reference.matmul."""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv as conv_kernels

TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (64, 3136, 1000), (33, 65, 129),
                                   (1000, 64, 300), (7, 1, 513), (2, 0, 3),
                                   (64, 1000, 3136), (1000, 64, 3136), (263, 385, 2721)])
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


# ---- the broadcast GEMM (csrc/gemm/sgemm_bcast.c): y = x @ kernel.T with kernel read in place

BCAST_PATHS = [p for p in ("generic", "avx2", "avx512") if conv_kernels.simd_supported(p)]


def _bcast_case(m, k, n, a_layout, seed):
    """a (m, k) in the given layout, b = w.T for a weight matrix w (n, k): b column-contiguous."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    if a_layout == "strided":          # column stride 2: ops copies it before packing
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif a_layout == "broadcast":      # every row the same, row stride 0
        a = np.broadcast_to(a[0], (m, k))
    elif a_layout == "rows_apart":     # unit column stride, rows further apart than k
        a = np.pad(a, ((0, 0), (0, 5)))[:, :k]
    w = rng.standard_normal((n, k)).astype(np.float32)
    return a, w.T


def _bcast_check(got, a, b, what):
    want = reference.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.dtype == np.float32 and got.shape == want.shape and got.flags.c_contiguous
    err = np.abs(got - want).max()
    bound = 1e-5 * np.sqrt(a.shape[1]) + 1e-5 * np.abs(want).max()
    assert err <= bound, f"{what}: max error {err} > {bound}"


@pytest.mark.parametrize("path", BCAST_PATHS)
@pytest.mark.parametrize("m,k,n", [(1, 384, 2), (5, 401, 7), (64, 3136, 1000), (17, 1001, 100),
                                   (128, 1031, 13), (9, 520, 6)])
@pytest.mark.parametrize("a_layout", ["c", "strided", "broadcast", "rows_apart"])
def test_matmul_bcast_path_matches_reference_and_generic(path, m, k, n, a_layout, threads):
    """x @ w.T on the broadcast GEMM (odd batches and units, not multiples of the 6 x 16 tile;
    batch 1; strided and broadcast x), on each SIMD path against the float64 oracle and against
    the portable kernels, on 1 and 2 threads."""
    a, b = _bcast_case(m, k, n, a_layout, seed=m * 7 + k + n)
    assert ops._matmul_reads_b_in_place(a, b)
    try:
        conv_kernels.simd_select("generic")
        generic = ops.matmul(a, b)
        conv_kernels.simd_select(path)
        got = ops.matmul(a, b)
    finally:
        conv_kernels.simd_select("auto")
    assert conv_kernels.last_parallel_region() == ("gemm", min(threads, (n + 63) // 64))
    _bcast_check(got, a, b, f"{m}x{k}x{n} {a_layout} via {path}")
    _bcast_check(generic, a, b, f"{m}x{k}x{n} {a_layout} generic")
    np.testing.assert_allclose(got, generic, rtol=2e-5, atol=2e-5 * np.sqrt(k))


def test_matmul_bcast_deterministic_and_thread_split():
    """Fixed thread count: bit-identical repeats; 2 threads split the 1000 output units in whole
    6-row tiles, so each output element sums in the same order as on 1 thread."""
    a, b = _bcast_case(64, 3136, 1000, "c", seed=3)
    cycnn.set_num_threads(2)
    try:
        first, second = ops.matmul(a, b), ops.matmul(a, b)
        if cycnn.build_info()["openmp"]:
            assert conv_kernels.last_parallel_region() == ("gemm", 2)
        cycnn.set_num_threads(1)
        single = ops.matmul(a, b)
    finally:
        cycnn.set_num_threads(None)
    assert np.array_equal(first, second)
    assert np.array_equal(first, single)


@pytest.mark.parametrize("m,k,n,layout", [(129, 3000, 50, "b_t"), (16, 383, 50, "b_t"),
                                          (128, 1023, 50, "b_t"), (64, 3136, 1000, "c"),
                                          (64, 3136, 1, "b_t")])
def test_matmul_bcast_not_chosen_outside_its_rule(m, k, n, layout):
    """Batches over 128, depths under max(384, 8 * batch), row-contiguous b (dx = dy @ kernel) and float64 stay on
    the packed GEMM (where the broadcast one measured slower); the result is right either way."""
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    if layout == "b_t":
        b = np.ascontiguousarray(b.T).T
    assert not ops._matmul_reads_b_in_place(a, b)
    assert not ops._matmul_reads_b_in_place(a.astype(np.float64),
                                            np.ascontiguousarray(b.T).T.astype(np.float64))
    _bcast_check(ops.matmul(a, b), a, b, f"{m}x{k}x{n} {layout}")


def test_gemm_bcast_rejects_bad_operands():
    a = np.ones((4, 300), np.float32)
    b = np.ones((300, 8), np.float32)
    with pytest.raises(ValueError, match="shapes do not agree"):
        conv_kernels.gemm_bcast(a, b, np.empty((4, 8), np.float32), 1)
    with pytest.raises(ValueError, match="unit column stride"):
        conv_kernels.gemm_bcast(a[:, ::2], b[::2], np.empty((8, 4), np.float32), 1)
