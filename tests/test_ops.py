"""The compiled ops (``cycnn.ops``) against the NumPy oracle (``cycnn.reference``).

The oracle always runs in float64 on the same (possibly float32) input values, so the
tolerances below only have to cover the compiled kernels' own rounding:

* float64: rtol 1e-10, atol 1e-12 * sqrt(L);
* float32: rtol 1e-4,  atol 2e-5  * sqrt(L);

where L is the length of the reduction behind an output element (C*R*S for y, K*R*S for dx,
N*Ho*Wo for dw and db) and the inputs are O(1).
"""
import itertools
import re

import numpy as np
import pytest

from cycnn import ops  # noqa: E402

import cycnn  # noqa: E402
from cycnn import reference as ref  # noqa: E402
from cycnn._kernels import conv as conv_kernels, pool as pool_kernels

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def product(**axes):
    """Chainer ``testing.product``: the Cartesian product of keyword axes as a list of dicts."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items()).replace(" ", "")


def tolerance(dtype, reduction_length):
    root = max(1.0, float(reduction_length)) ** 0.5
    if np.dtype(dtype) == F32:
        return 1e-4, 2e-5 * root
    return 1e-10, 1e-12 * root


def assert_close(actual, expected, rtol, atol, context=""):
    """allclose with NaNs equal; the message gives shapes, max error and the first mismatch."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{context}: shape {actual.shape} != expected {expected.shape}")
    if not actual.size:
        return
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(a - e)
        bad = ~(err <= atol + rtol * np.abs(e))
    same_nonfinite = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
    bad &= ~same_nonfinite
    if bad.any():
        finite = err[np.isfinite(err)]
        where = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{context}: shape {actual.shape}, {int(bad.sum())}/{bad.size} elements differ; "
            f"max abs error {finite.max() if finite.size else np.nan:.3g} "
            f"(rtol={rtol:g}, atol={atol:g}); first at {where}: actual {a[where]!r}, "
            f"expected {e[where]!r}")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def assert_team(module, region, team):
    """The latest parallel region of a kernel module was ``region``, run on ``team`` threads."""
    assert module.last_parallel_region() == (region, team), (
        f"expected {region} on {team} threads, the kernels report {module.last_parallel_region()}")


def f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


# ----------------------------------------------------------------------------------------------
# convolution against the reference
# ----------------------------------------------------------------------------------------------

def conv_case(N=1, C=3, K=3, H=9, W=8, R=3, S=3, stride=1, padding=0, dilation=1, bias=True):
    return dict(N=N, C=C, K=K, H=H, W=W, R=R, S=S, stride=stride, padding=padding,
                dilation=dilation, bias=bias)


CONV_CASES = (
    # output channels and input channels that are not multiples of any micro-kernel tile
    [conv_case(N=2, K=K, C=C, H=7, W=6, bias=bias)
     for K in (1, 3, 17, 33) for C in (1, 3, 5) for bias in (True, False)]
    # every spatial size 1..13 (H and W differ), kernels clipped to the input
    + [conv_case(N=2, C=2, K=3, H=h, W=14 - h, R=min(3, h), S=min(4, 14 - h), padding=(0, 1),
                 bias=h % 2 == 0)
       for h in range(1, 14)]
    # every kernel size 1..7 with every stride 1..3, odd spatial sizes
    + [conv_case(C=2, K=5, H=13, W=11, R=k, S=k, stride=s, padding=k // 2)
       for k in range(1, 8) for s in (1, 2, 3)]
    # padding: ints, pairs, 'same', 'valid'; dilation 2; non-square kernels and strides
    + [conv_case(H=10, W=7, R=3, S=2, padding=p, stride=s, dilation=d)
       for p in (0, 2, (0, 1), (2, 0), "same", "valid")
       for s, d in ((1, 1), (2, 1), ((1, 2), 2), ((3, 1), (2, 1)))]
    # tiny and degenerate geometries
    + [conv_case(N=1, C=1, K=1, H=1, W=1, R=1, S=1),                          # 1x1 everything
       conv_case(N=1, C=1, K=1, H=5, W=5, R=5, S=5),                          # kernel == input
       conv_case(N=3, C=2, K=3, H=4, W=7, R=4, S=7, bias=False),              # kernel == input
       conv_case(N=2, C=5, K=17, H=1, W=13, R=1, S=3, padding=(0, 1)),
       conv_case(N=2, C=3, K=4, H=12, W=12, R=1, S=1),                        # 1x1 fast path
       conv_case(N=2, C=3, K=4, H=12, W=12, R=1, S=1, stride=2),
       conv_case(N=2, C=3, K=4, H=5, W=5, R=3, S=3, padding=4),               # pad > kernel
       conv_case(N=1, C=2, K=2, H=2, W=3, R=3, S=3, padding="same", dilation=2),
       conv_case(N=4, C=1, K=8, H=28, W=28, R=5, S=5, padding=2, bias=False),  # MNIST-like
       conv_case(N=3, C=5, K=33, H=13, W=12, R=3, S=3, stride=2, padding="same")]
)


def make_conv_inputs(rng, case, dtype):
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(dtype)
    w = rng.standard_normal((case["K"], case["C"], case["R"], case["S"])).astype(dtype)
    b = rng.standard_normal(case["K"]).astype(dtype) if case["bias"] else None
    return x, w, b


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[case_id(c) for c in CONV_CASES])
def test_conv2d_forward_backward(rng, threads, dtype, case):
    x, w, b = make_conv_inputs(rng, case, dtype)
    geo = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"])
    N, C, K, R, S = (case[k] for k in "NCKRS")
    ctx = f"x{x.shape} w{w.shape} {geo} bias={case['bias']} {dtype} threads={threads}"

    y = ops.conv2d(x, w, b, **geo)
    # images in parallel, or the bands of output rows of each image when N < threads
    team = min(threads, max(N, y.shape[2]))
    assert_team(conv_kernels, "conv2d_forward" if N >= team else "conv2d_forward_split", team)
    ey = ref.conv2d(*f64(x, w, b), **geo)
    assert y.dtype == dtype
    assert_close(y, ey, *tolerance(dtype, C * R * S), "y " + ctx)

    dy = rng.standard_normal(ey.shape).astype(dtype)
    dx, dw, db = ops.conv2d_backward(dy, x, w, **geo)
    assert_team(conv_kernels, "conv2d_backward", min(threads, N))
    edx, edw, edb = ref.conv2d_backward(*f64(dy, x, w), **geo)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    L = N * ey.shape[2] * ey.shape[3]
    assert_close(dx, edx, *tolerance(dtype, K * R * S), "dx " + ctx)
    assert_close(dw, edw, *tolerance(dtype, L), "dw " + ctx)
    assert_close(db, edb, *tolerance(dtype, L), "db " + ctx)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_conv2d_thread_counts_agree(rng, dtype):
    """1 and 2 threads give the same result (up to the reduction order of dw and db)."""
    # large enough (N*K*C*R*S*Ho*Wo ~ 1.8e6 multiply-adds) for ops to use the parallel path
    x, w, b = make_conv_inputs(rng, conv_case(N=6, C=8, K=16, H=18, W=18), dtype)
    dy = rng.standard_normal((6, 16, 16, 16)).astype(dtype)
    old = cycnn.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            cycnn.set_num_threads(n)
            n = n if cycnn.build_info()["openmp"] else 1
            assert cycnn.get_num_threads() == n
            y = ops.conv2d(x, w, b)
            assert_team(conv_kernels, "conv2d_forward", n)
            results.append((y,) + tuple(ops.conv2d_backward(dy, x, w)))
            assert_team(conv_kernels, "conv2d_backward", n)
    finally:
        cycnn.set_num_threads(None)
    assert cycnn.get_num_threads() == old
    rtol, atol = tolerance(dtype, 6 * 16 * 16)
    for name, one, two in zip(("y", "dx", "dw", "db"), *results):
        assert_close(two, one, rtol, atol, f"{name}: 2 threads vs 1")


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_results_are_deterministic(rng, dtype):
    """Repeating a call with 2 threads gives bitwise identical results (fixed reduction order)."""
    x, w, b = make_conv_inputs(rng, conv_case(N=7, C=8, K=16, H=18, W=18), dtype)
    dy = rng.standard_normal((7, 16, 16, 16)).astype(dtype)
    cycnn.set_num_threads(2)
    try:
        first = (ops.conv2d(x, w, b),) + tuple(ops.conv2d_backward(dy, x, w))
        if cycnn.build_info()["openmp"]:
            assert_team(conv_kernels, "conv2d_backward", 2)
        for _ in range(3):
            again = (ops.conv2d(x, w, b),) + tuple(ops.conv2d_backward(dy, x, w))
            for one, two in zip(first, again):
                np.testing.assert_array_equal(one, two)
    finally:
        cycnn.set_num_threads(None)


def test_argument_forms(rng):
    """NumPy integers, lists and upper-case padding names are accepted like plain ints."""
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 2))
    want = ref.conv2d(x, w, stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    for kw in (dict(stride=(np.int64(2), 1), padding=[1, 0], dilation=np.array([1, 2])),
               dict(stride=[2, np.int32(1)], padding=(np.int8(1), 0), dilation=(1, 2))):
        assert_close(ops.conv2d(x, w, **kw), want, 1e-10, 1e-11, f"{kw}")
    assert_close(ops.conv2d(x, w, stride=2, padding="SAME"),
                 ref.conv2d(x, w, stride=2, padding="same"), 1e-10, 1e-11, "'SAME'")
    np.testing.assert_array_equal(ops.max_pool2d(x, np.int64(3), [2, 1], "Same")[1],
                                  ref.max_pool2d(x, 3, (2, 1), "same")[1])


def test_max_pool_backward_arbitrary_indices(rng, threads):
    """Scatter-add with many repeated indices (not only those a forward pass produces)."""
    dy = rng.standard_normal((4, 3, 10, 10))
    idx = rng.integers(0, 12, size=dy.shape)          # H*W = 12: heavy collisions
    assert_close(ops.max_pool2d_backward(dy, idx, (4, 3, 3, 4)),
                 ref.max_pool2d_backward(dy, idx, (4, 3, 3, 4)), 1e-12, 1e-12, "scatter-add")
    assert_team(pool_kernels, "max_pool2d_backward", threads)
    idx32 = idx.astype(np.int32)
    assert_close(ops.max_pool2d_backward(dy, idx32, (4, 3, 3, 4)),
                 ref.max_pool2d_backward(dy, idx, (4, 3, 3, 4)), 1e-12, 1e-12, "int32 indices")


def test_set_num_threads_rejects_bad_values():
    old = cycnn.get_num_threads()
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="n must be"):
            cycnn.set_num_threads(bad)
    assert cycnn.get_num_threads() == old


# ----------------------------------------------------------------------------------------------
# pooling against the reference
# ----------------------------------------------------------------------------------------------

POOL_CASES = (
    [dict(k=k, s=s, p=p) for k in (1, 2, 3, 4) for s in (None, 1, 2, 3) for p in range(k // 2 + 1)]
    + [dict(k=(2, 3), s=(1, 2), p=(1, 1)), dict(k=(3, 1), s=None, p=(1, 0)),
       dict(k=(1, 4), s=(2, 1), p=(0, 2)), dict(k=3, s=2, p="same"), dict(k=(2, 3), s=2, p="same"),
       dict(k=2, s=1, p="same"), dict(k=3, s=1, p="valid"), dict(k=(9, 7), s=None, p=0)]
)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[case_id(c) for c in POOL_CASES])
def test_pools_forward_backward(rng, dtype, case):
    k, s, p = case["k"], case["s"], case["p"]
    x = rng.standard_normal((2, 3, 9, 7)).astype(dtype)       # non-square, odd sizes
    ctx = f"x{x.shape} k={k} s={s} p={p} {dtype}"

    y, idx = ops.max_pool2d(x, k, s, p)
    ey, eidx = ref.max_pool2d(x, k, s, p)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ey, err_msg="max y " + ctx)
    np.testing.assert_array_equal(idx, eidx, err_msg="max indices " + ctx)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool2d_backward(dy, idx, x.shape)
    assert dx.dtype == dtype
    assert_close(dx, ref.max_pool2d_backward(f64(dy)[0], idx, x.shape),
                 *tolerance(dtype, 4), "max dx " + ctx)

    y = ops.avg_pool2d(x, k, s, p)
    ey = ref.avg_pool2d(f64(x)[0], k, s, p)
    kk = np.prod(k if isinstance(k, tuple) else (k, k))
    assert y.dtype == dtype
    assert_close(y, ey, *tolerance(dtype, kk), "avg y " + ctx)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.avg_pool2d_backward(dy, x.shape, k, s, p)
    assert dx.dtype == dtype
    assert_close(dx, ref.avg_pool2d_backward(f64(dy)[0], x.shape, k, s, p),
                 *tolerance(dtype, kk), "avg dx " + ctx)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_pools_large_batch_threads(rng, threads, dtype):
    """Enough planes for the parallel path; overlapping windows in the max-pool backward."""
    x = rng.standard_normal((16, 32, 28, 28)).astype(dtype)     # 4e5 elements: parallel path
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
        y, idx = ops.max_pool2d(x, k, s, p)
        assert_team(pool_kernels, "max_pool2d_forward", threads)
        ey, eidx = ref.max_pool2d(x, k, s, p)
        np.testing.assert_array_equal(y, ey)
        np.testing.assert_array_equal(idx, eidx)
        dy = rng.standard_normal(y.shape).astype(dtype)
        assert_close(ops.max_pool2d_backward(dy, idx, x.shape),
                     ref.max_pool2d_backward(f64(dy)[0], idx, x.shape),
                     *tolerance(dtype, 9), f"max dx k={k} s={s} p={p}")
        assert_team(pool_kernels, "max_pool2d_backward", threads)
        assert_close(ops.avg_pool2d(x, k, s, p), ref.avg_pool2d(f64(x)[0], k, s, p),
                     *tolerance(dtype, 9), f"avg y k={k} s={s} p={p}")
        assert_team(pool_kernels, "avg_pool2d_forward", threads)
        assert_close(ops.avg_pool2d_backward(dy, x.shape, k, s, p),
                     ref.avg_pool2d_backward(f64(dy)[0], x.shape, k, s, p),
                     *tolerance(dtype, 9), f"avg dx k={k} s={s} p={p}")
        assert_team(pool_kernels, "avg_pool2d_backward", threads)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (2, 1, 1), (3, 2, 1), ((2, 3), 1, "same")])
def test_max_pool_ties_nan_minus_inf(rng, dtype, k, s, p):
    const = np.full((2, 2, 6, 7), 0.5, dtype=dtype)                 # every window is a tie
    for x in (const,
              rng.integers(-1, 2, size=(2, 3, 7, 6)).astype(dtype),  # many partial ties
              np.full((1, 2, 5, 6), -np.inf, dtype=dtype)):           # all -inf
        y, idx = ops.max_pool2d(x, k, s, p)
        ey, eidx = ref.max_pool2d(x, k, s, p)
        np.testing.assert_array_equal(y, ey)
        np.testing.assert_array_equal(idx, eidx, err_msg=f"ties/-inf k={k} s={s} p={p}")
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    x[rng.random(x.shape) < 0.15] = np.nan
    y, idx = ops.max_pool2d(x, k, s, p)
    ey, eidx = ref.max_pool2d(x, k, s, p)
    assert np.isnan(ey).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ey), err_msg="NaN propagation")
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(idx, eidx, err_msg="NaN index (PyTorch: last NaN)")


def test_max_pool_single_nan_is_chosen():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan                            # first in its window, smaller than others
    y, idx = ops.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 0
    np.testing.assert_array_equal(y[0, 0].ravel()[1:], [7.0, 13.0, 15.0])


# ----------------------------------------------------------------------------------------------
# NaN, dtypes, array-likes, memory layouts, empty batches
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_conv2d_nan_propagates(rng, dtype):
    x = rng.standard_normal((2, 2, 9, 9)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    x[1, 0, 4, 4] = np.nan
    y = ops.conv2d(x, w, padding=1)
    ey = ref.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ey))
    assert np.isnan(y[1, :, 3:6, 3:6]).all() and not np.isnan(y[0]).any()
    assert np.isnan(y).sum() == 3 * 9
    w[1, 1, 0, 0] = np.nan
    y = ops.conv2d(x[:1], w, padding=1)
    assert np.isnan(y[0, 1]).sum() >= 64 and not np.isnan(y[0, [0, 2]]).any()
    dx, dw, db = ops.conv2d_backward(np.ones_like(y), x[:1], w, padding=1)
    assert np.isnan(dx).any() and not np.isnan(db).any()


def test_dtype_promotion_and_array_likes(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    # mixed float32/float64 -> float64, computed on the float32 values
    y = ops.conv2d(x32, w, b32)
    assert y.dtype == np.float64
    assert_close(y, ref.conv2d(x32.astype(np.float64), w, b32), 1e-10, 1e-11, "mixed")
    dx, dw, db = ops.conv2d_backward(np.ones((2, 4, 4, 4), np.float32), x32, w)
    assert dx.dtype == dw.dtype == db.dtype == np.float64
    # nested lists
    assert_close(ops.conv2d(x.tolist(), w.tolist(), b.tolist(), padding=1),
                 ref.conv2d(x, w, b, padding=1), 1e-10, 1e-11, "lists")
    assert ops.avg_pool2d(x.tolist(), 2).dtype == np.float64
    y, idx = ops.max_pool2d(x.tolist(), 2)
    np.testing.assert_array_equal(idx, ref.max_pool2d(x, 2)[1])
    dx = ops.max_pool2d_backward(y.tolist(), idx.tolist(), list(x.shape))
    np.testing.assert_array_equal(dx, ref.max_pool2d_backward(y, idx, x.shape))
    # integer input -> float64; integer with float32 -> float32
    xi = rng.integers(-3, 4, size=(1, 2, 5, 5))
    wi = rng.integers(-3, 4, size=(2, 2, 3, 3))
    yi = ops.conv2d(xi, wi)
    assert yi.dtype == np.float64
    np.testing.assert_array_equal(yi, ref.conv2d(xi, wi))     # small integers: exact
    assert ops.conv2d(xi, wi.astype(np.float32)).dtype == np.float32
    assert ops.conv2d(xi.astype(np.float16), wi).dtype == np.float32      # float16 -> float32
    assert ops.avg_pool2d(xi.astype(np.float16), 2).dtype == np.float32
    yp, ip = ops.max_pool2d(xi.astype(np.int32), 2, 1)
    assert yp.dtype == np.float64
    np.testing.assert_array_equal(ip, ref.max_pool2d(xi, 2, 1)[1])
    assert ops.avg_pool2d(xi, 2).dtype == np.float64
    assert ops.avg_pool2d_backward(np.ones((1, 2, 2, 2), np.int64), xi.shape, 2).dtype == np.float64
    assert ops.max_pool2d_backward(np.ones((1, 2, 4, 4), np.float32), ip, xi.shape).dtype == np.float32


def _layouts(a):
    """The same values as ``a`` in awkward memory layouts."""
    big = np.zeros((a.shape[0], a.shape[1], 2 * a.shape[2], a.shape[3] + 3), dtype=a.dtype)
    big[:, :, ::2, 2:-1] = a
    readonly = a.copy()
    readonly.flags.writeable = False
    nhwc = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return {"readonly": readonly, "strided_slice": big[:, :, ::2, 2:-1], "transposed": nhwc,
            "fortran": np.asfortranarray(a), "reversed": a[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]}


LAYOUT_NAMES = ["readonly", "strided_slice", "transposed", "fortran", "reversed", "broadcast"]


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_memory_layouts_give_same_results(rng, layout, dtype):
    if layout == "broadcast":
        x = np.broadcast_to(rng.standard_normal((1, 3, 8, 7)).astype(dtype), (3, 3, 8, 7))
        w = np.broadcast_to(rng.standard_normal((1, 3, 3, 3)).astype(dtype), (4, 3, 3, 3))
        dy = np.broadcast_to(rng.standard_normal((1, 1, 8, 7)).astype(dtype), (3, 4, 8, 7))
        dyp = np.broadcast_to(rng.standard_normal((1, 1, 4, 3)).astype(dtype), (3, 3, 4, 3))
        odd = (x, w, dy, dyp)
    else:
        plain = [rng.standard_normal(s).astype(dtype)
                 for s in ((3, 3, 8, 7), (4, 3, 3, 3), (3, 4, 8, 7), (3, 3, 4, 3))]
        odd = tuple(_layouts(a)[layout] for a in plain)
    x, w, dy, dyp = odd
    xc, wc, dyc, dypc = (np.ascontiguousarray(a) for a in odd)
    before = [a.copy() for a in odd]

    np.testing.assert_array_equal(ops.conv2d(x, w, padding=1), ops.conv2d(xc, wc, padding=1))
    for got, want in zip(ops.conv2d_backward(dy, x, w, padding=1),
                         ops.conv2d_backward(dyc, xc, wc, padding=1)):
        np.testing.assert_array_equal(got, want)
    y, idx = ops.max_pool2d(x, 2)
    yc, idxc = ops.max_pool2d(xc, 2)
    np.testing.assert_array_equal(y, yc)
    np.testing.assert_array_equal(idx, idxc)
    np.testing.assert_array_equal(ops.max_pool2d_backward(dyp, idx, x.shape),
                                  ops.max_pool2d_backward(dypc, idxc, x.shape))
    odd_idx = np.asfortranarray(idxc)
    odd_idx.flags.writeable = False
    np.testing.assert_array_equal(ops.max_pool2d_backward(dyp, odd_idx, x.shape),
                                  ops.max_pool2d_backward(dypc, idxc, x.shape))
    np.testing.assert_array_equal(ops.avg_pool2d(x, 2), ops.avg_pool2d(xc, 2))
    np.testing.assert_array_equal(ops.avg_pool2d_backward(dyp, x.shape, 2),
                                  ops.avg_pool2d_backward(dypc, x.shape, 2))
    # and the contiguous results are right
    assert_close(ops.conv2d(x, w, padding=1), ref.conv2d(*f64(x, w), padding=1),
                 *tolerance(dtype, 27), f"conv2d {layout}")
    for a, b in zip(odd, before):                     # inputs are never written to
        np.testing.assert_array_equal(a, b)


def test_empty_batch():
    x, w, b = np.zeros((0, 3, 6, 6)), np.zeros((4, 3, 3, 3)), np.zeros(4)
    y = ops.conv2d(x, w, b, stride=2, padding=1)
    assert y.shape == (0, 4, 3, 3) and y.dtype == np.float64
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 4, 4, 4), np.float32), x.astype(np.float32),
                                     w.astype(np.float32))
    assert (dx.shape, dw.shape, db.shape) == ((0, 3, 6, 6), (4, 3, 3, 3), (4,))
    assert dw.dtype == np.float32
    np.testing.assert_array_equal(dw, 0)              # an empty sum is zero, not garbage
    np.testing.assert_array_equal(db, 0)
    y, idx = ops.max_pool2d(x, 2)
    assert y.shape == idx.shape == (0, 3, 3, 3) and idx.dtype == np.int64
    assert ops.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    assert ops.avg_pool2d(x, 3, 1, 1).shape == (0, 3, 6, 6)
    assert ops.avg_pool2d_backward(np.zeros((0, 3, 6, 6)), x.shape, 3, 1, 1).shape == x.shape


def test_zero_channels_and_filters(rng):
    """C = 0 (empty reductions) and K = 0 behave like the reference."""
    x, w, b = np.zeros((2, 0, 5, 5)), np.zeros((3, 0, 3, 3)), rng.standard_normal(3)
    y = ops.conv2d(x, w, b)
    np.testing.assert_array_equal(y, ref.conv2d(x, w, b))
    dy = rng.standard_normal(y.shape)
    for got, want in zip(ops.conv2d_backward(dy, x, w), ref.conv2d_backward(dy, x, w)):
        assert_close(got, want, 1e-12, 1e-12, "C=0 backward")
    x = rng.standard_normal((2, 3, 5, 5))
    assert ops.conv2d(x, np.zeros((0, 3, 3, 3))).shape == (2, 0, 3, 3)
    dx, dw, db = ops.conv2d_backward(np.zeros((2, 0, 3, 3)), x, np.zeros((0, 3, 3, 3)))
    np.testing.assert_array_equal(dx, np.zeros_like(x))
    assert dw.shape == (0, 3, 3, 3) and db.shape == (0,)


# ----------------------------------------------------------------------------------------------
# bad input: every op, same exception (and message content) as the reference
# ----------------------------------------------------------------------------------------------

def _z(*shape):
    return np.zeros(shape)


X, Wt, DY = _z(1, 3, 5, 5), _z(2, 3, 3, 3), _z(1, 2, 3, 3)
PX, PDY, PIDX = _z(1, 2, 6, 6), _z(1, 2, 3, 3), np.zeros((1, 2, 3, 3), np.int64)

# (function, kwargs, exception, substrings that must appear in the message: the argument's
#  name and what was received)
BAD_INPUTS = []
for fn, extra in (("conv2d", {}), ("conv2d_backward", {"dy": DY})):
    BAD_INPUTS += [
        (fn, dict(extra, x=_z(3, 5, 5), w=Wt), ValueError, ["x", "(3, 5, 5)"]),
        (fn, dict(extra, x=X, w=_z(2, 3, 3)), ValueError, ["w", "(2, 3, 3)"]),
        (fn, dict(extra, x=X, w=_z(2, 4, 3, 3)), ValueError, ["w", "(2, 4, 3, 3)"]),
        (fn, dict(extra, x=X, w=_z(2, 3, 0, 3)), ValueError, ["w", "(0, 3)"]),
        (fn, dict(extra, x=_z(1, 3, 2, 5), w=Wt), ValueError, ["larger", "2"]),
        (fn, dict(extra, x=_z(1, 3, 5, 2), w=Wt), ValueError, ["larger", "2"]),
        (fn, dict(extra, x=_z(1, 3, 2, 5), w=_z(2, 3, 5, 5), padding=1), ValueError,
         ["larger", "4"]),
        (fn, dict(extra, x=X, w=Wt, dilation=(1, 3)), ValueError, ["larger", "dilation", "7"]),
        (fn, dict(extra, x=X, w=Wt, stride=0), ValueError, ["stride", "0"]),
        (fn, dict(extra, x=X, w=Wt, stride=(1, -2)), ValueError, ["stride", "(1, -2)"]),
        (fn, dict(extra, x=X, w=Wt, stride=1.5), TypeError, ["stride", "1.5"]),
        (fn, dict(extra, x=X, w=Wt, stride=(1, 1, 1)), ValueError, ["stride", "(1, 1, 1)"]),
        (fn, dict(extra, x=X, w=Wt, dilation=0), ValueError, ["dilation", "0"]),
        (fn, dict(extra, x=X, w=Wt, padding=-1), ValueError, ["padding", "-1"]),
        (fn, dict(extra, x=X, w=Wt, padding=(0, -1)), ValueError, ["padding", "(0, -1)"]),
        (fn, dict(extra, x=X, w=Wt, padding="full"), ValueError, ["padding", "'full'"]),
        (fn, dict(extra, x=X, w=Wt, padding=None), TypeError, ["padding", "None"]),
        (fn, dict(extra, x=np.full((1, 3, 5, 5), "a"), w=Wt), TypeError, ["x"]),
        (fn, dict(extra, x=X, w=np.zeros((2, 3, 3, 3), bool)), TypeError, ["w", "bool"]),
        (fn, dict(extra, x=X.astype(complex), w=Wt), TypeError, ["x", "complex128"]),
        (fn, dict(extra, x=[[[[1.0, 2.0]], [[1.0]]]], w=Wt), TypeError, ["x"]),
    ]
BAD_INPUTS += [
    ("conv2d", dict(x=X, w=Wt, b=_z(3)), ValueError, ["b", "(3,)"]),
    ("conv2d", dict(x=X, w=Wt, b=_z(1, 2)), ValueError, ["b", "(1, 2)"]),
    ("conv2d", dict(x=X, w=Wt, b=np.array(["a", "b"])), TypeError, ["b"]),
    ("conv2d_backward", dict(dy=_z(2, 3, 3), x=X, w=Wt), ValueError, ["dy", "(2, 3, 3)"]),
    ("conv2d_backward", dict(dy=_z(1, 3, 3, 3), x=X, w=Wt), ValueError, ["dy", "(1, 3, 3, 3)"]),
    ("conv2d_backward", dict(dy=_z(1, 2, 5, 5), x=X, w=Wt), ValueError, ["dy", "(1, 2, 5, 5)"]),
    ("conv2d_backward", dict(dy=_z(2, 2, 3, 3), x=X, w=Wt), ValueError, ["dy", "(2, 2, 3, 3)"]),
    ("conv2d_backward", dict(dy=_z(1, 2, 3, 3), x=X, w=Wt, stride=2), ValueError,
     ["dy", "(1, 2, 3, 3)"]),
    ("conv2d_backward", dict(dy=np.full((1, 2, 3, 3), "a"), x=X, w=Wt), TypeError, ["dy"]),
]
for fn in ("max_pool2d", "avg_pool2d"):
    BAD_INPUTS += [
        (fn, dict(x=_z(2, 6, 6), kernel_size=2), ValueError, ["x", "(2, 6, 6)"]),
        (fn, dict(x=PX, kernel_size=0), ValueError, ["kernel_size", "0"]),
        (fn, dict(x=PX, kernel_size=(2, 0)), ValueError, ["kernel_size", "(2, 0)"]),
        (fn, dict(x=PX, kernel_size=2.0), TypeError, ["kernel_size", "2.0"]),
        (fn, dict(x=PX, kernel_size=2, stride=0), ValueError, ["stride", "0"]),
        (fn, dict(x=PX, kernel_size=2, padding=-1), ValueError, ["padding", "-1"]),
        (fn, dict(x=PX, kernel_size=2, padding=2), ValueError, ["padding", "2"]),
        (fn, dict(x=PX, kernel_size=3, padding=(0, 2)), ValueError, ["padding", "(0, 2)"]),
        (fn, dict(x=PX, kernel_size=2, padding="full"), ValueError, ["padding", "'full'"]),
        (fn, dict(x=PX, kernel_size=7), ValueError, ["larger", "7"]),
        (fn, dict(x=PX, kernel_size=(2, 9), padding=(0, 1)), ValueError, ["larger", "9"]),
        (fn, dict(x=np.full((1, 2, 6, 6), "a"), kernel_size=2), TypeError, ["x"]),
        (fn, dict(x=np.zeros((1, 2, 6, 6), object), kernel_size=2), TypeError, ["x"]),
    ]
BAD_INPUTS += [
    ("max_pool2d_backward", dict(dy=_z(2, 3, 3), indices=PIDX, input_shape=(1, 2, 6, 6)),
     ValueError, ["dy", "(2, 3, 3)"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX[:, :, :2], input_shape=(1, 2, 6, 6)),
     ValueError, ["indices", "(1, 2, 2, 3)"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX[0], input_shape=(1, 2, 6, 6)),
     ValueError, ["indices", "(2, 3, 3)"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX - 1, input_shape=(1, 2, 6, 6)),
     ValueError, ["indices", "-1"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX + 36, input_shape=(1, 2, 6, 6)),
     ValueError, ["indices", "36"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=np.where(np.arange(18).reshape(1, 2, 3, 3) == 17,
                                                          99, PIDX), input_shape=(1, 2, 6, 6)),
     ValueError, ["indices", "99"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX.astype(float), input_shape=(1, 2, 6, 6)),
     TypeError, ["indices", "float64"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX, input_shape=(1, 2, 6)),
     ValueError, ["input_shape", "(1, 2, 6)"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX, input_shape=(1, 2, 6, -6)),
     ValueError, ["input_shape", "(1, 2, 6, -6)"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX, input_shape=(1, 2, 6.0, 6)),
     TypeError, ["input_shape", "6.0"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX, input_shape=6),
     TypeError, ["input_shape", "6"]),
    ("max_pool2d_backward", dict(dy=PDY, indices=PIDX, input_shape=(1, 3, 6, 6)),
     ValueError, ["(1, 3, 6, 6)", "(1, 2, 3, 3)"]),
    ("max_pool2d_backward", dict(dy=np.full((1, 2, 3, 3), "a"), indices=PIDX,
                                 input_shape=(1, 2, 6, 6)), TypeError, ["dy"]),
    ("avg_pool2d_backward", dict(dy=_z(2, 3, 3), input_shape=(1, 2, 6, 6), kernel_size=2),
     ValueError, ["dy", "(2, 3, 3)"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6, 6), kernel_size=3, stride=1),
     ValueError, ["dy", "(1, 2, 3, 3)"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(2, 2, 6, 6), kernel_size=2),
     ValueError, ["dy", "(1, 2, 3, 3)"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6), kernel_size=2),
     ValueError, ["input_shape", "(1, 2, 6)"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, -2, 6, 6), kernel_size=2),
     ValueError, ["input_shape", "(1, -2, 6, 6)"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6, 6), kernel_size=0),
     ValueError, ["kernel_size", "0"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6, 6), kernel_size=2, stride=-1),
     ValueError, ["stride", "-1"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6, 6), kernel_size=2, padding=-1),
     ValueError, ["padding", "-1"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6, 6), kernel_size=2, padding=2),
     ValueError, ["padding", "2"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 6, 6), kernel_size=2, padding="x"),
     ValueError, ["padding", "'x'"]),
    ("avg_pool2d_backward", dict(dy=PDY, input_shape=(1, 2, 2, 6), kernel_size=3),
     ValueError, ["larger", "3"]),
    ("avg_pool2d_backward", dict(dy=np.full((1, 2, 3, 3), "a"), input_shape=(1, 2, 6, 6),
                                 kernel_size=2), TypeError, ["dy"]),
    ("matmul", dict(a=_z(2, 3), b=_z(4, 2)), ValueError, ["a", "b", "(2, 3)", "(4, 2)"]),
    ("matmul", dict(a=_z(3), b=_z(3, 2)), ValueError, ["a", "(3,)"]),
    ("matmul", dict(a=_z(2, 3), b=_z(3, 2, 1)), ValueError, ["b", "(3, 2, 1)"]),
    ("matmul", dict(a=np.full((2, 2), "a"), b=_z(2, 2)), TypeError, ["a"]),
    ("matmul", dict(a=_z(2, 2), b=np.ones((2, 2), dtype=complex)), TypeError, ["b"]),
    ("relu", dict(x=np.full((2, 2), "a")), TypeError, ["x"]),
    ("relu", dict(x=_z(2, 2).astype(complex)), TypeError, ["x", "complex128"]),
    ("relu_backward", dict(dy=_z(2, 3), y=_z(3, 2)), ValueError, ["y", "(3, 2)"]),
    ("relu_backward", dict(dy=np.full((2, 2), "a"), y=_z(2, 2)), TypeError, ["dy"]),
]

# grouped and transposed convolution, upsampling, zero padding, global max pooling
TX, TW, TDY = _z(1, 3, 4, 4), _z(3, 2, 3, 3), _z(1, 2, 6, 6)
for fn, extra in (("conv2d", {}), ("conv2d_backward", {"dy": DY})):
    BAD_INPUTS += [
        (fn, dict(extra, x=X, w=Wt, groups=0), ValueError, ["groups", "0"]),
        (fn, dict(extra, x=X, w=Wt, groups=1.5), TypeError, ["groups", "1.5"]),
        (fn, dict(extra, x=X, w=Wt, groups="2"), TypeError, ["groups", "'2'"]),
        (fn, dict(extra, x=X, w=_z(2, 1, 3, 3), groups=2), ValueError, ["groups", "3", "2"]),
        (fn, dict(extra, x=_z(1, 4, 5, 5), w=Wt, groups=2), ValueError, ["w", "(2, 3, 3, 3)"]),
    ]
BAD_INPUTS += [
    ("conv2d", dict(x=_z(1, 4, 5, 5), w=_z(3, 2, 3, 3), groups=2), ValueError,
     ["groups", "3", "filters"]),
]
for fn, extra in (("conv_transpose2d", {}), ("conv_transpose2d_backward", {"dy": TDY})):
    BAD_INPUTS += [
        (fn, dict(extra, x=_z(3, 4, 4), w=TW), ValueError, ["x", "(3, 4, 4)"]),
        (fn, dict(extra, x=TX, w=_z(3, 2, 3)), ValueError, ["w", "(3, 2, 3)"]),
        (fn, dict(extra, x=TX, w=_z(2, 2, 3, 3)), ValueError, ["w", "(2, 2, 3, 3)"]),
        (fn, dict(extra, x=TX, w=_z(3, 2, 0, 3)), ValueError, ["w", "(0, 3)"]),
        (fn, dict(extra, x=TX, w=TW, groups=2), ValueError, ["groups", "2", "3"]),
        (fn, dict(extra, x=TX, w=TW, groups=0), ValueError, ["groups", "0"]),
        (fn, dict(extra, x=TX, w=TW, stride=0), ValueError, ["stride", "0"]),
        (fn, dict(extra, x=TX, w=TW, dilation=(1, 0)), ValueError, ["dilation", "(1, 0)"]),
        (fn, dict(extra, x=TX, w=TW, padding=-1), ValueError, ["padding", "-1"]),
        (fn, dict(extra, x=TX, w=TW, padding="full"), ValueError, ["padding", "'full'"]),
        (fn, dict(extra, x=TX, w=TW, padding=5), ValueError, ["padding", "5"]),
        (fn, dict(extra, x=TX, w=TW, output_padding=1), ValueError, ["output_padding", "1"]),
        (fn, dict(extra, x=TX, w=TW, output_padding=-1, stride=2), ValueError,
         ["output_padding", "-1"]),
        (fn, dict(extra, x=TX, w=TW, output_padding=1.5), TypeError, ["output_padding", "1.5"]),
        (fn, dict(extra, x=TX, w=TW, padding="same", stride=2, output_padding=1), ValueError,
         ["output_padding", "1"]),
        (fn, dict(extra, x=np.full((1, 3, 4, 4), "a"), w=TW), TypeError, ["x"]),
        (fn, dict(extra, x=TX, w=np.zeros((3, 2, 3, 3), bool)), TypeError, ["w", "bool"]),
    ]
BAD_INPUTS += [
    ("conv_transpose2d", dict(x=TX, w=TW, b=_z(3)), ValueError, ["b", "(3,)"]),
    ("conv_transpose2d", dict(x=TX, w=TW, b=np.array(["a", "b"])), TypeError, ["b"]),
    ("conv_transpose2d_backward", dict(dy=_z(1, 2, 5, 5), x=TX, w=TW), ValueError,
     ["dy", "(1, 2, 5, 5)"]),
    ("conv_transpose2d_backward", dict(dy=_z(2, 6, 6), x=TX, w=TW), ValueError,
     ["dy", "(2, 6, 6)"]),
    ("conv_transpose2d_backward", dict(dy=TDY, x=TX, w=TW, stride=2), ValueError,
     ["dy", "(1, 2, 6, 6)"]),
    ("conv_transpose2d_backward", dict(dy=np.full((1, 2, 6, 6), "a"), x=TX, w=TW), TypeError,
     ["dy"]),
    ("upsample2d", dict(x=_z(2, 6, 6), size=2), ValueError, ["x", "(2, 6, 6)"]),
    ("upsample2d", dict(x=PX, size=0), ValueError, ["size", "0"]),
    ("upsample2d", dict(x=PX, size=(2, -1)), ValueError, ["size", "(2, -1)"]),
    ("upsample2d", dict(x=PX, size=1.5), TypeError, ["size", "1.5"]),
    ("upsample2d", dict(x=PX, size=2, interpolation="cubic"), ValueError,
     ["interpolation", "'cubic'"]),
    ("upsample2d", dict(x=PX, size=2, interpolation=None), ValueError, ["interpolation", "None"]),
    ("upsample2d", dict(x=np.full((1, 2, 6, 6), "a"), size=2), TypeError, ["x"]),
    ("upsample2d_backward", dict(dy=_z(1, 2, 5, 6), size=2), ValueError, ["dy", "(1, 2, 5, 6)"]),
    ("upsample2d_backward", dict(dy=_z(2, 6, 6), size=2), ValueError, ["dy", "(2, 6, 6)"]),
    ("upsample2d_backward", dict(dy=PX, size=0), ValueError, ["size", "0"]),
    ("upsample2d_backward", dict(dy=PX, size=2, interpolation="area"), ValueError,
     ["interpolation", "'area'"]),
    ("upsample2d_backward", dict(dy=np.full((1, 2, 6, 6), "a"), size=2), TypeError, ["dy"]),
    ("zero_pad2d", dict(x=_z(2, 6, 6), padding=1), ValueError, ["x", "(2, 6, 6)"]),
    ("zero_pad2d", dict(x=PX, padding=-1), ValueError, ["padding", "-1"]),
    ("zero_pad2d", dict(x=PX, padding=((1, 2), (3, -1))), ValueError,
     ["padding", "((1, 2), (3, -1))"]),
    ("zero_pad2d", dict(x=PX, padding=(1, 2, 3)), ValueError, ["padding", "(1, 2, 3)"]),
    ("zero_pad2d", dict(x=PX, padding=1.5), TypeError, ["padding", "1.5"]),
    ("zero_pad2d", dict(x=PX, padding=2**40), ValueError, ["padding", str(2**40)]),
    ("zero_pad2d", dict(x=np.full((1, 2, 6, 6), "a"), padding=1), TypeError, ["x"]),
    ("zero_pad2d_backward", dict(dy=PDY, padding=2), ValueError, ["padding", "(1, 2, 3, 3)"]),
    ("zero_pad2d_backward", dict(dy=_z(2, 3, 3), padding=1), ValueError, ["dy", "(2, 3, 3)"]),
    ("zero_pad2d_backward", dict(dy=PDY, padding="same"), TypeError, ["padding", "'same'"]),
    ("zero_pad2d_backward", dict(dy=np.full((1, 2, 3, 3), "a"), padding=1), TypeError, ["dy"]),
    ("global_max_pool2d", dict(x=_z(2, 6, 6)), ValueError, ["x", "(2, 6, 6)"]),
    ("global_max_pool2d", dict(x=_z(1, 2, 0, 3)), ValueError, ["x", "(1, 2, 0, 3)"]),
    ("global_max_pool2d", dict(x=np.full((1, 2, 6, 6), "a")), TypeError, ["x"]),
    ("global_max_pool2d_backward", dict(dy=PDY, indices=_z(1, 2).astype(int),
                                        input_shape=(1, 2, 6, 6)), ValueError, ["dy", "(1, 2, 3, 3)"]),
    ("global_max_pool2d_backward", dict(dy=_z(1, 2), indices=PIDX, input_shape=(1, 2, 6, 6)),
     ValueError, ["indices", "(1, 2, 3, 3)"]),
    ("global_max_pool2d_backward", dict(dy=_z(1, 2), indices=np.array([[0, 99]]),
                                        input_shape=(1, 2, 6, 6)), ValueError, ["indices", "99"]),
    ("global_max_pool2d_backward", dict(dy=_z(1, 2), indices=_z(1, 2), input_shape=(1, 2, 6, 6)),
     TypeError, ["indices", "float64"]),
    ("global_max_pool2d_backward", dict(dy=_z(1, 2), indices=np.zeros((1, 3), int),
                                        input_shape=(1, 2, 6, 6)), ValueError, ["indices", "(1, 3)"]),
    ("global_max_pool2d_backward", dict(dy=_z(1, 2), indices=np.zeros((1, 2), int),
                                        input_shape=(1, 2, 6)), ValueError, ["input_shape", "(1, 2, 6)"]),
    ("global_max_pool2d_backward", dict(dy=np.full((1, 2), "a"), indices=np.zeros((1, 2), int),
                                        input_shape=(1, 2, 6, 6)), TypeError, ["dy"]),
]


def _bad_id(number, case):
    fn, kwargs, exc, subs = case
    return f"{number}-{fn}-{exc.__name__}-{'|'.join(subs)}"


@pytest.mark.parametrize("impl", ["ops", "reference"])
@pytest.mark.parametrize("fn, kwargs, exc, substrings", BAD_INPUTS,
                         ids=[_bad_id(i, c) for i, c in enumerate(BAD_INPUTS)])
def test_bad_input(impl, fn, kwargs, exc, substrings):
    module = ops if impl == "ops" else ref
    with pytest.raises(exc) as info:
        getattr(module, fn)(**kwargs)
    msg = str(info.value)
    for s in substrings:
        found = (re.search(rf"(?<![\w]){re.escape(s)}(?![\w])", msg) if s.isidentifier()
                 else s in msg)
        assert found, f"{impl}.{fn}: message {msg!r} does not mention {s!r}"


def test_bad_input_table_covers_every_op():
    assert {case[0] for case in BAD_INPUTS} == set(ops.__all__) == set(ref.__all__)


@pytest.mark.parametrize("call", [
    lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), stride=2**31),
    lambda: ops.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), padding=2**40),
    lambda: ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, stride=2**40),
])
def test_huge_ints_are_value_errors(call):
    with pytest.raises(ValueError, match="must be < 2\\*\\*31"):
        call()


def test_pooling_an_empty_image_is_rejected():
    with pytest.raises(ValueError, match="at least 1x1 pixels, got height x width 0x0"):
        ops.max_pool2d(np.zeros((1, 1, 0, 0)), 2, padding=1)


def test_conv_geometry_cache_still_checks_types_and_raises_every_time():
    """conv_padding answers plain-int calls from a cache: an equal float or NumPy scalar
    must still be checked as itself, and a bad geometry must raise on every call."""
    x = np.ones((1, 1, 6, 6), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    y = ops.conv2d(x, w, stride=2, padding=1)            # cached: stride 2, padding 1
    for _ in range(2):
        with pytest.raises(TypeError, match="stride"):
            ops.conv2d(x, w, stride=2.0, padding=1)
        with pytest.raises(TypeError, match="padding"):
            ops.conv2d(x, w, stride=2, padding=1.0)
        with pytest.raises(ValueError, match="kernel"):
            ops.conv2d(x, np.ones((1, 1, 9, 9), np.float32), padding=0)
    np.testing.assert_array_equal(ops.conv2d(x, w, stride=np.int64(2), padding=(1, 1)), y)
    np.testing.assert_allclose(y, ref.conv2d(x, w, stride=2, padding=1), rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda a: a[:, :, ::-1],                    # negative strides
    lambda a: np.asfortranarray(a),
    lambda a: a.astype(">f4"),                  # non-native byte order
    lambda a: np.frombuffer(b"\0" + a.tobytes(), np.float32, offset=1).reshape(a.shape),
    lambda a: a.astype(np.float64),             # mixed with float32 w: float64 result
])
def test_conv2d_inputs_that_need_a_copy_or_cast_still_get_one(make):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    xv = make(x)
    y = ops.conv2d(xv, w, padding=1)
    expected = ref.conv2d(np.asarray(xv, np.float64), w.astype(np.float64), padding=1)
    assert y.dtype == (np.float64 if xv.dtype == np.float64 else np.float32)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
