"""Tests of the pure-NumPy oracle ``cycnn.reference``.

* backward functions against float64 central finite differences;
* forward functions against naive loops written here (explicit bounds checks, no padding
  arrays, no stride tricks);
* TensorFlow 'same' padding semantics against manual padding;
* everything against PyTorch autograd when ``torch`` imports (skipped otherwise).
"""
import math

import numpy as np
import pytest

from cycnn import reference as ref

RNG_SEED = 20261122


@pytest.fixture
def rng():
    return np.random.default_rng(RNG_SEED)


def assert_close(actual, expected, rtol, atol, context=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{context}: shape {actual.shape} != {expected.shape}"
    if actual.size:
        err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        bad = ~(err <= atol + rtol * np.abs(expected))
        bad &= ~(np.isnan(actual) & np.isnan(expected))
        assert not bad.any(), (
            f"{context}: shape {actual.shape}, {bad.sum()} mismatches, max abs error "
            f"{np.nanmax(err):.3g} (rtol={rtol}, atol={atol}); first at "
            f"{np.argwhere(bad)[0].tolist()}")


def numerical_grad(f, arr, dy, eps=1e-6):
    """d(sum(f(arr) * dy)) / d arr by central differences (float64, arr modified in place)."""
    grad = np.zeros_like(arr)
    flat, g = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(f() * dy)
        flat[i] = old - eps
        minus = np.sum(f() * dy)
        flat[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return grad


GRAD_RTOL, GRAD_ATOL = 1e-6, 1e-7   # central differences with eps=1e-6 on O(1) values


# ----------------------------------------------------------------------------------------------
# naive loops (independent of reference.py's padding/stride-trick machinery)
# ----------------------------------------------------------------------------------------------

def tf_same_pads(size, k, s, d=1):
    out = math.ceil(size / s)
    total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_pads(padding, hw, khw, stride, dil):
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple(tf_same_pads(i, k, s, d) for i, k, s, d in zip(hw, khw, stride, dil))
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph), (pw, pw)


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def naive_conv2d(x, w, b, stride, padding, dilation):
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    (sh, sw), (dh, dw) = as_pair(stride), as_pair(dilation)
    (pt, pb), (pl, pr) = resolve_pads(padding, (H, W), (R, S), (sh, sw), (dh, dw))
    Ho = (H + pt + pb - dh * (R - 1) - 1) // sh + 1
    Wo = (W + pl + pr - dw * (S - 1) - 1) // sw + 1
    y = np.zeros((N, K, Ho, Wo))
    for n in range(N):
        for k in range(K):
            for i in range(Ho):
                for j in range(Wo):
                    acc = 0.0 if b is None else b[k]
                    for c in range(C):
                        for r in range(R):
                            for s in range(S):
                                h, v = i * sh - pt + r * dh, j * sw - pl + s * dw
                                if 0 <= h < H and 0 <= v < W:
                                    acc += w[k, c, r, s] * x[n, c, h, v]
                    y[n, k, i, j] = acc
    return y


def naive_pool(x, kernel_size, stride, padding, mode):
    N, C, H, W = x.shape
    kh, kw = as_pair(kernel_size)
    sh, sw = (kh, kw) if stride is None else as_pair(stride)
    (pt, pb), (pl, pr) = resolve_pads(padding, (H, W), (kh, kw), (sh, sw), (1, 1))
    Ho, Wo = (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1
    y = np.zeros((N, C, Ho, Wo))
    idx = np.full((N, C, Ho, Wo), -1, dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, arg, total = -np.inf, -1, 0.0
                    for r in range(kh):
                        for s in range(kw):
                            h, v = i * sh - pt + r, j * sw - pl + s
                            if 0 <= h < H and 0 <= v < W:
                                val = x[n, c, h, v]
                                total += val
                                if arg < 0 or val > best or (np.isnan(val)):
                                    best, arg = val, h * W + v
                    y[n, c, i, j] = best if mode == "max" else total / (kh * kw)
                    idx[n, c, i, j] = arg
    return y, idx


# ----------------------------------------------------------------------------------------------
# forward against naive loops
# ----------------------------------------------------------------------------------------------

CONV_CASES = [
    # x shape,        w shape,        stride, padding,  dilation
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, 1),
    ((2, 3, 7, 6), (4, 3, 3, 2), 1, 1, 1),
    ((2, 2, 8, 9), (3, 2, 3, 3), 2, 1, 1),
    ((1, 2, 9, 7), (2, 2, 2, 3), (2, 1), (0, 2), (1, 2)),
    ((1, 3, 6, 8), (2, 3, 3, 3), 1, "same", 1),
    ((1, 2, 8, 7), (2, 2, 3, 3), 2, "same", 1),
    ((1, 2, 7, 8), (3, 2, 2, 4), (2, 3), "same", (1, 2)),
    ((1, 2, 9, 9), (2, 2, 3, 3), 3, "valid", 2),
    ((2, 1, 4, 5), (2, 1, 4, 5), 1, 0, 1),            # kernel equal to the input
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CONV_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d_matches_naive_loop(rng, xs, ws, stride, padding, dilation, bias):
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0]) if bias else None
    y = ref.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    expected = naive_conv2d(x, w, b, stride, padding, dilation)
    assert y.dtype == np.float64
    assert_close(y, expected, 1e-12, 1e-12, f"conv2d x{xs} w{ws}")


POOL_CASES = [
    # x shape,       kernel, stride, padding
    ((1, 1, 4, 4), 2, None, 0),
    ((2, 3, 7, 6), 3, 2, 1),
    ((1, 2, 5, 8), (2, 3), (1, 2), (1, 1)),
    ((1, 1, 9, 9), 4, 3, 2),
    ((1, 2, 6, 7), 3, 2, "same"),
    ((1, 2, 7, 6), (2, 3), (2, 2), "same"),
    ((1, 1, 7, 7), 3, 1, "valid"),
    ((1, 1, 3, 5), (3, 5), None, 0),                  # kernel equal to the input
]


@pytest.mark.parametrize("xs, k, s, p", POOL_CASES)
def test_pools_match_naive_loop(rng, xs, k, s, p):
    x = rng.standard_normal(xs)
    y, idx = ref.max_pool2d(x, k, s, p)
    ey, eidx = naive_pool(x, k, s, p, "max")
    assert y.dtype == np.float64 and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(idx, eidx)
    assert_close(ref.avg_pool2d(x, k, s, p), naive_pool(x, k, s, p, "avg")[0], 1e-13, 1e-13,
                 f"avg_pool2d {xs} k={k} s={s} p={p}")


def test_max_pool_ties_nan_and_minus_inf_match_naive_loop(rng):
    x = rng.integers(-2, 3, size=(2, 2, 7, 7)).astype(np.float64)   # many ties
    x[0, 0, 1, 1] = x[0, 1, 3, 4] = x[1, 0, 5, 5] = x[1, 0, 5, 6] = np.nan
    x[1, 1] = -np.inf
    for k, s, p in [(2, 1, 1), (3, 2, 1), (3, 1, "same"), (4, 3, 2)]:
        y, idx = ref.max_pool2d(x, k, s, p)
        ey, eidx = naive_pool(x, k, s, p, "max")
        np.testing.assert_array_equal(y, ey)
        np.testing.assert_array_equal(idx, eidx)


def test_max_pool_explicit_small_case():
    x = np.array([[[[1.0, 3.0, 3.0],
                    [np.nan, 2.0, 9.0],
                    [5.0, np.nan, -np.inf]]]])
    y, idx = ref.max_pool2d(x, 2, stride=1)
    np.testing.assert_array_equal(y, [[[[np.nan, 9.0], [np.nan, np.nan]]]])
    np.testing.assert_array_equal(idx, [[[[3, 5], [7, 7]]]])
    y, idx = ref.max_pool2d(np.ones((1, 1, 2, 3)), (2, 3))        # ties: first in scan order
    assert idx.tolist() == [[[[0]]]] and y.tolist() == [[[[1.0]]]]
    y, idx = ref.max_pool2d(np.full((1, 1, 3, 3), -np.inf), 3, stride=1, padding=1)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(idx, [[[[0, 0, 1], [0, 0, 1], [3, 3, 4]]]])


# ----------------------------------------------------------------------------------------------
# TensorFlow 'same' padding
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size, k, s, d, expected", [
    (4, 3, 2, 1, (0, 1)),   # even input, stride 2: ceil(4/2)=2 outputs, extra pad bottom/right
    (5, 3, 2, 1, (1, 1)),   # odd input: 3 outputs, symmetric
    (6, 2, 2, 1, (0, 0)),
    (7, 4, 1, 1, (1, 2)),
    (8, 3, 3, 1, (0, 1)),
    (6, 3, 1, 2, (2, 2)),   # dilation 2: effective kernel 5
])
def test_conv_same_padding_is_tensorflow(rng, size, k, s, d, expected):
    assert tf_same_pads(size, k, s, d) == expected
    x = rng.standard_normal((1, 2, size, size + 1))
    w = rng.standard_normal((3, 2, k, k))
    y = ref.conv2d(x, w, stride=s, padding="same", dilation=d)
    assert y.shape[2:] == (math.ceil(size / s), math.ceil((size + 1) / s))
    pw = tf_same_pads(size + 1, k, s, d)
    xp = np.pad(x, ((0, 0), (0, 0), expected, pw))
    assert_close(y, ref.conv2d(xp, w, stride=s, padding=0, dilation=d), 1e-13, 1e-13,
                 f"'same' size={size} k={k} s={s} d={d}")
    # and the backward agrees with the manually padded version cropped back
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride=s, padding="same", dilation=d)
    dxp, dwp, dbp = ref.conv2d_backward(dy, xp, w, stride=s, padding=0, dilation=d)
    assert_close(dx, dxp[:, :, expected[0]:expected[0] + size, pw[0]:pw[0] + size + 1],
                 1e-13, 1e-13, "dx 'same'")
    assert_close(dw, dwp, 1e-12, 1e-12, "dw 'same'")
    assert_close(db, dbp, 1e-12, 1e-12, "db 'same'")


@pytest.mark.parametrize("size", [4, 5, 6, 7])
def test_pool_same_padding_is_tensorflow(rng, size):
    x = rng.standard_normal((1, 1, size, size))
    y, _ = ref.max_pool2d(x, 3, 2, "same")
    assert y.shape == (1, 1, math.ceil(size / 2), math.ceil(size / 2))
    pads = tf_same_pads(size, 3, 2)
    xp = np.pad(x, ((0, 0), (0, 0), pads, pads), constant_values=-np.inf)
    np.testing.assert_array_equal(y, ref.max_pool2d(xp, 3, 2, 0)[0])
    xz = np.pad(x, ((0, 0), (0, 0), pads, pads))
    assert_close(ref.avg_pool2d(x, 3, 2, "same"), ref.avg_pool2d(xz, 3, 2, 0), 1e-14, 1e-14,
                 "avg 'same'")


# ----------------------------------------------------------------------------------------------
# gradients against central finite differences (float64)
# ----------------------------------------------------------------------------------------------

GRAD_CONV_CASES = [
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 0, 1),
    ((1, 3, 6, 5), (2, 3, 3, 2), 2, 1, 1),
    ((1, 2, 7, 6), (2, 2, 2, 3), (2, 1), (1, 0), (2, 1)),
    ((2, 2, 6, 7), (2, 2, 3, 3), 1, "same", 2),
    ((1, 2, 6, 5), (3, 2, 3, 3), 2, "same", 1),
    ((1, 1, 5, 6), (2, 1, 4, 2), 3, "valid", 1),
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", GRAD_CONV_CASES)
def test_conv2d_backward_finite_differences(rng, xs, ws, stride, padding, dilation):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    geo = dict(stride=stride, padding=padding, dilation=dilation)
    y = ref.conv2d(x, w, b, **geo)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ref.conv2d_backward(dy, x, w, **geo)
    f = lambda: ref.conv2d(x, w, b, **geo)  # noqa: E731 (reads x, w, b as perturbed)
    assert_close(dx, numerical_grad(f, x, dy), GRAD_RTOL, GRAD_ATOL, "dx")
    assert_close(dw, numerical_grad(f, w, dy), GRAD_RTOL, GRAD_ATOL, "dw")
    assert_close(db, numerical_grad(f, b, dy), GRAD_RTOL, GRAD_ATOL, "db")
    assert_close(db, dy.sum(axis=(0, 2, 3)), 1e-13, 1e-13, "db = sum of dy")


POOL_GRAD_CASES = [
    ((1, 2, 4, 4), 2, None, 0),
    ((2, 1, 7, 6), 3, 2, 1),       # overlapping windows accumulate
    ((1, 2, 5, 7), (2, 3), 1, (1, 1)),
    ((1, 1, 6, 7), 3, 2, "same"),
    ((1, 1, 8, 8), 4, 3, 2),
]


def distinct_values(rng, shape):
    """Values at least 0.1 apart, so the argmax survives a 1e-6 perturbation."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


@pytest.mark.parametrize("xs, k, s, p", POOL_GRAD_CASES)
def test_max_pool2d_backward_finite_differences(rng, xs, k, s, p):
    x = distinct_values(rng, xs)
    y, idx = ref.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    dx = ref.max_pool2d_backward(dy, idx, x.shape)
    expected = numerical_grad(lambda: ref.max_pool2d(x, k, s, p)[0], x, dy)
    assert_close(dx, expected, GRAD_RTOL, GRAD_ATOL, "max pool dx")


@pytest.mark.parametrize("xs, k, s, p", POOL_GRAD_CASES)
def test_avg_pool2d_backward_finite_differences(rng, xs, k, s, p):
    x = rng.standard_normal(xs)
    y = ref.avg_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    dx = ref.avg_pool2d_backward(dy, x.shape, k, s, p)
    expected = numerical_grad(lambda: ref.avg_pool2d(x, k, s, p), x, dy)
    assert_close(dx, expected, GRAD_RTOL, GRAD_ATOL, "avg pool dx")


def test_max_pool2d_backward_accumulates_overlaps():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0                  # the centre wins all four 2x2 windows
    y, idx = ref.max_pool2d(x, 2, stride=1)
    assert np.all(idx == 4)
    dx = ref.max_pool2d_backward(np.ones((1, 1, 2, 2)), idx, (1, 1, 3, 3))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 4.0
    np.testing.assert_array_equal(dx, expected)


# ----------------------------------------------------------------------------------------------
# dtypes, array-likes, empty batches, validation
# ----------------------------------------------------------------------------------------------

def test_dtypes_and_array_likes(rng):
    x32 = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w32 = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert ref.conv2d(x32, w32).dtype == np.float32
    assert ref.conv2d(x32, w32.astype(np.float64)).dtype == np.float64
    assert ref.conv2d(x32.astype(np.int64), w32.astype(np.int32)).dtype == np.float64
    assert ref.conv2d(x32.astype(np.int64), w32).dtype == np.float32
    dx, dw, db = ref.conv2d_backward(np.ones((1, 3, 3, 3), np.float32), x32, w32)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    y, idx = ref.max_pool2d(x32, 2)
    assert y.dtype == np.float32 and idx.dtype == np.int64
    assert ref.avg_pool2d(x32, 2).dtype == np.float32
    assert ref.max_pool2d_backward(y, idx, x32.shape).dtype == np.float32
    assert ref.avg_pool2d_backward(y, x32.shape, 2).dtype == np.float32
    xi = [[[[1, 2], [3, 4]]]]
    np.testing.assert_array_equal(ref.conv2d(xi, [[[[1, 1], [1, 1]]]], [0.5]), [[[[10.5]]]])
    np.testing.assert_array_equal(ref.avg_pool2d(xi, 2), [[[[2.5]]]])
    np.testing.assert_array_equal(ref.max_pool2d(xi, 2)[1], [[[[3]]]])


def test_empty_batch():
    x, w = np.zeros((0, 3, 6, 6)), np.zeros((4, 3, 3, 3))
    assert ref.conv2d(x, w, np.zeros(4), stride=2, padding=1).shape == (0, 4, 3, 3)
    dx, dw, db = ref.conv2d_backward(np.zeros((0, 4, 4, 4)), x, w)
    assert (dx.shape, dw.shape, db.shape) == ((0, 3, 6, 6), (4, 3, 3, 3), (4,))
    assert not dw.any() and not db.any()
    y, idx = ref.max_pool2d(x, 2)
    assert y.shape == idx.shape == (0, 3, 3, 3)
    assert ref.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    assert ref.avg_pool2d(x, 3, 1, 1).shape == (0, 3, 6, 6)
    assert ref.avg_pool2d_backward(np.zeros((0, 3, 6, 6)), x.shape, 3, 1, 1).shape == x.shape


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ref.conv2d(np.zeros((3, 5, 5)), np.zeros((1, 3, 3, 3))), ValueError, "x must be 4-D"),
    (lambda: ref.conv2d(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3))), ValueError, "w must have 2"),
    (lambda: ref.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(3)), ValueError, "b must have shape"),
    (lambda: ref.conv2d(np.zeros((1, 3, 2, 5)), np.zeros((2, 3, 3, 3))), ValueError, "larger than the padded"),
    (lambda: ref.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), stride=0), ValueError, "stride"),
    (lambda: ref.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), padding=-1), ValueError, "padding"),
    (lambda: ref.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), padding="full"), ValueError, "padding"),
    (lambda: ref.conv2d(np.array([["a"]]), np.zeros((2, 3, 3, 3))), TypeError, "x must be"),
    (lambda: ref.conv2d_backward(np.zeros((1, 2, 4, 4)), np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3))), ValueError, "dy must have shape"),
    (lambda: ref.max_pool2d(np.zeros((1, 1, 4, 4)), 0), ValueError, "kernel_size"),
    (lambda: ref.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16), (1, 1, 4, 4)), ValueError, "indices"),
    (lambda: ref.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), -1), (1, 1, 4, 4)), ValueError, "indices"),
    (lambda: ref.max_pool2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)), (1, 1, 4, 4)), TypeError, "indices"),
    (lambda: ref.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), (1, 1, 4), 2), ValueError, "input_shape"),
    (lambda: ref.avg_pool2d_backward(np.zeros((1, 1, 2, 2)), (1, 1, 4, -4), 2), ValueError, "input_shape"),
    (lambda: ref.avg_pool2d_backward(np.zeros((1, 1, 3, 2)), (1, 1, 4, 4), 2), ValueError, "dy must have shape"),
])
def test_reference_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# PyTorch (optional)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_pads(padding, hw, khw, stride, dil):
    """PyTorch padding argument plus an explicit F.pad tuple for TF 'same'."""
    (pt, pb), (pl, pr) = resolve_pads(padding, hw, khw, as_pair(stride), as_pair(dil))
    return (pl, pr, pt, pb)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CONV_CASES + GRAD_CONV_CASES)
def test_conv2d_forward_backward_vs_torch(torch, rng, xs, ws, stride, padding, dilation):
    F = torch.nn.functional
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y = ref.conv2d(x, w, b, stride, padding, dilation)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ref.conv2d_backward(dy, x, w, stride, padding, dilation)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    pad = torch_pads(padding, xs[2:], ws[2:], stride, dilation)
    yt = F.conv2d(F.pad(xt, pad), wt, bt, stride=stride, padding=0, dilation=dilation)
    yt.backward(torch.tensor(dy))
    ctx = f"x{xs} w{ws} s={stride} p={padding} d={dilation}"
    assert_close(y, yt.detach().numpy(), 1e-12, 1e-12, "y " + ctx)
    assert_close(dx, xt.grad.numpy(), 1e-12, 1e-12, "dx " + ctx)
    assert_close(dw, wt.grad.numpy(), 1e-12, 1e-12, "dw " + ctx)
    assert_close(db, bt.grad.numpy(), 1e-12, 1e-12, "db " + ctx)


@pytest.mark.parametrize("xs, k, s, p", POOL_CASES + POOL_GRAD_CASES)
def test_pools_forward_backward_vs_torch(torch, rng, xs, k, s, p):
    F = torch.nn.functional
    x = distinct_values(rng, xs)
    if p in ("same", "valid"):
        kk, ss = as_pair(k), (as_pair(k) if s is None else as_pair(s))
        pad = torch_pads(p, xs[2:], kk, ss, 1)
        tpad_max = lambda t: F.pad(t, pad, value=-np.inf)  # noqa: E731
        tpad_avg = lambda t: F.pad(t, pad)                 # noqa: E731
        tp = 0
    else:
        tpad_max = tpad_avg = lambda t: t                  # noqa: E731
        tp = p
    y, idx = ref.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt, it = F.max_pool2d(tpad_max(xt), k, s, tp, return_indices=True)
    yt.backward(torch.tensor(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    if p not in ("same", "valid"):   # with an explicit F.pad torch indexes the padded plane
        np.testing.assert_array_equal(idx, it.numpy())
    assert_close(ref.max_pool2d_backward(dy, idx, xs), xt.grad.numpy(), 1e-14, 1e-14, "max dx")

    y = ref.avg_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = F.avg_pool2d(tpad_avg(xt), k, s, tp, count_include_pad=True)
    yt.backward(torch.tensor(dy))
    assert_close(y, yt.detach().numpy(), 1e-13, 1e-13, "avg y")
    assert_close(ref.avg_pool2d_backward(dy, xs, k, s, p), xt.grad.numpy(), 1e-13, 1e-13,
                 "avg dx")


def test_max_pool_nan_and_ties_vs_torch(torch, rng):
    F = torch.nn.functional
    x = rng.integers(-1, 2, size=(2, 3, 9, 8)).astype(np.float64)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[1, 2] = -np.inf
    for k, s, p in [(2, None, 0), (3, 1, 1), (3, 2, 1), ((2, 4), (1, 3), (1, 2))]:
        y, idx = ref.max_pool2d(x, k, s, p)
        yt, it = F.max_pool2d(torch.tensor(x), k, s, p, return_indices=True)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_array_equal(idx, it.numpy())
