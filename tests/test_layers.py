"""Layers: gradients vs finite differences, agreement with cycnn.reference, shapes, configs,
Dropout / BatchNorm behaviour, activation stability and argument validation."""
import json
import warnings

import numpy as np
import pytest

import cycnn
from cycnn import initializers, layers as L, reference
from cycnn._random import seed
from cycnn.utils import gradient_check

TOL = 1e-6


def _randn(*shape, s=0):
    return np.random.default_rng(s).standard_normal(shape)


# ----------------------------------------------------------------------------- gradients
GRAD_CASES = [
    (lambda: L.Conv2D(4, 3), (2, 3, 6, 5)),
    (lambda: L.Conv2D(3, (3, 2), stride=2, padding="same", activation="tanh"), (2, 2, 7, 6)),
    (lambda: L.Conv2D(2, 3, padding=(2, 1), dilation=2, use_bias=False), (1, 3, 7, 7)),
    (lambda: L.Conv2D(3, 1, activation="softmax"), (2, 4, 3, 3)),
    (lambda: L.Conv1D(4, 3, activation="leaky_relu"), (2, 3, 9)),
    (lambda: L.Conv1D(2, 2, stride=2, padding="same", dilation=3), (2, 2, 11)),
    (lambda: L.Conv1D(2, 3, padding=2, activation="sigmoid", use_bias=False), (1, 3, 5)),
    (lambda: L.MaxPool2D(2), (2, 3, 6, 6)),
    (lambda: L.MaxPool2D(3, stride=2, padding=1), (2, 2, 7, 6)),
    (lambda: L.MaxPool2D((2, 3), padding="same"), (1, 2, 5, 7)),
    (lambda: L.AvgPool2D(2), (2, 3, 6, 6)),
    (lambda: L.AvgPool2D(3, stride=2, padding=1), (2, 2, 7, 6)),
    (lambda: L.GlobalAvgPool2D(), (2, 3, 4, 5)),
    (lambda: L.Dense(5), (4, 7)),
    (lambda: L.Dense(3, activation="relu", use_bias=False), (4, 6)),
    (lambda: L.Dense(4, activation="softmax"), (3, 5)),
    (lambda: L.Flatten(), (2, 3, 4, 5)),
    (lambda: L.Dropout(0.4), (3, 50)),
    (lambda: L.BatchNorm2D(), (3, 4, 3, 3)),
    (lambda: L.BatchNorm1D(), (6, 5)),
    (lambda: L.BatchNorm1D(), (3, 4, 5)),
    (lambda: L.ReLU(), (3, 4, 5)),
    (lambda: L.LeakyReLU(0.2), (3, 4, 5)),
    (lambda: L.Sigmoid(), (3, 4, 5)),
    (lambda: L.Tanh(), (3, 4, 5)),
    (lambda: L.Softmax(), (3, 6)),
    (lambda: L.Softmax(axis=1), (2, 4, 3)),
]


@pytest.mark.parametrize("make, shape", GRAD_CASES,
                         ids=[f"{i}" for i in range(len(GRAD_CASES))])
def test_gradients_match_finite_differences(make, shape):
    layer = make()
    x = _randn(*shape, s=1)
    errors = gradient_check(layer, x)
    assert set(errors) == {"x"} | set(layer.params)
    assert max(errors.values()) < TOL, errors


def test_batchnorm_gradients_in_inference_mode():
    layer = L.BatchNorm2D()
    layer.build((3, 4, 4))
    layer.buffers["running_mean"][:] = [0.5, -1.0, 2.0]
    layer.buffers["running_var"][:] = [0.3, 2.0, 1.5]
    layer.params["gamma"][:] = [1.5, -0.7, 0.2]
    errors = gradient_check(layer, _randn(2, 3, 4, 4), training=False)
    assert max(errors.values()) < TOL, errors


def test_gradient_check_detects_a_wrong_gradient():
    class BadDense(L.Dense):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["kernel"] = self.grads["kernel"] * 1.01
            return dx

    errors = gradient_check(BadDense(3), _randn(4, 5))
    assert errors["x"] < TOL
    assert errors["kernel"] > 1e-3


def test_gradient_check_restores_layer_state():
    layer = L.BatchNorm2D()
    layer.build((2, 3, 3))
    gamma, running_mean = layer.params["gamma"], layer.buffers["running_mean"].copy()
    rng_state = cycnn.get_rng().bit_generator.state
    gradient_check(layer, _randn(4, 2, 3, 3))
    assert layer.params["gamma"] is gamma and gamma.dtype == np.float32
    assert layer.dtype == np.float32
    np.testing.assert_array_equal(layer.buffers["running_mean"], running_mean)
    assert cycnn.get_rng().bit_generator.state == rng_state


def test_gradient_check_on_a_model():
    class Model:  # minimal stand-in: anything with .layers and .loss
        def __init__(self):
            self.layers = [L.Conv2D(3, 3, padding="same", activation="relu"), L.MaxPool2D(2),
                           L.BatchNorm2D(), L.Flatten(), L.Dropout(0.3), L.Dense(4)]
            self.loss = "cross_entropy"

    seed(3)
    model = Model()
    errors = gradient_check(model, _randn(3, 2, 6, 6), y=np.array([0, 3, 1]), n_checks=10)
    assert set(errors) == {f"{layer.name}/{k}" for layer in model.layers for k in layer.params}
    assert max(errors.values()) < TOL, errors


# ----------------------------------------------------------------------------- vs reference
def test_conv2d_matches_reference():
    layer = L.Conv2D(5, (3, 2), stride=(2, 1), padding="same", dilation=(1, 2))
    x = _randn(2, 3, 9, 8).astype(np.float32)
    y = layer.forward(x, training=True)
    w, b = layer.params["kernel"], layer.params["bias"]
    b[:] = _randn(5, s=2)
    y = layer.forward(x, training=True)
    expected = reference.conv2d(x, w, b, stride=(2, 1), padding="same", dilation=(1, 2))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    dy = _randn(*y.shape, s=3).astype(np.float32)
    dx = layer.backward(dy)
    rdx, rdw, rdb = reference.conv2d_backward(dy, x, w, stride=(2, 1), padding="same",
                                              dilation=(1, 2))
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["kernel"], rdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-4, atol=1e-4)


def test_conv1d_matches_reference_2d_conv():
    layer = L.Conv1D(4, 3, stride=2, padding=1, dilation=2)
    x = _randn(2, 3, 10).astype(np.float32)
    y = layer.forward(x)
    w4 = layer.params["kernel"][:, :, None, :]
    expected = reference.conv2d(x[:, :, None, :], w4, layer.params["bias"], stride=(1, 2),
                                padding=(0, 1), dilation=(1, 2))[:, :, 0, :]
    assert y.shape == (2, 4, 4) == (2,) + layer.output_shape  # (10 + 2 - 4 - 1) // 2 + 1
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(pool_size=2), dict(pool_size=3, stride=2, padding=1),
                                    dict(pool_size=(2, 3), stride=1, padding="same")])
def test_pools_match_reference(kwargs):
    x = _randn(2, 3, 7, 8).astype(np.float32)
    dy_seed = 4
    k, s, p = kwargs["pool_size"], kwargs.get("stride"), kwargs.get("padding", 0)
    mp = L.MaxPool2D(**kwargs)
    y = mp.forward(x)
    ry, idx = reference.max_pool2d(x, k, s, p)
    np.testing.assert_allclose(y, ry)
    dy = _randn(*y.shape, s=dy_seed).astype(np.float32)
    np.testing.assert_allclose(mp.backward(dy), reference.max_pool2d_backward(dy, idx, x.shape),
                               rtol=1e-6)
    ap = L.AvgPool2D(**kwargs)
    y = ap.forward(x)
    np.testing.assert_allclose(y, reference.avg_pool2d(x, k, s, p), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ap.backward(dy),
                               reference.avg_pool2d_backward(dy, x.shape, k, s, p),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- shapes
SHAPE_CASES = [
    (lambda: L.Conv2D(8, 3), (3, 7, 7), (8, 5, 5)),
    (lambda: L.Conv2D(8, 3, stride=2), (3, 7, 7), (8, 3, 3)),
    (lambda: L.Conv2D(8, 3, stride=2, padding="same"), (3, 7, 8), (8, 4, 4)),
    (lambda: L.Conv2D(4, (5, 3), stride=(3, 2), padding=(2, 1), dilation=(2, 1)), (1, 20, 9),
     (4, 6, 5)),  # (20+4-8-1)//3+1 = 6, (9+2-2-1)//2+1 = 5
    (lambda: L.Conv1D(6, 5, stride=3, padding="same"), (2, 10), (6, 4)),
    (lambda: L.Conv1D(6, 3, dilation=2, padding=1), (2, 10), (6, 8)),
    (lambda: L.MaxPool2D(2), (3, 7, 6), (3, 3, 3)),
    (lambda: L.MaxPool2D(3, stride=2, padding="same"), (3, 7, 6), (3, 4, 3)),
    (lambda: L.AvgPool2D(3, stride=2, padding=1), (3, 7, 6), (3, 4, 3)),
    (lambda: L.GlobalAvgPool2D(), (5, 4, 4), (5,)),
    (lambda: L.Flatten(), (3, 4, 5), (60,)),
    (lambda: L.Dense(7), (12,), (7,)),
    (lambda: L.BatchNorm2D(), (3, 4, 4), (3, 4, 4)),
    (lambda: L.Softmax(), (10,), (10,)),
]


@pytest.mark.parametrize("make, in_shape, out_shape", SHAPE_CASES)
def test_output_shapes(make, in_shape, out_shape):
    layer = make()
    assert layer.compute_output_shape(in_shape) == out_shape
    y = layer.forward(np.zeros((2,) + in_shape, np.float32))
    assert y.shape == (2,) + out_shape
    assert layer.built and layer.input_shape == in_shape and layer.output_shape == out_shape


@pytest.mark.parametrize("make, in_shape, n", [
    (lambda: L.Conv2D(8, 3), (3, 9, 9), 8 * 3 * 9 + 8),
    (lambda: L.Conv2D(8, (3, 5), use_bias=False), (2, 9, 9), 8 * 2 * 15),
    (lambda: L.Conv1D(4, 5), (3, 20), 4 * 3 * 5 + 4),
    (lambda: L.Dense(10), (20,), 210),
    (lambda: L.BatchNorm2D(), (6, 4, 4), 12),
    (lambda: L.MaxPool2D(2), (3, 4, 4), 0),
    (lambda: L.Dropout(0.5), (3,), 0),
])
def test_count_params_and_param_shapes(make, in_shape, n):
    layer = make()
    assert layer.count_params() == 0
    layer.build(in_shape)
    assert layer.count_params() == n
    for key, arr in layer.params.items():
        assert arr.dtype == np.float32 and arr.shape == layer.grads.get(key, arr).shape


def test_param_order_and_layouts():
    conv = L.Conv2D(8, (3, 5))
    conv.build((2, 9, 9))
    assert list(conv.params) == ["kernel", "bias"] and conv.params["kernel"].shape == (8, 2, 3, 5)
    dense = L.Dense(4)
    dense.build((6,))
    assert dense.params["kernel"].shape == (4, 6)
    bn = L.BatchNorm1D()
    bn.build((5,))
    assert list(bn.params) == ["gamma", "beta"]
    assert list(bn.buffers) == ["running_mean", "running_var"]


def test_build_is_idempotent_and_checks_channels():
    layer = L.Conv2D(4, 3)
    layer.build((3, 8, 8))
    kernel = layer.params["kernel"]
    layer.build((3, 8, 8))
    assert layer.params["kernel"] is kernel
    layer.forward(np.zeros((1, 3, 10, 10)))  # other spatial sizes are fine
    with pytest.raises(ValueError, match="3 input channels"):
        layer.forward(np.zeros((1, 4, 8, 8)))
    dense = L.Dense(2)
    with pytest.raises(ValueError, match="Flatten"):
        dense.forward(np.zeros((2, 3, 4)))


def test_forward_casts_to_layer_dtype_and_dtype_can_change():
    layer = L.Dense(3, activation="sigmoid")
    y = layer.forward(np.ones((2, 4), np.float64))
    assert y.dtype == np.float32 and layer.params["kernel"].dtype == np.float32
    layer.dtype = "float64"
    assert layer.params["kernel"].dtype == np.float64
    assert layer.forward(np.ones((2, 4))).dtype == np.float64
    assert L.Dense(2, dtype="float64").get_config()["dtype"] == "float64"
    with pytest.raises(ValueError, match="dtype"):
        L.ReLU(dtype="int32")


# ----------------------------------------------------------------------------- configs
CONFIG_CASES = [
    lambda: L.Conv2D(6, (3, 5), stride=2, padding="same", dilation=(1, 2), use_bias=False,
                     activation="relu", kernel_initializer="glorot_normal"),
    lambda: L.Conv2D(2, 3, padding=(1, 2), activation=L.LeakyReLU(0.3)),
    lambda: L.Conv1D(3, 5, stride=2, padding=2, dilation=2, activation="tanh"),
    lambda: L.MaxPool2D((2, 3), stride=1, padding="same"),
    lambda: L.AvgPool2D(3, padding=1),
    lambda: L.GlobalAvgPool2D(),
    lambda: L.Dense(10, activation="softmax", use_bias=False, kernel_initializer="he_normal"),
    lambda: L.Flatten(name="flat"),
    lambda: L.Dropout(0.25),
    lambda: L.BatchNorm2D(momentum=0.95, eps=1e-3),
    lambda: L.BatchNorm1D(),
    lambda: L.ReLU(), lambda: L.LeakyReLU(0.2), lambda: L.Sigmoid(), lambda: L.Tanh(),
    lambda: L.Softmax(axis=1),
]


@pytest.mark.parametrize("make", CONFIG_CASES)
def test_config_round_trip_through_json(make):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))
    cls = L.get(type(layer).__name__)
    assert cls is type(layer)
    clone = cls.from_config(config)
    assert clone.get_config() == layer.get_config()
    assert clone.name == layer.name


def test_rebuilt_layer_computes_the_same_with_the_same_weights():
    layer = L.Conv2D(3, 3, padding="same", activation=L.LeakyReLU(0.3))
    x = _randn(2, 2, 5, 5).astype(np.float32)
    y = layer.forward(x)
    clone = L.Conv2D.from_config(json.loads(json.dumps(layer.get_config())))
    clone.build(layer.input_shape)
    for k in layer.params:
        clone.params[k][...] = layer.params[k]
    np.testing.assert_array_equal(clone.forward(x), y)
    assert y.min() < 0  # the leaky activation really came back


def test_registry_and_default_names():
    assert L.get("BatchNorm2D") is L.BatchNorm2D and L.get(L.Dense) is L.Dense
    with pytest.raises(ValueError, match="Conv3D"):
        L.get("Conv3D")
    L.reset_name_counters()
    assert [L.Conv2D(1, 1).name, L.Conv2D(1, 1).name, L.MaxPool2D(2).name, L.ReLU().name] == \
        ["conv2d_1", "conv2d_2", "max_pool2d_1", "relu_1"]


# ----------------------------------------------------------------------------- dropout
def test_dropout_statistics_and_scaling():
    seed(0)
    layer = L.Dropout(0.3)
    x = np.ones((200, 500), np.float32)
    y = layer.forward(x, training=True)
    dropped = np.mean(y == 0)
    assert abs(dropped - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx == 0, y == 0)  # same mask going back
    np.testing.assert_array_equal(layer.forward(x, training=False), x)
    np.testing.assert_array_equal(layer.backward(x), x)
    np.testing.assert_array_equal(L.Dropout(0.0).forward(x, training=True), x)


def test_dropout_is_reproducible_with_seed():
    x = np.ones((8, 100), np.float32)
    seed(42)
    a = L.Dropout(0.5).forward(x, training=True)
    b = L.Dropout(0.5).forward(x, training=True)
    seed(42)
    c = L.Dropout(0.5).forward(x, training=True)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


# ----------------------------------------------------------------------------- batch norm
def test_batchnorm_training_and_inference():
    layer = L.BatchNorm2D(momentum=0.9, eps=1e-5)
    x = (_randn(8, 3, 5, 5) * np.array([1.0, 2.0, 0.5])[:, None, None]
         + np.array([1.0, -2.0, 3.0])[:, None, None]).astype(np.float32)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    m = 8 * 25
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.9 + 0.1 * var * m / (m - 1),
                               rtol=1e-5)
    layer.params["gamma"][:] = 2.0
    layer.params["beta"][:] = 0.5
    before = {k: v.copy() for k, v in layer.buffers.items()}
    y_inf = layer.forward(x, training=False)
    rm, rv = before["running_mean"], before["running_var"]
    expected = 2.0 * (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5) + 0.5
    np.testing.assert_allclose(y_inf, expected, rtol=1e-5, atol=1e-5)
    for k in before:  # inference leaves the running statistics alone
        np.testing.assert_array_equal(layer.buffers[k], before[k])
    with pytest.raises(ValueError, match="more than one value"):
        L.BatchNorm1D().forward(np.zeros((1, 4)), training=True)


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    x = _randn(6, 4, 3, 3, s=7).astype(np.float32)
    ours = L.BatchNorm2D(momentum=0.8, eps=1e-3)
    theirs = torch.nn.BatchNorm2d(4, momentum=0.2, eps=1e-3)
    for _ in range(3):
        y = ours.forward(x, training=True)
        ty = theirs.train()(torch.from_numpy(x))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.buffers["running_mean"], theirs.running_mean.numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.buffers["running_var"], theirs.running_var.numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(ours.forward(x), theirs.eval()(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- activations
def test_activations_are_stable_at_extreme_inputs():
    x = np.array([[-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4]], np.float32)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = L.Sigmoid().forward(x)
        t = L.Tanh().forward(x)
        sm = L.Softmax().forward(x)
        lr = L.LeakyReLU(0.1).forward(x)
        r = L.ReLU().forward(x)
        d64 = L.Sigmoid(dtype="float64").forward(x.astype(np.float64))
    assert np.all(np.isfinite(s)) and s[0, 0] == 0.0 and s[0, -1] == 1.0 and s[0, 3] == 0.5
    assert d64[0, 2] == pytest.approx(1 / (1 + np.exp(20.0)), rel=1e-12)
    assert np.all(np.abs(t) <= 1)
    assert np.isfinite(sm).all() and sm.sum() == pytest.approx(1.0) and sm[0, -1] == 1.0
    np.testing.assert_allclose(lr, np.where(x > 0, x, 0.1 * x))
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    big = np.array([[1000.0, 1000.0, 999.0]])
    np.testing.assert_allclose(L.Softmax(dtype="float64").forward(big),
                               [[np.e / (2 * np.e + 1)] * 2 + [1 / (2 * np.e + 1)]])


def test_activation_shortcut_applies_in_forward_and_backward():
    dense = L.Dense(3, activation="relu")
    x = _randn(5, 4).astype(np.float32)
    y = dense.forward(x)
    raw = x @ dense.params["kernel"].T + dense.params["bias"]
    np.testing.assert_allclose(y, np.maximum(raw, 0), rtol=1e-6)
    dense.backward(np.ones_like(y))
    np.testing.assert_allclose(dense.grads["bias"], (raw > 0).sum(axis=0), rtol=1e-6)
    conv = L.Conv2D(3, 1, activation="softmax")
    out = conv.forward(_randn(2, 2, 3, 3).astype(np.float32))
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)  # over channels


# ----------------------------------------------------------------------------- initializers
def test_initializers_fans_and_ranges():
    assert initializers.compute_fans((8, 3, 5, 5)) == (75, 200)
    assert initializers.compute_fans((10, 20)) == (20, 10)
    seed(1)
    w = initializers.he_uniform((64, 32, 3, 3))
    limit = np.sqrt(6 / (32 * 9))
    assert w.dtype == np.float32 and np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    assert initializers.he_normal((400, 300)).std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    g = initializers.glorot_uniform((200, 300))
    assert np.abs(g).max() <= np.sqrt(6 / 500)
    assert g.std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert initializers.glorot_normal((400, 300)).std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    assert not initializers.zeros((3, 2)).any()
    assert initializers.get("HE_UNIFORM") is initializers.he_uniform
    with pytest.raises(ValueError, match="lecun"):
        initializers.get("lecun")


def test_initialization_is_reproducible_with_seed():
    seed(5)
    a = L.Conv2D(4, 3)
    a.build((2, 5, 5))
    seed(5)
    b = L.Conv2D(4, 3)
    b.build((2, 5, 5))
    np.testing.assert_array_equal(a.params["kernel"], b.params["kernel"])


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("make, exc, text", [
    (lambda: L.Conv2D(-3, 3), ValueError, "filters must be a positive int, got -3"),
    (lambda: L.Conv2D(2.5, 3), ValueError, "got 2.5"),
    (lambda: L.Conv2D(4, 0), ValueError, "kernel_size"),
    (lambda: L.Conv2D(4, 3, stride=(1, 0)), ValueError, "stride"),
    (lambda: L.Conv2D(4, 3, padding="full"), ValueError, "'full'"),
    (lambda: L.Conv2D(4, 3, padding=-1), ValueError, "padding"),
    (lambda: L.Conv2D(4, 3, activation="gelu"), ValueError, "'gelu'"),
    (lambda: L.Conv2D(4, 3, use_bias="yes"), TypeError, "use_bias"),
    (lambda: L.Conv2D(4, 3, kernel_initializer="magic"), ValueError, "'magic'"),
    (lambda: L.Conv1D(4, (3, 3)), TypeError, "kernel_size"),
    (lambda: L.Conv1D(4, 3, dilation=0), ValueError, "dilation"),
    (lambda: L.Dense(0), ValueError, "units must be a positive int, got 0"),
    (lambda: L.MaxPool2D(0), ValueError, "pool_size"),
    (lambda: L.AvgPool2D(2, stride=-1), ValueError, "stride"),
    (lambda: L.Dropout(1.0), ValueError, "rate must be in [0.0, 1.0), got 1.0"),
    (lambda: L.Dropout(-0.1), ValueError, "-0.1"),
    (lambda: L.Dropout("0.5"), TypeError, "rate"),
    (lambda: L.BatchNorm2D(momentum=1.0), ValueError, "momentum"),
    (lambda: L.BatchNorm2D(eps=0), ValueError, "eps"),
    (lambda: L.LeakyReLU(-1), ValueError, "alpha"),
    (lambda: L.Softmax(axis=0), ValueError, "axis"),
    (lambda: L.ReLU(name=""), TypeError, "name"),
])
def test_constructor_validation(make, exc, text):
    with pytest.raises(exc) as info:
        make()
    assert text in str(info.value)


def test_geometry_errors_surface_at_build():
    with pytest.raises(ValueError, match="kernel"):
        L.Conv2D(2, 5).build((1, 3, 3))
    with pytest.raises(ValueError, match="half"):
        L.MaxPool2D(2, padding=2).build((1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        L.Conv2D(2, 1).forward(np.zeros((2, 3, 4)))


def test_empty_batch_flows_through_every_shape_layer():
    from cycnn import layers as L
    x = np.zeros((0, 3, 6, 6), np.float32)
    for layer in (L.Flatten(), L.BatchNorm2D(), L.Conv2D(2, 3), L.MaxPool2D(2)):
        y = layer.forward(x, training=False)
        assert y.shape[0] == 0 and y.shape[1:] == layer.output_shape, type(layer).__name__
    with pytest.raises(ValueError, match="more than one value per channel"):
        L.BatchNorm2D().forward(x, training=True)


def test_zero_sized_sample_shape_is_rejected():
    from cycnn import layers as L
    with pytest.raises(ValueError, match=r"positive sizes, got \(0, 5, 5\)"):
        L.Conv2D(4, 3).build((0, 5, 5))


def test_one_activation_instance_can_serve_two_layers():
    from cycnn import layers as L
    act = L.ReLU()
    a, b = L.Dense(4, activation=act), L.Dense(4, activation=act)
    assert a.activation is not b.activation and a.activation is not act
    model = cycnn.Sequential([a, b, L.Dense(3)], input_shape=(4,))
    model.compile("sgd", "cross_entropy")
    x = np.random.default_rng(0).standard_normal((5, 4))
    errors = cycnn.utils.gradient_check(model, x, np.array([0, 1, 2, 0, 1]))
    assert max(errors.values()) < 1e-6, errors
