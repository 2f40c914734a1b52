"""The Keras-compatible front end (cycnn.keras): tutorial scripts run with only their imports
changed, channels-last data gives the same numbers as the NCHW engine (and torch), and the
Keras conventions (evaluate's list, to_categorical, load_data shapes, losses) hold."""
import contextlib
import io
import pathlib
import re
import runpy

import numpy as np
import pytest

import cycnn
from cycnn import keras, reference
from cycnn.keras import layers

SCRIPTS = pathlib.Path(__file__).with_name("keras_scripts")


def _run_script(name, monkeypatch, mnist_dir):
    monkeypatch.setenv("CYCNN_DATA", str(mnist_dir.parent))
    cycnn.seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    return out.getvalue()


def test_keras_simple_mnist_convnet_runs_unchanged_and_learns(monkeypatch, mnist_dir):
    text = _run_script("mnist_convnet.py", monkeypatch, mnist_dir)
    assert "x_train shape: (3000, 28, 28, 1)" in text
    assert "10000 test samples" in text
    acc = float(re.search(r"Test accuracy: ([0-9.]+)", text).group(1))
    loss = float(re.search(r"Test loss: ([0-9.]+)", text).group(1))
    assert acc > 0.7, text          # chance is 0.1; one epoch on 3,000 images reaches ~0.8
    assert loss < 1.6, text          # chance: ln(10) = 2.3


def test_functional_model_with_a_residual_block_runs_unchanged(monkeypatch, mnist_dir):
    text = _run_script("residual_block.py", monkeypatch, mnist_dir)
    acc = float(re.search(r"Test accuracy: ([0-9.]+)", text).group(1))
    assert acc > 0.4, text          # chance is 0.1; two epochs reach ~0.55
    assert "history keys: ['accuracy'" in text and "'val_accuracy'" in text


def _small_model(padding="same"):
    cycnn.seed(1)
    inputs = keras.Input(shape=(6, 5, 3))
    x = layers.Conv2D(4, (3, 3), padding=padding, activation="relu")(inputs)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(7)(x)
    return keras.Model(inputs, outputs)


def test_channels_last_model_matches_the_nchw_reference_computation():
    model = _small_model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6, 5, 3)).astype(np.float32)      # NHWC
    got = model.predict(x, verbose=0)
    conv, pool, flat, dense = model.layers
    xc = x.transpose(0, 3, 1, 2)                                   # the same images, NCHW
    h = np.maximum(reference.conv2d(xc, conv.params["kernel"], conv.params["bias"],
                                    padding="same"), 0)
    h, _ = reference.max_pool2d(h, 2)
    h = h.transpose(0, 2, 3, 1).reshape(5, -1)                     # Keras flattens H, W, C
    want = h @ dense.params["kernel"].T + dense.params["bias"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert model.input_shape == (None, 6, 5, 3) and model.output_shape == (None, 7)


def test_channels_last_model_matches_torch():
    torch = pytest.importorskip("torch")
    model = _small_model()
    conv, _, _, dense = model.layers
    x = np.random.default_rng(1).standard_normal((3, 6, 5, 3)).astype(np.float32)
    with torch.no_grad():
        t = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2),
                                       torch.from_numpy(conv.params["kernel"]),
                                       torch.from_numpy(conv.params["bias"]), padding=1)
        t = torch.nn.functional.max_pool2d(torch.relu(t), 2)
        t = t.permute(0, 2, 3, 1).reshape(3, -1)
        t = torch.nn.functional.linear(t, torch.from_numpy(dense.params["kernel"]),
                                       torch.from_numpy(dense.params["bias"]))
    np.testing.assert_allclose(model.predict(x, verbose=0), t.numpy(), rtol=1e-4, atol=1e-5)


def test_flatten_channels_last_gradient():
    from cycnn.utils import gradient_check
    layer = cycnn.layers.Flatten(data_format="channels_last")
    x = np.random.default_rng(2).standard_normal((2, 3, 2, 4)).astype(np.float32)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1).reshape(2, -1))
    errors = gradient_check(layer, x)
    assert max(errors.values()) < 1e-6, errors
    config = layer.get_config()
    assert cycnn.layers.Flatten.from_config(config).data_format == "channels_last"


def test_concatenate_on_the_channel_axis_and_4d_outputs_come_back_channels_last():
    inputs = keras.Input(shape=(4, 4, 2))
    a = layers.UpSampling2D(size=(1, 1))(inputs)
    b = layers.ZeroPadding2D(padding=0)(inputs)
    out = layers.Concatenate(axis=-1)([a, b])
    model = keras.Model(inputs, out)
    assert model.output_shape == (None, 4, 4, 4)
    x = np.random.default_rng(3).standard_normal((2, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), np.concatenate([x, x], axis=-1))
    model2 = keras.Model(inputs, layers.Concatenate(axis=2)([a, b]))    # along W
    np.testing.assert_array_equal(model2.predict(x, verbose=0), np.concatenate([x, x], axis=2))


def test_summary_shows_keras_channels_last_shapes():
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10)])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 26, 26, 8)" in text and "(None, 13, 13, 8)" in text, text
    assert "(None, 1352)" in text and "(None, 10)" in text, text
    assert "(None, 8, 26, 26)" not in text, text
    lines = []
    model.cycnn_model.summary(print_fn=lines.append)   # cycnn's own model stays channels-first
    assert "(None, 8, 26, 26)" in "\n".join(lines)


@pytest.mark.parametrize("padding, stride, kernel, size, want", [
    ("same", 2, 3, 5, 10), ("same", 2, 2, 5, 10), ("same", 1, 3, 5, 5),
    ("valid", 2, 3, 5, 11), ("valid", 2, 2, 5, 10), ("valid", 3, 2, 5, 15)])
def test_conv2d_transpose_output_sizes_follow_keras(padding, stride, kernel, size, want):
    inputs = keras.Input(shape=(size, size, 2))
    out = layers.Conv2DTranspose(3, kernel, strides=stride, padding=padding)(inputs)
    assert out.shape == (None, want, want, 3)


def test_pooling_same_padding():
    inputs = keras.Input(shape=(6, 6, 1))
    assert layers.MaxPooling2D(3, strides=3, padding="same")(inputs).shape == (None, 2, 2, 1)
    with pytest.raises(ValueError, match="padding='same'"):
        layers.MaxPooling2D(2, padding="same")(keras.Input(shape=(5, 5, 1)))


def _trained_classifier(loss="sparse_categorical_crossentropy", metrics=("accuracy",),
                        activation="softmax"):
    cycnn.seed(0)
    model = keras.Sequential([layers.Flatten(input_shape=(4, 4, 1)),
                              layers.Dense(3, activation=activation)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss,
                  metrics=list(metrics))
    return model


def _data():
    rng = np.random.default_rng(4)
    return rng.standard_normal((30, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, 30)


def test_evaluate_returns_a_list_with_metrics_a_scalar_without():
    x, y = _data()
    with_acc = _trained_classifier()
    result = with_acc.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    as_dict = with_acc.evaluate(x, y, verbose=0, return_dict=True)
    assert result == [as_dict["loss"], as_dict["accuracy"]]
    probs = with_acc.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)       # softmax applied
    logp = np.log(probs[np.arange(30), y])
    np.testing.assert_allclose(result[0], -logp.mean(), rtol=1e-5)
    assert result[1] == np.mean(probs.argmax(axis=1) == y)
    plain = _trained_classifier(metrics=())
    assert isinstance(plain.evaluate(x, y, verbose=0), float)


def test_losses_map_to_keras_meanings():
    x, y = _data()
    onehot = keras.utils.to_categorical(y, 3)
    a = _trained_classifier("categorical_crossentropy")
    b = _trained_classifier("sparse_categorical_crossentropy")
    b.set_weights(a.get_weights())
    assert a.evaluate(x, onehot, verbose=0) == pytest.approx(b.evaluate(x, y, verbose=0))
    logits = _trained_classifier(keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                 activation=None)
    logits.fit(x, y, epochs=2, batch_size=10, verbose=0)
    with pytest.raises(ValueError, match="expects a softmax output"):
        _trained_classifier("categorical_crossentropy", activation=None).fit(x, onehot,
                                                                              verbose=0)
    with pytest.raises(ValueError, match="unknown loss"):
        _trained_classifier("hinge").fit(x, y, verbose=0)


def test_fit_history_and_save_load_round_trip(tmp_path):
    x, y = _data()
    model = _trained_classifier()
    history = model.fit(x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(history.history["val_accuracy"]) == 3
    model.save(tmp_path / "m.cyc")
    again = keras.load_model(tmp_path / "m.cyc")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_optimizers_and_callbacks_take_keras_arguments(tmp_path):
    adam = keras.optimizers.Adam(learning_rate=0.01, beta_1=0.8, epsilon=1e-7)
    assert (adam.lr, adam.learning_rate, adam.betas[0], adam.eps) == (0.01, 0.01, 0.8, 1e-7)
    adam.learning_rate = 0.5
    assert adam.lr == 0.5
    x, y = _data()
    model = _trained_classifier()
    seen = []
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.lr)

    model.fit(x, y, epochs=5, verbose=0, callbacks=[sched, stop, Record()])
    assert seen == [0.05, 0.025]                   # halved per epoch; stopped after 2 epochs
    with pytest.raises(ValueError, match="save_weights_only"):
        keras.callbacks.ModelCheckpoint(tmp_path / "w", save_weights_only=True)


def test_to_categorical():
    out = keras.utils.to_categorical([2, 0, 1], 4)
    np.testing.assert_array_equal(out, np.eye(4, dtype=np.float32)[[2, 0, 1]])
    assert out.dtype == np.float32
    assert keras.utils.to_categorical(np.array([[1], [3]])).shape == (2, 1, 4)
    with pytest.raises(ValueError, match="num_classes"):
        keras.utils.to_categorical([0, 5], 3)
    with pytest.raises(ValueError, match="integer"):
        keras.utils.to_categorical([0.5])


def test_load_data_has_keras_shapes(monkeypatch, mnist_dir):
    monkeypatch.setenv("CYCNN_DATA", str(mnist_dir.parent))
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,) and x_test.shape[1:] == (28, 28)
    assert y_train.dtype == np.uint8 and set(np.unique(y_test)) == set(range(10))


@pytest.mark.parametrize("make, match", [
    (lambda: layers.Conv2D(4, 3, padding="full"), "padding"),
    (lambda: layers.Conv2D(4, 3, data_format="channels_first"), "channels-last"),
    (lambda: layers.Dense(4, activation="swish"), "activation"),
    (lambda: layers.Dense(4, kernel_regularizer="l2"), "unsupported"),
    (lambda: layers.BatchNormalization(axis=1), "channel axis"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
