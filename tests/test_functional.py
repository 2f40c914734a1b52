"""The functional API: cycnn.Input, layers called on symbolic tensors, cycnn.Model(inputs, outputs)
with branches, merges, shared layers, several inputs/outputs; Sequential as a builder of the same
Model. Gradients are checked against float64 central finite differences."""
import numpy as np
import pytest

import cycnn
from cycnn import layers, utils
from cycnn.models import Input, Model, Sequential, load_model

TOL64 = 1e-6   # relative error of float64 analytic vs central-difference gradients


def _data(n, shape, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, classes, n)


def inception_net(channels=2, size=6, classes=3):
    """The issue's example: conv, two parallel branches concatenated, residual Add, head."""
    x = Input((channels, size, size))
    y = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    a = layers.Conv2D(2, 1)(y)
    b = layers.Conv2D(2, 3, padding="same")(y)
    z = layers.Concatenate(axis=1)([a, b])
    z = layers.Add()([z, y])
    out = layers.Dense(classes)(layers.GlobalAvgPool2D()(z))
    return Model(inputs=x, outputs=out, name="net")


def _check_gradients(model, x, y, loss="cross_entropy"):
    errors = utils.gradient_check(model, x, y, loss=loss)
    assert set(errors) == {f"{layer.name}/{key}" for layer in model.layers
                           for key in layer.params}
    bad = {k: e for k, e in errors.items() if not e < TOL64}
    assert not bad, f"relative errors above {TOL64}: {bad}"


# ----------------------------------------------------------------------------- symbolic tensors
def test_layer_calls_on_symbolic_tensors_give_shapes_without_data():
    x = Input((3, 32, 32))
    assert x.shape == (None, 3, 32, 32) and x.sample_shape == (3, 32, 32)
    conv = layers.Conv2D(16, 3, padding="same", activation="relu")
    y = conv(x)
    assert y.shape == (None, 16, 32, 32)
    assert conv.built and conv.params["kernel"].shape == (16, 3, 3, 3)
    z = layers.Concatenate(axis=1)([layers.Conv2D(8, 1)(y), layers.Conv2D(8, 3, padding="same")(y)])
    assert z.shape == (None, 16, 32, 32)
    assert layers.Concatenate(axis=-1)([y, y]).shape == (None, 16, 32, 64)
    assert layers.Flatten()(z).shape == (None, 16 * 32 * 32)


def test_bad_graphs_raise_clear_errors():
    x = Input((4,))
    other = Input((4,))
    y = layers.Dense(3)(x)
    with pytest.raises(ValueError, match="disconnected"):
        Model(inputs=x, outputs=layers.Add()([y, layers.Dense(3)(other)]))
    with pytest.raises(TypeError, match="symbolic"):
        Model(inputs=x, outputs=np.zeros(3))
    with pytest.raises(ValueError, match="cycnn.Input"):
        Model(inputs=y, outputs=y)
    with pytest.raises(TypeError, match="inputs= and outputs="):
        Model()
    with pytest.raises(TypeError, match="list of symbolic"):
        layers.Add()(y)
    with pytest.raises(TypeError, match="one input"):
        layers.Dense(2)([x, y])
    with pytest.raises(TypeError, match="list of symbolic tensors"):
        layers.Add()([x, np.zeros((1, 4))])
    with pytest.raises(ValueError, match="expects"):
        layers.Conv2D(2, 3)(x)   # Conv2D needs (C, H, W)
    with pytest.raises(ValueError, match="unique"):
        Model(inputs=x, outputs=layers.Add()([layers.Dense(3, name="d")(x),
                                               layers.Dense(3, name="d")(x)]))
    with pytest.raises(ValueError, match="float32 or float64"):
        Input((3,), dtype="int8")
    with pytest.raises(ValueError, match="positive"):
        Input((3, 0))


# ----------------------------------------------------------------------------- forward values
def test_branches_and_merges_compute_what_their_layers_compute():
    cycnn.seed(0)
    model = inception_net()
    x, _ = _data(5, (2, 6, 6))
    y = model.layers[0].forward(x)
    a = model.layers[1].forward(y)
    b = model.layers[2].forward(y)
    z = np.concatenate([a, b], axis=1) + y
    expected = model.layers[6].forward(z.mean(axis=(2, 3)))
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "Conv2D", "Conv2D", "Concatenate", "Add", "GlobalAvgPool2D", "Dense"]
    assert model.get_layer(model.layers[4].name) is model.layers[4]
    assert model.get_layer(index=-1) is model.layers[-1]
    with pytest.raises(ValueError, match="no layer named"):
        model.get_layer("nope")
    assert model.input_shape == (2, 6, 6) and model.output_shape == (3,)


# ----------------------------------------------------------------------------- gradients
def test_inception_block_gradients_match_finite_differences():
    cycnn.seed(1)
    model = inception_net()
    x, y = _data(3, (2, 6, 6), seed=1)
    _check_gradients(model, x, y)


def test_residual_add_gradients_match_finite_differences():
    cycnn.seed(2)
    x = Input((2, 5, 5))
    h = layers.Conv2D(2, 3, padding="same", activation="tanh")(x)
    h = layers.Conv2D(2, 3, padding="same")(h)
    h = layers.Add()([h, x])            # identity shortcut from the input
    h = layers.Tanh()(h)
    out = layers.Dense(3)(layers.Flatten()(h))
    model = Model(x, out)
    xv, yv = _data(3, (2, 5, 5), seed=2)
    _check_gradients(model, xv, yv)
    # dL/dx through both the shortcut and the convolutions
    model.compile("sgd", "cross_entropy")
    x64 = xv.astype(np.float64)
    with utils._float64(model.layers):
        out = model.forward(x64, training=True)
        _, dy = model.loss.value_and_grad(out, yv)
        dx = model.backward(dy)
        eps = 1e-6
        for idx in [(0, 0, 0, 0), (1, 1, 2, 3), (2, 0, 4, 4)]:
            plus, minus = x64.copy(), x64.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric = (model.loss(model.forward(plus), yv) - model.loss(model.forward(minus), yv))
            assert abs(dx[idx] - numeric / (2 * eps)) < 1e-7 * max(1.0, abs(dx[idx]))


def test_shared_layer_used_twice_sums_its_gradients():
    cycnn.seed(3)
    x = Input((4,))
    shared = layers.Dense(4, activation="tanh", name="shared")
    h1 = shared(x)
    h2 = shared(h1)                     # the same weights applied twice in a row
    h3 = shared(layers.Dense(4, name="side")(x))   # and a third time on another branch
    out = layers.Dense(3, name="head")(layers.Add()([h2, h3]))
    model = Model(inputs=x, outputs=out)
    assert [layer.name for layer in model.layers].count("shared") == 1
    assert len(model.params) == 6       # shared (2) + side (2) + head (2)
    xv, yv = _data(4, (4,), seed=3)
    _check_gradients(model, xv, yv)


def test_several_inputs_and_outputs():
    cycnn.seed(4)
    a, b = Input((3,), name="a"), Input((5,), name="b")
    h = layers.Concatenate(axis=1)([layers.Dense(4, activation="relu")(a), b])
    out1 = layers.Dense(2, name="first")(h)
    out2 = layers.Dense(3, name="second")(layers.Dense(4, activation="tanh")(h))
    model = Model(inputs=[a, b], outputs=[out1, out2], name="two")
    rng = np.random.default_rng(4)
    xa, xb = rng.standard_normal((40, 3)), rng.standard_normal((40, 5))
    y1, y2 = (xa[:, 0] > 0).astype(np.int64), rng.integers(0, 3, 40)
    pred = model.predict([xa, xb])
    assert isinstance(pred, list) and pred[0].shape == (40, 2) and pred[1].shape == (40, 3)
    model.compile("adam", ["cross_entropy", "cross_entropy"], ["accuracy"])
    history = model.fit([xa, xb], [y1, y2], epochs=3, batch_size=8, verbose=0)
    assert {"loss", "first_loss", "second_loss", "first_accuracy",
            "second_accuracy"} <= set(history.history)
    np.testing.assert_allclose(history.history["loss"][-1], history.history["first_loss"][-1]
                               + history.history["second_loss"][-1], rtol=1e-6)
    result = model.evaluate([xa, xb], [y1, y2])
    assert result["loss"] == pytest.approx(result["first_loss"] + result["second_loss"])
    with pytest.raises(ValueError, match="list of 2 arrays"):
        model.predict(xa)
    with pytest.raises(ValueError, match=r"x\[1\] must have shape"):
        model.predict([xa, xa])


def test_an_output_unused_by_the_loss_path_gets_zero_gradient_for_its_layers():
    x = Input((3,))
    used = layers.Dense(2, name="used")(x)
    model = Model(x, [used, layers.Dense(2, name="other")(x)])
    out = model.forward(np.ones((2, 3), np.float32), training=True)
    model.backward([np.ones_like(out[0]), None])
    assert np.all(model.get_layer("other").grads["kernel"] == 0)
    assert np.any(model.get_layer("used").grads["kernel"] != 0)
    with pytest.raises(RuntimeError, match="forward before backward"):
        model.backward([np.ones_like(out[0]), None])


# ----------------------------------------------------------------------------- training
def test_functional_model_trains_and_matches_the_same_sequential():
    """A chain written with the functional API and as Sequential: same weights, same data and
    seed -> the same training run (one engine)."""
    def layers_list():
        return [layers.Conv2D(3, 3, padding="same", activation="relu"), layers.MaxPool2D(2),
                layers.Flatten(), layers.Dense(3)]
    cycnn.seed(5)
    seq = Sequential(layers_list(), input_shape=(1, 6, 6))
    cycnn.seed(5)
    chain = layers_list()
    x = inp = Input((1, 6, 6))
    for layer in chain:
        x = layer(x)
    fun = Model(inp, x)
    for p, q in zip(seq.params, fun.params):
        np.testing.assert_array_equal(p, q)
    xv, yv = _data(48, (1, 6, 6), seed=5)
    results = []
    for model in (seq, fun):
        cycnn.seed(9)
        model.compile(cycnn.optim.Adam(1e-2), "cross_entropy", ["accuracy"])
        history = model.fit(xv, yv, epochs=4, batch_size=16, verbose=0)
        results.append((history.history["loss"], model.predict(xv)))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[0][0][-1] < results[0][0][0]


def test_sequential_is_a_model_built_on_the_same_graph():
    seq = Sequential([layers.Dense(3)], input_shape=(4,))
    assert isinstance(seq, Model)
    assert len(seq._graph.nodes) == 1 and seq._graph.nodes[0].layer is seq.layers[0]
    seq.add(layers.Dense(2))
    assert len(seq._graph.nodes) == 2 and seq.output_shape == (2,)
    with pytest.raises(TypeError, match="functional API"):
        seq.add(layers.Add())


def test_softmax_output_trains_on_logits_in_a_graph():
    cycnn.seed(6)
    x = Input((4,))
    logits = layers.Dense(3)(layers.Dense(8, activation="relu")(x))
    model = Model(x, layers.Softmax()(logits))
    model.compile("adam", "cross_entropy", ["accuracy"])
    assert model._skip() == (True,)
    xv, yv = _data(60, (4,), seed=6)
    model.fit(xv, yv, epochs=2, batch_size=20, verbose=0)
    p = model.predict(xv)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)    # probabilities from predict


# ----------------------------------------------------------------------------- saving
def test_graph_save_load_round_trip_is_bit_identical(tmp_path):
    cycnn.seed(7)
    x = Input((2, 6, 6))
    shared = layers.Conv2D(2, 3, padding="same", name="shared_conv")
    h = layers.BatchNorm2D()(shared(x))
    h = layers.Add()([shared(h), h])
    h = layers.Concatenate(axis=1)([h, layers.MaxPool2D(1)(x)])
    out = layers.Dense(3)(layers.GlobalAvgPool2D()(h))
    model = Model(x, [out, layers.Dense(1)(layers.Flatten()(h))], name="saved")
    model.compile("adam", ["cross_entropy", "mse"], ["accuracy"])
    xv, yv = _data(16, (2, 6, 6), seed=7)
    y2 = np.random.default_rng(1).standard_normal((16, 1)).astype(np.float32)
    model.fit(xv, [yv, y2], epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "graph.cyc"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is Model and loaded.name == "saved"
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for p, q in zip(model.predict(xv), loaded.predict(xv)):
        np.testing.assert_array_equal(p, q)
    assert loaded.optimizer.state_dict().keys() == model.optimizer.state_dict().keys()
    # training continues identically from both
    cycnn.seed(3)
    h1 = model.fit(xv, [yv, y2], epochs=1, batch_size=8, verbose=0)
    cycnn.seed(3)
    h2 = loaded.fit(xv, [yv, y2], epochs=1, batch_size=8, verbose=0)
    assert h1.history["loss"] == h2.history["loss"]
    # the shared layer is still one object at two nodes
    shared_nodes = [n for n in loaded._graph.nodes if n.layer.name == "shared_conv"]
    assert len(shared_nodes) == 2 and shared_nodes[0].layer is shared_nodes[1].layer


def test_sequential_round_trip_is_bit_identical(tmp_path):
    cycnn.seed(8)
    model = Sequential([layers.Conv2D(2, 3, activation="relu"), layers.Flatten(),
                        layers.Dense(3)], input_shape=(1, 5, 5))
    xv, _ = _data(4, (1, 5, 5))
    model.save(tmp_path / "s.cyc")
    loaded = load_model(tmp_path / "s.cyc")
    assert type(loaded) is Sequential
    np.testing.assert_array_equal(loaded.predict(xv), model.predict(xv))


def test_training_skips_the_input_gradient_of_layers_reading_only_inputs():
    x = Input((1, 5, 5))
    first = layers.Conv2D(2, 3, padding="same", name="first")
    h = first(x)
    also = layers.Conv2D(2, 1, name="also_input")(x)       # reads the input too
    later = layers.Conv2D(2, 3, padding="same", name="later")
    out = layers.Dense(2)(layers.Flatten()(later(layers.Add()([h, also]))))
    model = Model(x, out)
    model.compile("sgd", "cross_entropy")
    seen = {}
    for layer in (first, model.get_layer("also_input"), later):
        def spy(dy, layer=layer, backward=layer.backward):
            seen[layer.name] = layer.needs_input_grad
            return backward(dy)
        layer.backward = spy
    xv, yv = _data(4, (1, 5, 5), classes=2)
    model.train_step(xv, yv)
    assert seen == {"first": False, "also_input": False, "later": True}
    assert first.needs_input_grad   # restored after the step
    out = model.forward(xv, training=True)
    dx = model.backward(np.ones_like(out))  # the public backward still returns dL/dx
    assert dx.shape == xv.shape and seen["first"] is True


# ----------------------------------------------------------------------------- examples
@pytest.mark.parametrize("name, n_adds, n_concats", [("resnet", 3, 0), ("inception", 0, 2)])
def test_graph_examples_build_and_train_a_few_batches(name, n_adds, n_concats, mnist_dir,
                                                      tmp_path, capsys):
    import importlib
    module = importlib.import_module(f"cycnn.examples.{name}")
    model = module.build_model()
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Add") == n_adds and kinds.count("Concatenate") == n_concats
    assert model.output_shape == (10,)
    assert module.main(["--data", str(mnist_dir), "--limit", "96", "--test-limit", "64",
                        "--batch-size", "32", "--epochs", "1", "--quiet",
                        "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "96 training images, 64 test images" in out
    assert "final test accuracy" in out and "images/s" in out
    saved = load_model(tmp_path / f"mnist_{name}.cyc")
    assert type(saved) is Model and len(saved.layers) == len(model.layers)
