"""The layers of issue 9: grouped Conv2D, DepthwiseConv2D, Conv2DTranspose, UpSampling2D,
ZeroPadding2D, GlobalMaxPool2D and Activation: float64 finite-difference gradients, agreement
with cycnn.reference and PyTorch, shapes, configs (JSON round trip, registry), argument
validation, and a functional model that uses them all. (Merge layers: test_layer_calls.py.)"""
import json

import numpy as np
import pytest

import cycnn
from cycnn import layers as L
from cycnn import reference
from cycnn.utils import gradient_check

TOL = 1e-6


def _randn(*shape, s=0):
    return np.random.default_rng(s).standard_normal(shape)


GRAD_CASES = [
    (lambda: L.Conv2D(6, 3, groups=2, padding=1), (2, 4, 5, 5)),
    (lambda: L.Conv2D(4, (3, 2), groups=4, stride=2, activation="tanh", use_bias=False), (2, 4, 7, 6)),
    (lambda: L.DepthwiseConv2D(3), (2, 3, 6, 5)),
    (lambda: L.DepthwiseConv2D((3, 2), depth_multiplier=2, stride=2, padding="same",
                               dilation=(1, 2), activation="relu"), (2, 3, 7, 6)),
    (lambda: L.Conv2DTranspose(3, 3), (2, 4, 4, 3)),
    (lambda: L.Conv2DTranspose(3, 3, stride=2, padding=1, output_padding=1), (2, 4, 4, 3)),
    (lambda: L.Conv2DTranspose(2, (2, 3), stride=(2, 1), padding="same", activation="sigmoid",
                               use_bias=False), (1, 3, 3, 4)),
    (lambda: L.Conv2DTranspose(2, 3, dilation=2, padding=(1, 0), output_padding=1), (2, 2, 3, 3)),
    (lambda: L.UpSampling2D(2), (2, 3, 3, 4)),
    (lambda: L.UpSampling2D((2, 3), interpolation="bilinear"), (2, 2, 3, 4)),
    (lambda: L.ZeroPadding2D(((1, 2), (0, 1))), (2, 3, 3, 4)),
    (lambda: L.ZeroPadding2D(2), (1, 2, 2, 2)),
    (lambda: L.GlobalMaxPool2D(), (2, 3, 4, 5)),
    (lambda: L.Activation("softmax"), (3, 5)),
    (lambda: L.Activation("relu"), (3, 2, 4)),
    (lambda: L.Activation("leaky_relu"), (3, 4)),
    (lambda: L.Activation("linear"), (3, 4)),
]


@pytest.mark.parametrize("make, shape", GRAD_CASES, ids=[str(i) for i in range(len(GRAD_CASES))])
def test_gradients_match_finite_differences(make, shape):
    layer = make()
    errors = gradient_check(layer, _randn(*shape, s=1))
    assert set(errors) == {"x"} | set(layer.params)
    assert max(errors.values()) < TOL, errors


def test_grouped_and_depthwise_match_reference():
    x = _randn(2, 6, 9, 8).astype(np.float32)
    conv = L.Conv2D(9, 3, groups=3, stride=2, padding="same")
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, padding=1)
    for layer, groups in ((conv, 3), (dw, 6)):
        y = layer.forward(x)
        w, b = layer.params["kernel"], layer.params["bias"]
        b[:] = _randn(*b.shape, s=2)
        y = layer.forward(x)
        geo = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=groups)
        assert w.shape == ((9, 2, 3, 3) if layer is conv else (12, 1, 3, 3))
        np.testing.assert_allclose(y, reference.conv2d(x, w, b, **geo), rtol=1e-5, atol=1e-5)
        dy = _randn(*y.shape, s=3).astype(np.float32)
        dx = layer.backward(dy)
        rdx, rdw, rdb = reference.conv2d_backward(dy, x, w, **geo)
        np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["kernel"], rdw, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.grads["bias"], rdb, rtol=1e-4, atol=1e-4)


def test_conv_transpose_matches_reference():
    layer = L.Conv2DTranspose(5, 4, stride=2, padding=1)
    x = _randn(2, 3, 5, 4).astype(np.float32)
    y = layer.forward(x)
    assert y.shape == (2, 5, 10, 8) == (2,) + layer.output_shape  # (5-1)*2 - 2 + 3 + 1
    w, b = layer.params["kernel"], layer.params["bias"]
    assert w.shape == (3, 5, 4, 4)
    np.testing.assert_allclose(y, reference.conv_transpose2d(x, w, b, stride=2, padding=1),
                               rtol=1e-5, atol=1e-5)
    dy = _randn(*y.shape, s=4).astype(np.float32)
    dx = layer.backward(dy)
    rdx, rdw, rdb = reference.conv_transpose2d_backward(dy, x, w, stride=2, padding=1)
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.grads["kernel"], rdw, rtol=1e-4, atol=1e-4)


def test_new_layers_match_torch():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    x = _randn(2, 4, 6, 5).astype(np.float32)
    pairs = [
        (L.Conv2D(6, 3, groups=2, padding=1), nn.Conv2d(4, 6, 3, padding=1, groups=2)),
        (L.DepthwiseConv2D(3, depth_multiplier=2, stride=2),
         nn.Conv2d(4, 8, 3, stride=2, groups=4)),
        (L.Conv2DTranspose(3, 3, stride=2, padding=1, output_padding=1),
         nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1)),
    ]
    for ours, theirs in pairs:
        ours.build(x.shape[1:])
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.params["kernel"]))
            theirs.bias.copy_(torch.from_numpy(_randn(*theirs.bias.shape, s=5).astype(np.float32)))
        ours.params["bias"][:] = theirs.bias.detach().numpy()
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt)
        dy = _randn(*yt.shape, s=6).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(ours.forward(x), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ours.backward(dy), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.grads["kernel"], theirs.weight.grad.numpy(),
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.grads["bias"], theirs.bias.grad.numpy(), rtol=1e-4,
                                   atol=1e-4)
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(L.UpSampling2D(2, "bilinear").forward(x),
                               up(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(L.GlobalMaxPool2D().forward(x),
                                  nn.AdaptiveMaxPool2d(1)(torch.from_numpy(x)).numpy()[:, :, 0, 0])


SHAPE_CASES = [
    (lambda: L.Conv2D(8, 3, groups=4), (4, 7, 7), (8, 5, 5)),
    (lambda: L.DepthwiseConv2D(3, padding="same", stride=2), (5, 7, 8), (5, 4, 4)),
    (lambda: L.DepthwiseConv2D(1, depth_multiplier=3), (2, 4, 4), (6, 4, 4)),
    (lambda: L.Conv2DTranspose(4, 2, stride=2), (3, 7, 5), (4, 14, 10)),
    (lambda: L.Conv2DTranspose(4, 3, stride=2, padding="same"), (3, 7, 5), (4, 14, 10)),
    (lambda: L.Conv2DTranspose(4, 3, stride=2, padding=1, output_padding=1), (3, 7, 5), (4, 14, 10)),
    (lambda: L.Conv2DTranspose(4, 3), (3, 7, 5), (4, 9, 7)),
    (lambda: L.UpSampling2D((2, 3)), (3, 4, 5), (3, 8, 15)),
    (lambda: L.ZeroPadding2D((1, 2)), (3, 4, 5), (3, 6, 9)),
    (lambda: L.GlobalMaxPool2D(), (5, 4, 4), (5,)),
    (lambda: L.Activation("tanh"), (6,), (6,)),
]


@pytest.mark.parametrize("make, in_shape, out_shape", SHAPE_CASES)
def test_output_shapes(make, in_shape, out_shape):
    layer = make()
    assert layer.compute_output_shape(in_shape) == out_shape
    y = layer.forward(np.zeros((2,) + in_shape, np.float32))
    assert y.shape == (2,) + out_shape and y.dtype == np.float32
    assert layer.input_shape == in_shape and layer.output_shape == out_shape


@pytest.mark.parametrize("make, in_shape, n", [
    (lambda: L.Conv2D(8, 3, groups=2), (4, 9, 9), 8 * 2 * 9 + 8),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False), (5, 9, 9), 10 * 9),
    (lambda: L.Conv2DTranspose(6, (3, 2)), (4, 5, 5), 4 * 6 * 6 + 6),
    (lambda: L.UpSampling2D(), (3, 4, 4), 0),
])
def test_count_params(make, in_shape, n):
    layer = make()
    layer.build(in_shape)
    assert layer.count_params() == n


CONFIG_CASES = [
    lambda: L.Conv2D(6, 3, groups=2, padding="same", activation="relu"),
    lambda: L.DepthwiseConv2D((3, 5), depth_multiplier=2, stride=2, padding=1, dilation=(2, 1),
                              use_bias=False, activation="relu", kernel_initializer="he_normal"),
    lambda: L.Conv2DTranspose(4, 3, stride=2, padding=1, output_padding=(1, 0), dilation=1,
                              activation=L.LeakyReLU(0.2)),
    lambda: L.Conv2DTranspose(4, 2, stride=2, padding="same", dtype="float64"),
    lambda: L.UpSampling2D((2, 3), interpolation="bilinear"),
    lambda: L.ZeroPadding2D(((1, 2), (3, 4))),
    lambda: L.GlobalMaxPool2D(name="gmp"),
    lambda: L.Activation("softmax"), lambda: L.Activation("linear"),
]


@pytest.mark.parametrize("make", CONFIG_CASES)
def test_config_round_trip_through_json(make):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))
    cls = L.get(type(layer).__name__)
    assert cls is type(layer)
    clone = cls.from_config(config)
    assert clone.get_config() == layer.get_config()
    x = _randn(2, 4, 5, 6).astype(layer.dtype)
    y = layer.forward(x)
    clone.build(layer.input_shape)
    for k in layer.params:
        clone.params[k][...] = layer.params[k]
    np.testing.assert_array_equal(clone.forward(x), y)


def test_default_names_and_registry():
    L.reset_name_counters()
    assert [L.DepthwiseConv2D(3).name, L.Conv2DTranspose(2, 2).name, L.UpSampling2D().name,
            L.ZeroPadding2D().name, L.GlobalMaxPool2D().name, L.Activation("relu").name] == \
        ["depthwise_conv2d_1", "conv2d_transpose_1", "up_sampling2d_1", "zero_padding2d_1",
         "global_max_pool2d_1", "activation_1"]
    assert L.Conv2D(2, 1).get_config().get("groups") is None  # default omitted: v1 files load


@pytest.mark.parametrize("make, exc, text", [
    (lambda: L.Conv2D(6, 3, groups=4), ValueError, "groups must divide filters"),
    (lambda: L.Conv2D(6, 3, groups=0), ValueError, "groups must be a positive int, got 0"),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=0), ValueError, "depth_multiplier"),
    (lambda: L.DepthwiseConv2D(0), ValueError, "kernel_size"),
    (lambda: L.DepthwiseConv2D(3, padding="full"), ValueError, "'full'"),
    (lambda: L.Conv2DTranspose(0, 3), ValueError, "filters must be a positive int, got 0"),
    (lambda: L.Conv2DTranspose(2, 3, output_padding=1), ValueError, "output_padding"),
    (lambda: L.Conv2DTranspose(2, 3, stride=2, output_padding=-1), ValueError, "output_padding"),
    (lambda: L.Conv2DTranspose(2, 3, stride=2, output_padding="same"), TypeError,
     "output_padding"),
    (lambda: L.Conv2DTranspose(2, 3, stride=2, padding="same", output_padding=1), ValueError,
     "output_padding"),
    (lambda: L.Conv2DTranspose(2, 3, use_bias=1), TypeError, "use_bias"),
    (lambda: L.UpSampling2D(0), ValueError, "size"),
    (lambda: L.UpSampling2D(2, interpolation="bicubic"), ValueError, "'bicubic'"),
    (lambda: L.ZeroPadding2D(-1), ValueError, "padding"),
    (lambda: L.ZeroPadding2D("same"), TypeError, "padding"),
    (lambda: L.Activation("gelu"), ValueError, "'gelu'"),
    (lambda: L.Activation(None), TypeError, "activation"),
])
def test_constructor_validation(make, exc, text):
    with pytest.raises(exc) as info:
        make()
    assert text in str(info.value)


def test_build_time_errors():
    with pytest.raises(ValueError, match="groups=2, which must divide the 3 input channels"):
        L.Conv2D(4, 3, groups=2).build((3, 8, 8))
    dw = L.DepthwiseConv2D(3)
    dw.build((4, 8, 8))
    with pytest.raises(ValueError, match="built for 4 input channels"):
        dw.forward(np.zeros((1, 5, 8, 8)))
    with pytest.raises(ValueError, match="leaves no output"):
        L.Conv2DTranspose(2, 3, padding=3).build((1, 1, 1))
    with pytest.raises(ValueError, match=r"expects \(N, C, H, W\) input, got an array of shape"):
        L.UpSampling2D().forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"per-sample input shape \(C, H, W\), got \(3, 4\)"):
        L.ZeroPadding2D().build((3, 4))
    with pytest.raises(RuntimeError, match="before backward"):
        L.ZeroPadding2D().backward(np.zeros((1, 1, 3, 3)))


def test_first_layer_skips_its_input_gradient():
    layer = L.Conv2D(4, 3, groups=2)
    x = _randn(2, 4, 6, 6)
    y = layer.forward(x)
    layer.needs_input_grad = False
    assert layer.backward(np.ones_like(y)) is None and layer.grads["kernel"].shape == (4, 2, 3, 3)


def test_first_conv_transpose_skips_its_input_gradient():
    layer = L.Conv2DTranspose(3, 3, stride=2, padding=1)
    x = _randn(2, 4, 5, 5).astype(np.float32)
    dy = _randn(*layer.forward(x).shape).astype(np.float32)
    assert layer.backward(dy) is not None
    full = layer.grads["kernel"].copy()
    layer.needs_input_grad = False
    assert layer.backward(dy) is None
    np.testing.assert_array_equal(layer.grads["kernel"], full)


def test_a_unet_like_functional_model_trains_with_the_new_layers():
    """Every new layer in one graph: gradient-checked end to end, then a few SGD steps lower
    the loss."""
    cycnn.seed(0)
    inp = cycnn.Input((2, 8, 8))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(a)
    c = L.Conv2D(4, 1, groups=2)(b)
    d = L.MaxPool2D(2)(c)
    e = L.Conv2DTranspose(4, 2, stride=2)(d)
    f = L.Concatenate(axis=1)([a, e])
    g = L.ZeroPadding2D(1)(L.Activation("tanh")(f))
    h = L.UpSampling2D(2, interpolation="bilinear")(L.Conv2D(4, 3, stride=2)(g))
    i = L.Multiply()([L.Add()([h, h]), L.Activation("sigmoid")(h)])
    out = L.Dense(3)(L.GlobalMaxPool2D()(i))
    model = cycnn.Model(inputs=inp, outputs=out)
    model.compile("sgd", "cross_entropy")
    x, y = _randn(6, 2, 8, 8, s=8), np.array([0, 1, 2, 0, 1, 2])
    errors = gradient_check(model, x, y, n_checks=6)
    assert max(errors.values()) < 1e-5, errors
    before = model.evaluate(x.astype(np.float32), y)["loss"]
    model.fit(x.astype(np.float32), y, epochs=5, batch_size=6, verbose=0)
    assert model.evaluate(x.astype(np.float32), y)["loss"] < before


def test_model_with_the_new_layers_saves_and_loads(tmp_path):
    cycnn.seed(1)
    inp = cycnn.Input((4, 6, 6))
    a = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")(inp)
    b = L.Conv2D(4, 1, groups=4)(a)
    c = L.Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=1)(b)
    d = L.ZeroPadding2D(1)(L.Concatenate()([L.UpSampling2D(2, "bilinear")(inp), c]))
    out = L.Activation("softmax")(L.Dense(3)(L.GlobalMaxPool2D()(d)))
    model = cycnn.Model(inputs=inp, outputs=out)
    x = _randn(3, 4, 6, 6, s=9).astype(np.float32)
    want = model.predict(x)
    model.save(tmp_path / "m.cycnn")
    loaded = cycnn.load_model(tmp_path / "m.cycnn")
    assert [type(layer).__name__ for layer in loaded.layers] == \
        [type(layer).__name__ for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x), want)
