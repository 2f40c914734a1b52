"""The per-call cache (save_call_state / restore_call_state: one layer object called twice) and
the multi-input merge layers (Add, Multiply, Concatenate)."""
import json

import numpy as np
import pytest

from cycnn import layers as L
from cycnn._random import seed


def _randn(*shape, s=0):
    return np.random.default_rng(s).standard_normal(shape)


# ----------------------------------------------------------------------------- call state
# (make, per-sample input shape) for every single-input layer, plus merge layers (list shapes)
CALL_CASES = [
    (lambda: L.Conv2D(3, 3, padding="same", activation="tanh"), (2, 5, 5)),
    (lambda: L.Conv1D(2, 3, activation="leaky_relu"), (3, 8)),
    (lambda: L.Dense(4, activation="softmax"), (6,)),
    (lambda: L.MaxPool2D(2), (2, 6, 6)),
    (lambda: L.AvgPool2D(3, stride=2, padding=1), (2, 7, 6)),
    (lambda: L.GlobalAvgPool2D(), (3, 4, 5)),
    (lambda: L.Flatten(), (2, 3, 4)),
    (lambda: L.Dropout(0.5), (20,)),
    (lambda: L.BatchNorm2D(), (3, 4, 4)),
    (lambda: L.BatchNorm1D(), (5,)),
    (lambda: L.ReLU(), (7,)), (lambda: L.LeakyReLU(0.1), (7,)), (lambda: L.Sigmoid(), (7,)),
    (lambda: L.Tanh(), (7,)), (lambda: L.Softmax(), (7,)),
    (lambda: L.Add(), [(3, 4, 4), (3, 1, 4)]),
    (lambda: L.Multiply(), [(3, 4, 4), (3, 4, 4)]),
    (lambda: L.Concatenate(axis=1), [(2, 4, 4), (3, 4, 4)]),
]


def _inputs(shape, n, s):
    if isinstance(shape, list):
        return [_randn(n, *sh, s=s + i) for i, sh in enumerate(shape)]
    return _randn(n, *shape, s=s)


def _as_list(dx):
    return dx if isinstance(dx, list) else [dx]


@pytest.mark.parametrize("make, shape", CALL_CASES, ids=[str(i) for i in range(len(CALL_CASES))])
def test_one_layer_called_twice_with_swapped_states(make, shape):
    layer = make()
    layer.dtype = "float64"
    x1, x2 = _inputs(shape, 3, 1), _inputs(shape, 4, 11)

    # expected: each call's forward immediately followed by its backward
    seed(7)
    y1 = layer.forward(x1, training=True)
    dy1 = _randn(*y1.shape, s=21)
    dx1 = layer.backward(dy1)
    g1 = {k: v.copy() for k, v in layer.grads.items()}
    y2 = layer.forward(x2, training=True)
    dy2 = _randn(*y2.shape, s=22)
    dx2 = layer.backward(dy2)
    g2 = {k: v.copy() for k, v in layer.grads.items()}

    # interleaved: both forwards first, then the backwards in the opposite order
    seed(7)
    np.testing.assert_array_equal(layer.forward(x1, training=True), y1)
    s1 = layer.save_call_state()
    with pytest.raises(RuntimeError, match="call forward before backward"):
        layer.backward(dy1)  # the cache went with the state
    np.testing.assert_array_equal(layer.forward(x2, training=True), y2)
    s2 = layer.save_call_state()
    layer.restore_call_state(s2)
    got2 = layer.backward(dy2)
    assert {k: v.copy() for k, v in layer.grads.items()}.keys() == g2.keys()
    for k in g2:
        np.testing.assert_allclose(layer.grads[k], g2[k], rtol=1e-12, atol=1e-12)
    layer.restore_call_state(s1)
    got1 = layer.backward(dy1)
    for k in g1:
        np.testing.assert_allclose(layer.grads[k], g1[k], rtol=1e-12, atol=1e-12)
    for got, want in ((got1, dx1), (got2, dx2)):
        got, want = _as_list(got), _as_list(want)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_call_state_belongs_to_its_layer():
    a, b = L.ReLU(), L.ReLU()
    a.forward(np.ones((2, 3)))
    state = a.save_call_state()
    assert "relu" in repr(state)
    with pytest.raises(ValueError, match="saved by layer"):
        b.restore_call_state(state)
    with pytest.raises(TypeError, match="save_call_state"):
        a.restore_call_state({"y": np.ones((2, 3))})
    with pytest.raises(RuntimeError, match="before backward"):
        L.Dropout(0.5).backward(np.ones((2, 3)))


def test_saved_state_includes_the_fused_activation():
    conv = L.Conv2D(2, 1, activation="relu")
    x = _randn(1, 1, 3, 3)
    conv.forward(x)
    state = conv.save_call_state()
    with pytest.raises(RuntimeError):
        conv.activation.backward(np.ones((1, 2, 3, 3)))
    conv.restore_call_state(state)
    assert conv.backward(np.ones((1, 2, 3, 3))).shape == x.shape


# ----------------------------------------------------------------------------- merge layers
def _merge_gradient_check(layer, xs, eps=1e-6):
    """max relative error of backward vs float64 central differences of sum(forward(xs) * r)."""
    xs = [np.array(x, dtype=np.float64) for x in xs]
    layer.dtype = "float64"
    r = _randn(*layer.forward(xs).shape, s=99)
    dxs = layer.backward(r)
    worst = 0.0
    for x, dx in zip(xs, dxs):
        assert dx.shape == x.shape
        num = np.empty(x.size)
        flat = x.reshape(-1)
        for i in range(x.size):
            old = flat[i]
            flat[i] = old + eps
            plus = np.sum(layer.forward(xs) * r)
            flat[i] = old - eps
            minus = np.sum(layer.forward(xs) * r)
            flat[i] = old
            num[i] = (plus - minus) / (2 * eps)
        scale = max(np.abs(num).max(), np.abs(dx).max())
        worst = max(worst, np.abs(num - dx.reshape(-1)).max() / scale)
    return worst


MERGE_CASES = [
    (lambda: L.Add(), [(2, 3, 3), (2, 3, 3)]),
    (lambda: L.Add(), [(2, 3, 3), (2, 1, 3), (1, 3, 1)]),
    (lambda: L.Multiply(), [(2, 3, 3), (2, 3, 3)]),
    (lambda: L.Multiply(), [(2, 1, 1), (2, 3, 4), (2, 3, 4)]),
    (lambda: L.Concatenate(), [(2, 3, 3), (1, 3, 3), (3, 3, 3)]),
    (lambda: L.Concatenate(axis=-1), [(2, 3, 2), (2, 3, 1)]),
    (lambda: L.Concatenate(axis=2), [(2, 1, 3), (2, 4, 3)]),
    (lambda: L.Concatenate(axis=-1), [(4,), (3,)]),
]


@pytest.mark.parametrize("make, shapes", MERGE_CASES, ids=[str(i) for i in range(len(MERGE_CASES))])
def test_merge_gradients_match_finite_differences(make, shapes):
    xs = [_randn(2, *s, s=i) for i, s in enumerate(shapes)]
    assert _merge_gradient_check(make(), xs) < 1e-7


def test_merge_forward_values_and_shapes():
    a, b, c = _randn(2, 3, 4, 4, s=1), _randn(2, 3, 4, 4, s=2), _randn(2, 3, 1, 1, s=3)
    add = L.Add(dtype="float64")
    np.testing.assert_array_equal(add.forward([a, b, c]), a + b + c)
    assert add.input_shape == [(3, 4, 4)] * 2 + [(3, 1, 1)] and add.output_shape == (3, 4, 4)
    np.testing.assert_array_equal(L.Multiply(dtype="float64").forward([a, c]), a * c)
    cat = L.Concatenate(axis=1)
    y = cat.forward([a, c[:, :2] * np.ones((1, 1, 4, 4))])
    assert y.dtype == np.float32 and y.shape == (2, 5, 4, 4) and cat.output_shape == (5, 4, 4)
    np.testing.assert_allclose(y[:, :3], a.astype(np.float32))
    assert L.Concatenate(axis=-2).compute_output_shape([(3, 4, 5), (3, 2, 5)]) == (3, 6, 5)
    dxs = add.backward(np.ones((2, 3, 4, 4)))
    assert dxs[0] is not dxs[1]  # distinct arrays, safe to accumulate into
    np.testing.assert_array_equal(dxs[2], np.full((2, 3, 1, 1), 16.0))


def test_merge_layers_match_torch():
    torch = pytest.importorskip("torch")
    a, b = _randn(2, 3, 4, 4, s=1), _randn(2, 3, 1, 4, s=2)
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    dy = _randn(2, 3, 4, 4, s=5)
    for layer, op in ((L.Add(dtype="float64"), torch.add), (L.Multiply(dtype="float64"), torch.mul)):
        ta.grad = tb.grad = None
        ty = op(ta, tb)
        ty.backward(torch.tensor(dy))
        np.testing.assert_allclose(layer.forward([a, b]), ty.detach().numpy(), rtol=1e-12)
        da, db = layer.backward(dy)
        np.testing.assert_allclose(da, ta.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, exc, text", [
    (lambda: L.Add().forward(np.ones((2, 3))), TypeError, "list of arrays"),
    (lambda: L.Add().forward([np.ones((2, 3))]), ValueError, "at least 2 inputs, got 1"),
    (lambda: L.Add().forward([np.ones((2, 3)), np.ones((3, 3))]), ValueError, "one batch size"),
    (lambda: L.Add().forward([np.ones((2, 3)), np.ones((2, 4))]), ValueError, "broadcast"),
    (lambda: L.Multiply().forward([np.ones((2, 3)), np.ones((2, 3, 1))]), ValueError, "one rank"),
    (lambda: L.Add().forward([np.ones(3), np.ones(3)]), ValueError, "(N, ...)"),
    (lambda: L.Concatenate().forward([np.ones((2, 3, 4)), np.ones((2, 3, 5))]), ValueError,
     "every axis but axis 1"),
    (lambda: L.Concatenate(axis=3).forward([np.ones((2, 3)), np.ones((2, 3))]), ValueError,
     "axis 3 is out of range"),
    (lambda: L.Concatenate(axis=0), ValueError, "batch axis"),
    (lambda: L.Concatenate(axis=1.0), TypeError, "axis must be an int, got 1.0"),
    (lambda: L.Add().build((3, 4)), TypeError, "tuple of ints"),
    (lambda: L.Add().build("ab"), TypeError, "list of input shapes"),
    (lambda: L.Add().build([(3, 0), (3, 0)]), ValueError, "positive sizes"),
    (lambda: L.Add().backward(np.ones((2, 3))), RuntimeError, "before backward"),
])
def test_merge_bad_input(call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value)


@pytest.mark.parametrize("make", [lambda: L.Add(), lambda: L.Multiply(name="gate"),
                                  lambda: L.Concatenate(axis=-1, dtype="float64")])
def test_merge_config_round_trip(make):
    layer = make()
    assert layer.multi_input and not L.Dense.multi_input
    config = json.loads(json.dumps(layer.get_config()))
    clone = L.get(type(layer).__name__).from_config(config)
    assert clone.get_config() == layer.get_config() and type(clone) is type(layer)
