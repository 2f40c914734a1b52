"""Direct tests of the Cython pooling kernels (cycnn._kernels.pool) against naive NumPy loops.

The references below are written independently of the C code: max pooling picks, from the
in-bounds window values in row-major order, the LAST NaN if there is one (PyTorch's CPU rule)
and otherwise the FIRST position equal to the maximum. Outputs are pre-filled with garbage so
a kernel that forgets to write an element fails.
"""
import itertools

import numpy as np
import pytest

from cycnn._kernels import pool  # noqa: E402

DTYPES = [np.float32, np.float64]
# tolerances for sums (avg pool): summation order is the same, but the reference accumulates
# in float64
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}


# ------------------------------------------------------------------------------- references

def out_hw(H, W, kh, kw, sh, sw, pads, ceil=False):
    (pt, pb), (pl, pr) = pads
    if ceil:
        Ho = -(-(H + pt + pb - kh) // sh) + 1
        Wo = -(-(W + pl + pr - kw) // sw) + 1
        # PyTorch rule: the last window must start inside the input or the top/left padding
        if (Ho - 1) * sh >= H + pt:
            Ho -= 1
        if (Wo - 1) * sw >= W + pl:
            Wo -= 1
        return Ho, Wo
    return (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1


def windows(H, W, Ho, Wo, kh, kw, sh, sw, pt, pl):
    """Yield (oh, ow, [flat in-bounds positions in row-major window order])."""
    for oh in range(Ho):
        for ow in range(Wo):
            pos = []
            for i in range(kh):
                ih = oh * sh - pt + i
                for j in range(kw):
                    iw = ow * sw - pl + j
                    if 0 <= ih < H and 0 <= iw < W:
                        pos.append(ih * W + iw)
            yield oh, ow, pos


def ref_max_forward(x, Ho, Wo, kh, kw, sh, sw, pt, pl):
    N, C, H, W = x.shape
    flat = x.reshape(N, C, H * W)
    y = np.empty((N, C, Ho, Wo), x.dtype)
    idx = np.empty((N, C, Ho, Wo), np.int64)
    for oh, ow, pos in windows(H, W, Ho, Wo, kh, kw, sh, sw, pt, pl):
        assert pos, "test geometry produced an empty window"
        vals = flat[:, :, pos]                                   # (N, C, K)
        nan = np.isnan(vals)
        last_nan = len(pos) - 1 - np.argmax(nan[:, :, ::-1], axis=2)
        with np.errstate(invalid="ignore"):
            first_max = np.argmax(vals == np.nanmax(np.where(nan, -np.inf, vals), axis=2,
                                                    keepdims=True), axis=2)
        k = np.where(nan.any(axis=2), last_nan, first_max)
        idx[:, :, oh, ow] = np.asarray(pos)[k]
        y[:, :, oh, ow] = np.take_along_axis(vals, k[:, :, None], axis=2)[:, :, 0]
    return y, idx


def ref_max_backward(dy, idx, H, W):
    N, C = dy.shape[:2]
    dx = np.zeros((N, C, H * W), dy.dtype)
    for n in range(N):
        for c in range(C):
            np.add.at(dx[n, c], idx[n, c].ravel(), dy[n, c].ravel())
    return dx.reshape(N, C, H, W)


def ref_avg_forward(x, Ho, Wo, kh, kw, sh, sw, pt, pl):
    N, C, H, W = x.shape
    flat = x.reshape(N, C, H * W).astype(np.float64)
    y = np.empty((N, C, Ho, Wo), np.float64)
    for oh, ow, pos in windows(H, W, Ho, Wo, kh, kw, sh, sw, pt, pl):
        y[:, :, oh, ow] = flat[:, :, pos].sum(axis=2) / (kh * kw)
    return y


def ref_avg_backward(dy, H, W, kh, kw, sh, sw, pt, pl):
    N, C, Ho, Wo = dy.shape
    dx = np.zeros((N, C, H * W), np.float64)
    for oh, ow, pos in windows(H, W, Ho, Wo, kh, kw, sh, sw, pt, pl):
        for p in pos:
            dx[:, :, p] += dy[:, :, oh, ow] / (kh * kw)
    return dx.reshape(N, C, H, W)


# ------------------------------------------------------------------------------- kernel calls

def run_max_forward(x, Ho, Wo, kh, kw, sh, sw, pt, pl, threads=1):
    N, C = x.shape[:2]
    y = np.full((N, C, Ho, Wo), 12345.0, x.dtype)
    idx = np.full((N, C, Ho, Wo), -777, np.int64)
    assert pool.max_pool2d_forward(x, y, idx, kh, kw, sh, sw, pt, pl, threads) is None
    return y, idx


def run_max_backward(dy, idx, H, W, threads=1):
    N, C = dy.shape[:2]
    dx = np.full((N, C, H, W), np.nan, dy.dtype)
    bad = pool.max_pool2d_backward(dy, idx, dx, threads)
    return dx, bad


def run_avg_forward(x, Ho, Wo, kh, kw, sh, sw, pt, pl, threads=1):
    N, C = x.shape[:2]
    y = np.full((N, C, Ho, Wo), np.nan, x.dtype)
    pool.avg_pool2d_forward(x, y, kh, kw, sh, sw, pt, pl, threads)
    return y


def run_avg_backward(dy, H, W, kh, kw, sh, sw, pt, pl, threads=1):
    N, C = dy.shape[:2]
    dx = np.full((N, C, H, W), np.nan, dy.dtype)
    pool.avg_pool2d_backward(dy, dx, kh, kw, sh, sw, pt, pl, threads)
    return dx


# ------------------------------------------------------------------------------- geometry cases

def geometry_cases():
    """(H, W, kh, kw, sh, sw, pads, ceil) covering kernels 1..4, strides 1..3, pads <= k//2."""
    cases = []
    rng = np.random.default_rng(7)
    for kh, kw in [(1, 1), (2, 2), (3, 3), (4, 4), (2, 3), (3, 1), (4, 2), (1, 4)]:
        for sh, sw in [(1, 1), (2, 2), (3, 3), (1, 2), (3, 1)]:
            H = int(rng.integers(kh, kh + 7)) | 1          # odd sizes
            W = int(rng.integers(kw, kw + 9)) | 1
            pt, pb = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kh // 2 + 1))
            pl, pr = int(rng.integers(0, kw // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
            ceil = bool(rng.integers(0, 2))
            cases.append((H, W, kh, kw, sh, sw, ((pt, pb), (pl, pr)), ceil))
    # the 2x2/2 fast path: every vector-tail length, odd H/W (floor and ceil mode)
    for W in range(2, 21):
        cases.append((5, W, 2, 2, 2, 2, ((0, 0), (0, 0)), W % 3 == 0))
    cases.append((6, 8, 2, 2, 2, 2, ((1, 1), (1, 0)), False))     # padded 2x2/2: generic path
    return cases


GEOMS = geometry_cases()


def geom_id(case):
    H, W, kh, kw, sh, sw, pads, ceil = case
    return f"{H}x{W}-k{kh}x{kw}-s{sh}x{sw}-p{pads[0][0]}{pads[0][1]}{pads[1][0]}{pads[1][1]}" + (
        "-ceil" if ceil else "")


def setup_case(case, dtype, seed, N=2, C=3):
    H, W, kh, kw, sh, sw, pads, ceil = case
    Ho, Wo = out_hw(H, W, kh, kw, sh, sw, pads, ceil)
    assert Ho >= 1 and Wo >= 1
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    return x, (Ho, Wo, kh, kw, sh, sw, pads[0][0], pads[1][0])


def assert_max_equal(y, idx, y_ref, idx_ref):
    np.testing.assert_array_equal(idx, idx_ref)
    # max pooling copies an input element: exact equality, NaN == NaN
    np.testing.assert_array_equal(y, y_ref)


# ------------------------------------------------------------------------------- max pool

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GEOMS, ids=geom_id)
def test_max_forward_matches_reference(case, dtype):
    x, g = setup_case(case, dtype, seed=1)
    y, idx = run_max_forward(x, *g)
    assert_max_equal(y, idx, *ref_max_forward(x, *g))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GEOMS, ids=geom_id)
def test_max_backward_matches_reference(case, dtype):
    x, g = setup_case(case, dtype, seed=2)
    H, W = x.shape[2:]
    _, idx = run_max_forward(x, *g)
    dy = np.random.default_rng(3).standard_normal(idx.shape).astype(dtype)
    dx, bad = run_max_backward(dy, idx, H, W)
    assert bad == 0
    # same accumulation order (increasing output index) as np.add.at: only rounding ties
    np.testing.assert_allclose(dx, ref_max_backward(dy, idx, H, W), rtol=RTOL[dtype],
                               atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in GEOMS if c[2] * c[3] > 1][::3], ids=geom_id)
def test_max_ties_pick_first(case, dtype):
    x, g = setup_case(case, dtype, seed=4)
    x = np.random.default_rng(5).integers(0, 3, size=x.shape).astype(dtype)  # many ties
    y, idx = run_max_forward(x, *g)
    assert_max_equal(y, idx, *ref_max_forward(x, *g))


def test_max_ties_hand_checked():
    x = np.full((1, 1, 2, 4), 5.0, np.float32)
    y, idx = run_max_forward(x, 1, 2, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2]])
    x = np.array([[[[1, 3, 3], [3, 2, 3], [0, 3, 1]]]], np.float64)
    y, idx = run_max_forward(x, 2, 2, 2, 2, 1, 1, 0, 0)
    np.testing.assert_array_equal(idx[0, 0], [[1, 1], [3, 5]])
    np.testing.assert_array_equal(y[0, 0], [[3, 3], [3, 3]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GEOMS[::2], ids=geom_id)
def test_max_nan_propagates(case, dtype):
    x, g = setup_case(case, dtype, seed=6)
    rng = np.random.default_rng(8)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.1] = np.inf
    y, idx = run_max_forward(x, *g)
    y_ref, idx_ref = ref_max_forward(x, *g)
    assert np.isnan(y_ref).any()
    assert_max_equal(y, idx, y_ref, idx_ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_nan_hand_checked(dtype):
    # values checked against torch 2.13 F.max_pool2d(..., return_indices=True):
    # a NaN beats everything and the last NaN in window order is recorded
    nan = np.nan
    x = np.array([[[[nan, 1, 1, nan, 7, 9],
                    [nan, 1, 2, 3, 8, 8]]]], dtype)
    y, idx = run_max_forward(x, 1, 3, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(idx[0, 0], [[6, 3, 5]])
    assert np.isnan(y[0, 0, 0, :2]).all() and y[0, 0, 0, 2] == 9
    # same through the generic path (3x3, stride 1, padding 1)
    x = np.array([[[[1, nan, 2], [nan, 0, 5], [4, 4, -1]]]], dtype)
    y, idx = run_max_forward(x, 3, 3, 3, 3, 1, 1, 1, 1)
    np.testing.assert_array_equal(idx[0, 0], [[3, 3, 1], [3, 3, 1], [3, 3, 5]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_minus_inf_windows(dtype):
    # all -inf windows record their FIRST in-bounds element (padding is never chosen)
    x = np.full((1, 2, 5, 5), -np.inf, dtype)
    x[0, 1, 4, 4] = -1.0
    y, idx = run_max_forward(x, 3, 3, 3, 3, 2, 2, 1, 1)
    assert np.all(y[0, 0] == -np.inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 3], [5, 6, 8], [15, 16, 18]])
    assert y[0, 1, 2, 2] == -1.0 and idx[0, 1, 2, 2] == 24
    # fast path
    x = np.full((1, 1, 4, 6), -np.inf, dtype)
    y, idx = run_max_forward(x, 2, 3, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2, 4], [12, 14, 16]])
    x = np.random.default_rng(9).standard_normal((2, 3, 7, 9)).astype(dtype)
    x[x < 0.3] = -np.inf
    g = (4, 5, 3, 3, 2, 2, 1, 1)
    assert_max_equal(*run_max_forward(x, *g), *ref_max_forward(x, *g))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_overlapping_windows_accumulate(dtype):
    # 3x3 stride 1: a big centre value is chosen by all 9 windows that contain it
    x = np.zeros((1, 1, 5, 5), dtype)
    x[0, 0, 2, 2] = 10
    y, idx = run_max_forward(x, 3, 3, 3, 3, 1, 1, 0, 0)
    assert np.all(idx == 12)
    dy = np.arange(1, 10, dtype=dtype).reshape(1, 1, 3, 3)
    dx, bad = run_max_backward(dy, idx, 5, 5)
    assert bad == 0
    expected = np.zeros((5, 5), dtype)
    expected[2, 2] = 45
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_bad_indices(dtype):
    N, C, H, W = 2, 3, 4, 4
    idx = np.tile(np.array([[0, 5], [10, 15]], np.int64), (N, C, 1, 1))
    dy = np.ones((N, C, 2, 2), dtype)
    dx, bad = run_max_backward(dy, idx, H, W)
    assert bad == 0
    assert dx.sum() == N * C * 4
    idx[0, 1, 0, 1] = -1
    idx[1, 2, 1, 0] = H * W
    idx[1, 2, 1, 1] = 2 ** 62
    dx, bad = run_max_backward(dy, idx, H, W)
    assert bad == 2                        # planes (0,1) and (1,2)
    # valid elements are still scattered, bad ones skipped, nothing left unwritten
    assert not np.isnan(dx).any()
    assert dx[0, 1].sum() == 3 and dx[1, 2].sum() == 2 and dx[0, 0].sum() == 4
    assert dx[0, 1, 0, 0] == 1 and dx[0, 1, 1, 1] == 0


# ------------------------------------------------------------------------------- avg pool

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GEOMS, ids=geom_id)
def test_avg_forward_matches_reference(case, dtype):
    x, g = setup_case(case, dtype, seed=10)
    y = run_avg_forward(x, *g)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref_avg_forward(x, *g), rtol=RTOL[dtype], atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", GEOMS, ids=geom_id)
def test_avg_backward_matches_reference(case, dtype):
    x, g = setup_case(case, dtype, seed=11)
    H, W = x.shape[2:]
    Ho, Wo = g[:2]
    dy = np.random.default_rng(12).standard_normal((x.shape[0], x.shape[1], Ho, Wo)).astype(dtype)
    dx = run_avg_backward(dy, H, W, *g[2:])
    np.testing.assert_allclose(dx, ref_avg_backward(dy, H, W, *g[2:]), rtol=RTOL[dtype],
                               atol=ATOL[dtype])


def test_avg_counts_padding_in_divisor():
    x = np.ones((1, 1, 3, 3), np.float64)
    y = run_avg_forward(x, 2, 2, 3, 3, 2, 2, 1, 1)
    np.testing.assert_allclose(y[0, 0], [[4 / 9, 4 / 9], [4 / 9, 4 / 9]], rtol=1e-15)
    dx = run_avg_backward(np.ones((1, 1, 2, 2)), 3, 3, 3, 3, 2, 2, 1, 1)
    np.testing.assert_allclose(dx[0, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 9,
                               rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_propagates_nan_and_inf(dtype):
    x = np.zeros((1, 1, 4, 4), dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 3, 3] = np.inf
    y = run_avg_forward(x, 2, 2, 2, 2, 2, 2, 0, 0)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 1, 1] == np.inf
    assert y[0, 0, 0, 1] == 0 and y[0, 0, 1, 0] == 0


# ------------------------------------------------------------------------------- threads, edges

def big_case(dtype):
    # > 32k elements so 2 threads really split the planes
    x = np.random.default_rng(13).standard_normal((4, 17, 24, 23)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("g", [(12, 11, 2, 2, 2, 2, 0, 0), (12, 12, 3, 3, 2, 2, 1, 1),
                               (22, 21, 3, 3, 1, 1, 0, 0)])
def test_threads_give_identical_results(dtype, g):
    x = big_case(dtype)
    H, W = x.shape[2:]
    y_ref, idx_ref = ref_max_forward(x, *g)
    dy = np.random.default_rng(14).standard_normal(y_ref.shape).astype(dtype)
    results = []
    for threads in (1, 2, 3, 0, 100):       # 0 -> serial; more threads than planes is fine
        y, idx = run_max_forward(x, *g, threads=threads)
        dx, bad = run_max_backward(dy, idx, H, W, threads=threads)
        ya = run_avg_forward(x, *g, threads=threads)
        dxa = run_avg_backward(dy, H, W, *g[2:], threads=threads)
        assert bad == 0
        results.append((y, idx, dx, ya, dxa))
    assert_max_equal(results[0][0], results[0][1], y_ref, idx_ref)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)     # planes are independent: bitwise equal


@pytest.mark.parametrize("threads", [1, 2])
def test_bad_index_count_with_threads(threads):
    N, C, H, W = 8, 16, 16, 16                     # 32k+ elements
    idx = np.zeros((N, C, 8, 8), np.int64)
    bad_planes = [(0, 0), (3, 7), (7, 15)]
    for n, c in bad_planes:
        idx[n, c, 1, 1] = -5
        idx[n, c, 2, 2] = H * W + 1
    dx, bad = run_max_backward(np.ones((N, C, 8, 8), np.float32), idx, H, W, threads)
    assert bad == len(bad_planes)
    assert dx[0, 0, 0, 0] == 62 and dx[0, 1, 0, 0] == 64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_empty_batch_is_noop(dtype, threads):
    x = np.empty((0, 3, 8, 8), dtype)
    y = np.empty((0, 3, 4, 4), dtype)
    idx = np.empty((0, 3, 4, 4), np.int64)
    assert pool.max_pool2d_forward(x, y, idx, 2, 2, 2, 2, 0, 0, threads) is None
    assert pool.max_pool2d_backward(y, idx, x, threads) == 0
    assert pool.avg_pool2d_forward(x, y, 2, 2, 2, 2, 0, 0, threads) is None
    assert pool.avg_pool2d_backward(y, x, 2, 2, 2, 2, 0, 0, threads) is None
    x = np.empty((2, 0, 8, 8), dtype)
    y = np.empty((2, 0, 4, 4), dtype)
    idx = np.empty((2, 0, 4, 4), np.int64)
    pool.max_pool2d_forward(x, y, idx, 2, 2, 2, 2, 0, 0, threads)
    assert pool.max_pool2d_backward(y, idx, x, threads) == 0


def test_read_only_inputs():
    x = np.random.default_rng(15).standard_normal((2, 2, 6, 6)).astype(np.float32)
    x.flags.writeable = False
    y, idx = run_max_forward(x, 3, 3, 2, 2, 2, 2, 0, 0)
    idx.flags.writeable = False
    dy = np.ones_like(y)
    dy.flags.writeable = False
    dx, bad = run_max_backward(dy, idx, 6, 6)
    assert bad == 0 and dx.sum() == dy.size
    run_avg_forward(x, 3, 3, 2, 2, 2, 2, 0, 0)
    run_avg_backward(dy, 6, 6, 2, 2, 2, 2, 0, 0)


def test_dtype_mismatch_rejected():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises((TypeError, ValueError)):
        pool.max_pool2d_forward(x, np.zeros((1, 1, 2, 2), np.float64),
                                np.zeros((1, 1, 2, 2), np.int64), 2, 2, 2, 2, 0, 0, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("g", [(3, 598, 3, 3, 1, 1, 1, 1), (2, 300, 3, 3, 2, 2, 1, 1),
                               (2, 200, 2, 4, 1, 3, 0, 2)])
def test_wide_rows_span_several_chunks(dtype, g):
    # the window-element-outer forward works on chunks of 256 outputs per row
    Ho, Wo, kh, kw, sh, sw, pt, pl = g
    H, W = 6, (Wo - 1) * sw + kw - 2 * pl + 1
    rng = np.random.default_rng(17)
    x = rng.integers(0, 4, (1, 2, H, W)).astype(dtype)       # ties
    x[rng.random(x.shape) < 0.05] = np.nan
    Ho = (H + 2 * pt - kh) // sh + 1
    g = (Ho,) + g[1:]
    assert_max_equal(*run_max_forward(x, *g), *ref_max_forward(x, *g))
    x = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_allclose(run_avg_forward(x, *g), ref_avg_forward(x, *g),
                               rtol=RTOL[dtype], atol=ATOL[dtype])


def test_unit_kernel_is_identity():
    for dtype in DTYPES:
        x = np.random.default_rng(16).standard_normal((2, 3, 5, 7)).astype(dtype)
        y, idx = run_max_forward(x, 5, 7, 1, 1, 1, 1, 0, 0)
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(idx[0, 0].ravel(), np.arange(35))
        np.testing.assert_array_equal(run_avg_forward(x, 5, 7, 1, 1, 1, 1, 0, 0), x)


def test_geometry_cases_cover_the_brief():
    ks = {c[2] for c in GEOMS} | {c[3] for c in GEOMS}
    ss = {c[4] for c in GEOMS} | {c[5] for c in GEOMS}
    assert ks == {1, 2, 3, 4} and ss == {1, 2, 3}
    assert any(c[0] != c[1] for c in GEOMS) and any(c[2] != c[3] for c in GEOMS)
    assert any(max(itertools.chain(*c[6])) > 0 for c in GEOMS)
