"""The training hot path: conv2d_backward without dx, layers that skip their input gradient, the
cross-entropy on integer labels without a one-hot matrix."""
import numpy as np
import pytest

import cycnn
from cycnn import layers, losses, ops, reference
from cycnn._kernels import conv as conv_kernels


def _randn(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-4), (np.float64, 1e-11)])
@pytest.mark.parametrize("geometry", [
    dict(stride=1, padding=2),                 # the reference network's first layer
    dict(stride=2, padding=1, dilation=1),
    dict(stride=1, padding=0),                 # 1x1 kernel below: the direct (no im2col) path
])
def test_conv2d_backward_without_dx(threads, dtype, tol, geometry):
    r = 1 if geometry["padding"] == 0 else 5
    x, w = _randn((5, 3, 11, 9), 0, dtype), _randn((4, 3, r, r), 1, dtype)
    y = ops.conv2d(x, w, **geometry)
    dy = _randn(y.shape, 2, dtype)
    dx, dw, db = ops.conv2d_backward(dy, x, w, **geometry)
    none, dw2, db2 = ops.conv2d_backward(dy, x, w, compute_dx=False, **geometry)
    assert conv_kernels.last_parallel_region() == ("conv2d_backward", threads)
    assert none is None and dx is not None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)
    rnone, rdw, rdb = reference.conv2d_backward(dy, x, w, compute_dx=False, **geometry)
    assert rnone is None
    scale = np.abs(rdw).max()
    assert np.abs(dw2 - rdw).max() <= tol * scale, f"dw error {np.abs(dw2 - rdw).max()}"
    np.testing.assert_allclose(db2, rdb, rtol=tol, atol=tol * np.abs(rdb).max())


@pytest.mark.parametrize("make, shape", [
    (lambda: layers.Conv2D(4, 3, padding="same", activation="relu"), (3, 2, 7, 6)),
    (lambda: layers.Conv1D(4, 3, padding=1), (3, 2, 9)),
    (lambda: layers.Dense(5, activation="relu"), (3, 7)),
])
def test_layers_skip_the_input_gradient_when_not_needed(make, shape):
    cycnn.seed(0)
    full, skip = make(), make()
    x = _randn(shape, 3, np.float32)
    full.build(shape[1:])
    skip.build(shape[1:])
    for key in full.params:
        skip.params[key][...] = full.params[key]
    assert full.needs_input_grad is True
    skip.needs_input_grad = False
    y = full.forward(x, training=True)
    np.testing.assert_array_equal(skip.forward(x, training=True), y)
    dy = _randn(y.shape, 4, np.float32)
    dx = full.backward(dy)
    assert dx.shape == x.shape
    assert skip.backward(dy) is None
    for key in full.grads:
        np.testing.assert_array_equal(skip.grads[key], full.grads[key])


@pytest.mark.parametrize("labels_dtype", [np.int64, np.int32, np.uint8, np.float64])
def test_cross_entropy_labels_match_one_hot_and_reference_formula(labels_dtype):
    z = _randn((6, 4), 5) * 30                 # large logits: the log-sum-exp must hold
    labels = np.array([0, 3, 1, 1, 2, 3]).astype(labels_dtype)
    onehot = np.eye(4)[labels.astype(int)]
    ce = losses.CrossEntropy()
    value, grad = ce.value_and_grad(z, labels)
    v1, g1 = ce.value_and_grad(z, onehot)
    assert value == pytest.approx(v1, rel=1e-12)
    np.testing.assert_allclose(grad, g1, rtol=1e-12, atol=1e-15)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    with np.errstate(divide="ignore"):
        expected = -np.mean(np.log(p[np.arange(6), labels.astype(int)]))
    assert value == pytest.approx(expected, rel=1e-9) or not np.isfinite(expected)
    v32, g32 = ce.value_and_grad(z.astype(np.float32), labels)
    assert g32.dtype == np.float32 and isinstance(v32, float)
    np.testing.assert_allclose(g32, grad, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"in \[0, 4\), got 4 at index 2"):
        ce.value_and_grad(z, np.array([0, 1, 4, 0, 0, 0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [0, 7, 70_001])   # 70,001: above the kernels' parallel threshold
def test_relu_kernels_match_the_reference(threads, dtype, size):
    x = _randn((size,), 6, dtype)
    if size:
        x[::5] = 0.0
        x[1] = np.nan
    dy = _randn((size,), 7, dtype)
    y = ops.relu(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, reference.relu(x))     # NaN in the same places
    dx = ops.relu_backward(dy, y)
    np.testing.assert_array_equal(dx, reference.relu_backward(dy, y))
    if size > 16 * threads:
        from cycnn._kernels import eltwise
        assert eltwise.last_parallel_region() == ("relu_backward", threads)
    inplace = x.copy()
    assert ops.relu(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, y)
    grad = dy.copy()
    assert ops.relu_backward(grad, y, out=grad) is grad
    np.testing.assert_array_equal(grad, dx)


def test_relu_backward_is_zero_where_the_output_is_not_positive_even_for_inf():
    y = np.array([0.0, -0.0, 2.0, 0.0])
    dy = np.array([np.inf, np.nan, 3.0, -1.0])
    np.testing.assert_array_equal(ops.relu_backward(dy, y), [0.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(reference.relu_backward(dy, y), [0.0, 0.0, 3.0, 0.0])


def test_relu_ops_validate_out_and_shapes():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"out must be a writable C-contiguous float32 array "
                                         r"of shape \(2, 3\)"):
        ops.relu(x, out=np.empty((3, 2), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        ops.relu(x, out=np.empty((2, 3), np.float64))
    frozen = np.empty((2, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out must be"):
        ops.relu(x, out=frozen)
    with pytest.raises(ValueError, match="y"):
        ops.relu_backward(x, np.ones((3, 2), np.float32))
    strided = np.arange(12.0).reshape(3, 4)[:, ::2] - 5      # non-contiguous input works
    np.testing.assert_array_equal(ops.relu(strided), np.maximum(strided, 0))


def test_fused_relu_rectifies_the_layers_own_output_in_place():
    cycnn.seed(1)
    layer = layers.Dense(6, activation="relu")
    x = _randn((4, 5), 8, np.float32)
    y = layer.forward(x, training=True)
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    np.testing.assert_allclose(y, np.maximum(x @ kernel.T + bias, 0), rtol=1e-5, atol=1e-6)
    dy = _randn(y.shape, 9, np.float32)
    dy_before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, dy_before)                # the caller's dy is untouched
    masked = np.where(y > 0, dy, 0)
    np.testing.assert_allclose(dx, masked @ kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.grads["kernel"], masked.T @ x, rtol=1e-5, atol=1e-6)
