"""Property tests (hypothesis): every op in cycnn.ops agrees with cycnn.reference over random
shapes, dtypes, strides, paddings (ints, pairs, 'same', 'valid'), dilations, values (ties
included) and memory layouts (C, Fortran, strided, negative strides, read-only, broadcast).

When the reference rejects the arguments, the op must reject them too, with the same error type.
Bounded example counts and no deadline keep the file to a few seconds; no example database is
written (runs are derandomized, so a failure reproduces as it is).
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cycnn import ops  # noqa: E402
from cycnn import reference as ref  # noqa: E402

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True, database=None)
TOL = {"float32": 1e-5, "float64": 1e-12}
LAYOUTS = ["C", "F", "strided", "reversed", "readonly", "broadcast"]
COVERED = {"conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
           "avg_pool2d_backward", "matmul", "conv_transpose2d", "conv_transpose2d_backward",
           "upsample2d", "upsample2d_backward", "zero_pad2d", "zero_pad2d_backward",
           "global_max_pool2d", "global_max_pool2d_backward", "relu", "relu_backward"}


def test_every_op_has_a_property_test():
    missing = set(ops.__all__) - COVERED
    assert not missing, f"add property tests for {sorted(missing)} to tests/test_properties.py"


# ------------------------------------------------------------------------------ strategies

dtypes = st.sampled_from(["float32", "float64"])
small = st.integers(1, 3)
pairs = st.one_of(small, st.tuples(small, small))
paddings = st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                     st.sampled_from(["same", "valid"]))


@st.composite
def arrays(draw, shape, dtype):
    """An array of `shape` and `dtype` in one of LAYOUTS, values normal or small ints (ties)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "broadcast":            # constant along the first axis, a zero stride
        base = (1,) + tuple(shape[1:])
    else:
        base = tuple(shape)
    if draw(st.booleans()):
        data = rng.standard_normal(base)
    else:
        data = rng.integers(-2, 3, size=base).astype(float)
    data = data.astype(dtype)
    if layout == "broadcast":
        return np.broadcast_to(data, shape)
    if layout == "F":
        return np.asfortranarray(data)
    if layout == "strided":
        big = np.zeros(data.shape[:-1] + (2 * data.shape[-1],), dtype)
        big[..., ::2] = data
        return big[..., ::2]
    if layout == "reversed":
        return np.ascontiguousarray(data[..., ::-1])[..., ::-1]
    if layout == "readonly":
        data.flags.writeable = False
    return data


def close(got, want, dtype, what, scale=1):
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape)
    tol = TOL[dtype] * scale
    err = np.max(np.abs(got - want), initial=0)
    assert np.allclose(got, want, rtol=tol, atol=tol), f"{what}: max error {err} (tol {tol})"


def agree(op, ref_op, *args, **kwargs):
    """Reference result, or None after checking that the op raises what the reference raised."""
    try:
        want = ref_op(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)):
            op(*args, **kwargs)
        return None
    return want


# ------------------------------------------------------------------------------ convolution

@st.composite
def conv_cases(draw, transpose=False):
    """(dtype, x, w, b, geometry) with groups (1, several, or depthwise when one channel per
    group); w is (K, C/groups, R, S), or (C, K/groups, R, S) for the transposed convolution."""
    dtype = draw(dtypes)
    groups, cpg, kpg = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n, c, k = draw(st.integers(1, 3)), groups * cpg, groups * kpg
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = draw(arrays((n, c, h, w), dtype))
    wt = draw(arrays((c, kpg, r, s) if transpose else (k, cpg, r, s), dtype))
    b = draw(st.none() | arrays((k,), dtype))
    geo = dict(stride=draw(pairs), padding=draw(paddings), dilation=draw(pairs), groups=groups)
    if transpose:
        geo["output_padding"] = draw(st.integers(0, 1) | st.tuples(st.integers(0, 1),
                                                                   st.integers(0, 1)))
    return dtype, x, wt, b, geo


@PROPERTY
@given(conv_cases())
def test_conv2d(case):
    dtype, x, w, b, geo = case
    want = agree(ops.conv2d, ref.conv2d, x, w, b, **geo)
    if want is not None:
        close(ops.conv2d(x, w, b, **geo), want, dtype, f"conv2d {x.shape} {w.shape} {geo}",
              scale=w[0].size)


@PROPERTY
@given(conv_cases(transpose=True), st.integers(0, 2**32 - 1))
def test_conv_transpose2d_and_backward(case, seed):
    dtype, x, w, b, geo = case
    y = agree(ops.conv_transpose2d, ref.conv_transpose2d, x, w, b, **geo)
    if y is None:
        return
    what = f"conv_transpose2d {x.shape} {w.shape} {geo}"
    close(ops.conv_transpose2d(x, w, b, **geo), y, dtype, what, scale=w[0].size)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    got = ops.conv_transpose2d_backward(dy, x, w, **geo)
    want = ref.conv_transpose2d_backward(dy, x, w, **geo)
    for name, g, e in zip(("dx", "dw", "db"), got, want):
        close(g, e, dtype, f"{what} {name}", scale=max(dy[:, 0].size, w[0].size))


@PROPERTY
@given(conv_cases(), st.booleans(), st.integers(0, 2**32 - 1))
def test_conv2d_backward(case, compute_dx, seed):
    dtype, x, w, _, geo = case
    y = agree(ops.conv2d, ref.conv2d, x, w, **geo)
    if y is None:
        return
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    got = ops.conv2d_backward(dy, x, w, **geo, compute_dx=compute_dx)
    want = ref.conv2d_backward(dy, x, w, **geo)
    what = f"conv2d_backward {x.shape} {w.shape} {geo}"
    if compute_dx:
        close(got[0], want[0], dtype, what + " dx", scale=w.shape[0] * w[0, 0].size)
    else:
        assert got[0] is None
    close(got[1], want[1], dtype, what + " dw", scale=dy[:, 0].size)
    close(got[2], want[2], dtype, what + " db", scale=dy[:, 0].size)


# ------------------------------------------------------------------------------ pooling

@st.composite
def pool_cases(draw):
    dtype = draw(dtypes)
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)),
             draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    x = draw(arrays(shape, dtype))
    kernel = draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    geo = dict(kernel_size=kernel, stride=draw(st.none() | pairs),
               padding=draw(st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"]))))
    return dtype, x, geo


@PROPERTY
@given(pool_cases(), st.integers(0, 2**32 - 1))
def test_max_pool2d_and_backward(case, seed):
    dtype, x, geo = case
    want = agree(ops.max_pool2d, ref.max_pool2d, x, **geo)
    if want is None:
        return
    y, idx = ops.max_pool2d(x, **geo)
    np.testing.assert_array_equal(y, want[0])       # a max is exact, ties included
    np.testing.assert_array_equal(idx, want[1])
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    if seed % 2:
        dy = np.asfortranarray(dy)
    close(ops.max_pool2d_backward(dy, idx, x.shape), ref.max_pool2d_backward(dy, idx, x.shape),
          dtype, f"max_pool2d_backward {x.shape} {geo}", scale=4)


@PROPERTY
@given(pool_cases(), st.integers(0, 2**32 - 1))
def test_avg_pool2d_and_backward(case, seed):
    dtype, x, geo = case
    want = agree(ops.avg_pool2d, ref.avg_pool2d, x, **geo)
    if want is None:
        return
    y = ops.avg_pool2d(x, **geo)
    close(y, want, dtype, f"avg_pool2d {x.shape} {geo}", scale=4)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    dy = dy if seed % 2 else dy[..., ::-1].copy()[..., ::-1]
    close(ops.avg_pool2d_backward(dy, x.shape, **geo), ref.avg_pool2d_backward(dy, x.shape, **geo),
          dtype, f"avg_pool2d_backward {x.shape} {geo}", scale=4)


@PROPERTY
@given(dtypes, st.integers(0, 4), st.integers(0, 4), st.integers(0, 4), st.data())
def test_pool_backward_rejects_what_the_reference_rejects(dtype, h, w, kernel, data):
    """Shapes that do not belong together (random input_shape for a given dy)."""
    dy = data.draw(arrays((1, 2, 2, 2), dtype))
    idx = np.zeros(dy.shape, np.int64) + data.draw(st.integers(-1, 5))
    shape = (1, 2, h, w)
    want = agree(ops.max_pool2d_backward, ref.max_pool2d_backward, dy, idx, shape)
    if want is not None:
        close(ops.max_pool2d_backward(dy, idx, shape), want, dtype, "max_pool2d_backward", 4)
    if kernel:
        want = agree(ops.avg_pool2d_backward, ref.avg_pool2d_backward, dy, shape, kernel)
        if want is not None:
            close(ops.avg_pool2d_backward(dy, shape, kernel), want, dtype, "avg_pool2d_backward",
                  4)


# ------------------------------------------------------------------------------ matmul

@PROPERTY
@given(dtypes, dtypes, st.integers(0, 70), st.integers(0, 40), st.integers(0, 70), st.data())
def test_matmul(dtype_a, dtype_b, m, k, n, data):
    a = data.draw(arrays((m, k), dtype_a))
    if data.draw(st.booleans()):    # a transposed view
        a = data.draw(arrays((k, m), dtype_a)).T
    b = data.draw(arrays((k, n), dtype_b))
    want = agree(ops.matmul, ref.matmul, a, b)
    if want is not None:
        dtype = "float64" if "float64" in (dtype_a, dtype_b) else "float32"
        close(ops.matmul(a, b), want, dtype, f"matmul {a.shape} {b.shape}", scale=max(k, 1))


# ------------------------------------------------------------------------------ the other ops

@st.composite
def images(draw):
    dtype = draw(dtypes)
    shape = (draw(st.integers(0, 3)), draw(st.integers(1, 4)),
             draw(st.integers(0, 7)), draw(st.integers(0, 7)))
    return dtype, draw(arrays(shape, dtype))


@PROPERTY
@given(images(), pairs, st.sampled_from(["nearest", "bilinear"]), st.integers(0, 2**32 - 1))
def test_upsample2d_and_backward(case, size, interpolation, seed):
    dtype, x = case
    y = agree(ops.upsample2d, ref.upsample2d, x, size, interpolation)
    if y is None:
        return
    close(ops.upsample2d(x, size, interpolation), y, dtype, f"upsample2d {x.shape} {size}")
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    close(ops.upsample2d_backward(dy, size, interpolation),
          ref.upsample2d_backward(dy, size, interpolation), dtype,
          f"upsample2d_backward {x.shape} {size}", scale=9)


zero_paddings = st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                          st.tuples(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                    st.tuples(st.integers(0, 3), st.integers(0, 3))))


@PROPERTY
@given(images(), zero_paddings, st.integers(0, 2**32 - 1))
def test_zero_pad2d_and_backward(case, padding, seed):
    dtype, x = case
    y = agree(ops.zero_pad2d, ref.zero_pad2d, x, padding)
    if y is None:
        return
    np.testing.assert_array_equal(ops.zero_pad2d(x, padding), y)
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(ops.zero_pad2d_backward(dy, padding),
                                  ref.zero_pad2d_backward(dy, padding))


@PROPERTY
@given(images(), st.integers(0, 2**32 - 1))
def test_global_max_pool2d_and_backward(case, seed):
    dtype, x = case
    want = agree(ops.global_max_pool2d, ref.global_max_pool2d, x)
    if want is None:
        return
    y, idx = ops.global_max_pool2d(x)
    np.testing.assert_array_equal(y, want[0])
    np.testing.assert_array_equal(idx, want[1])
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(ops.global_max_pool2d_backward(dy, idx, x.shape),
                                  ref.global_max_pool2d_backward(dy, idx, x.shape))


@PROPERTY
@given(images(), st.integers(0, 2**32 - 1))
def test_relu_and_backward(case, seed):
    dtype, x = case
    y = ops.relu(x)
    np.testing.assert_array_equal(y, ref.relu(x))
    dy = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(ops.relu_backward(dy, y), ref.relu_backward(dy, y))
