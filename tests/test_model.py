"""Tests of cycnn.model: Sequential (build, summary, fit, evaluate, predict), save/load_model and
the MNIST example (smoke run only; full training is not a unit test)."""
import io
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import cycnn
from cycnn import augment, layers, optim
from cycnn.examples.mnist import build_model
from cycnn.models import History, Sequential, load_model


# ----------------------------------------------------------------------------- helpers
def blobs(n=300, n_features=8, n_classes=3, seed=0):
    """Linearly separable float32 clusters: (x (n, n_features), y int64 (n,))."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    x = centers[y] + rng.normal(0, 0.5, (n, n_features))
    return x.astype(np.float32), y.astype(np.int64)


def stripes(n=96, size=8, seed=0):
    """uint8 images (n, 1, size, size): class 0 has a bright row, class 1 a bright column."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, (n, 1, size, size)).astype(np.uint8)
    y = rng.integers(0, 2, n).astype(np.int64)
    pos = rng.integers(1, size - 1, n)
    for i in range(n):  # test data only, not the training path
        if y[i] == 0:
            x[i, 0, pos[i], :] = 255
        else:
            x[i, 0, :, pos[i]] = 255
    return x, y


def mlp(n_features=8, n_classes=3, hidden=16, extra=()):
    return Sequential([layers.Dense(hidden, activation="relu"), *extra, layers.Dense(n_classes)],
                      input_shape=(n_features,))


def weights(model):
    return [p.copy() for p in model.params]


def assert_same_arrays(a, b):
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape, f"array {i}: shape {u.shape} != {v.shape}"
        assert np.array_equal(u, v), f"array {i}: max abs difference {np.max(np.abs(u - v))}"


# ----------------------------------------------------------------------------- structure
def test_summary_of_the_reference_network():
    model = build_model()  # the MNIST example's network
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    conv1 = 32 * 1 * 5 * 5 + 32
    conv2 = 64 * 32 * 5 * 5 + 64
    dense1 = (64 * 7 * 7) * 1000 + 1000
    dense2 = 1000 * 10 + 10
    expected = [conv1, 0, conv2, 0, 0, dense1, dense2]
    shapes = ["(None, 32, 28, 28)", "(None, 32, 14, 14)", "(None, 64, 14, 14)",
              "(None, 64, 7, 7)", "(None, 3136)", "(None, 1000)", "(None, 10)"]
    for layer, count, shape in zip(model.layers, expected, shapes):
        row = next(line for line in lines if line.startswith(f"{layer.name} ("))
        assert f"({type(layer).__name__})" in row
        assert shape in row, row
        assert row.split()[-1] == f"{count:,}", row
        assert sum(p.size for p in layer.params.values()) == count
    total = sum(expected)
    assert total == 3_199_106
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total:,}" in text
    assert "Non-trainable params: 0" in text
    assert model.count_params() == (total, 0)
    assert sum(p.size for p in model.params) == total
    assert model.grads == [None] * len(model.params)  # no backward yet
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    out = model.forward(x, training=True)
    assert out.shape == (2, 10)
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape
    assert [g.shape for g in model.grads] == [p.shape for p in model.params]


def test_build_later_add_and_config_round_trip():
    model = Sequential(name="net")
    model.add(layers.Dense(4, activation="relu"))
    model.add(layers.Dense(2))
    assert not model.built
    model.build((3,))
    assert model.built and model.input_shape == (3,) and model.output_shape == (2,)
    model.add(layers.Softmax())
    assert model.layers[-1].built and model.output_shape == (2,)
    config = model.get_config()
    clone = Sequential.from_config(config)
    assert clone.get_config() == config
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]


def test_builds_from_the_first_batch():
    x, y = blobs(40)
    model = Sequential([layers.Dense(3)])
    out = model.predict(x)
    assert model.input_shape == (8,) and out.shape == (40, 3)


# ----------------------------------------------------------------------------- training
def test_fit_learns_a_separable_problem():
    cycnn.seed(0)
    x, y = blobs(300)
    model = mlp()
    model.compile(optimizer=optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
    before = model.evaluate(x, y)
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    after = model.evaluate(x, y)
    assert isinstance(history, History)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    assert after["loss"] < 0.2 * before["loss"]
    assert after["accuracy"] >= 0.97
    assert history.history["accuracy"][-1] >= 0.95


def test_fit_small_convnet_on_uint8_images():
    cycnn.seed(0)
    x, y = stripes(96)
    model = Sequential([layers.Conv2D(4, 3, padding="same", activation="relu"),
                        layers.MaxPool2D(2), layers.Flatten(), layers.Dense(2)],
                       input_shape=(1, 8, 8))
    model.compile(optimizer=optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert model.evaluate(x, y)["accuracy"] >= 0.95


def test_uint8_inputs_are_scaled_to_unit_range_per_batch():
    x = np.random.default_rng(0).integers(0, 256, (10, 1, 3, 3)).astype(np.uint8)
    model = Sequential([layers.Flatten()], input_shape=(1, 3, 3))
    out = model.predict(x, batch_size=4)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (x / np.float32(255)).astype(np.float32).reshape(10, 9))
    assert out.max() <= 1.0 and out.min() >= 0.0
    # float inputs are used as they are (cast to float32)
    xf = np.arange(18, dtype=np.float64).reshape(2, 1, 3, 3)
    np.testing.assert_array_equal(model.predict(xf), xf.reshape(2, 9).astype(np.float32))


def test_history_keys_validation_and_lr_schedule():
    cycnn.seed(0)
    x, y = blobs(120)
    model = mlp()
    model.compile(optimizer=optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x[:100], y[:100], epochs=3, batch_size=25,
                        validation_data=(x[100:], y[100:]),
                        lr_schedule=optim.StepLR(step_size=1, gamma=0.5), verbose=0)
    h = history.history
    assert history.epoch == [0, 1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "images_per_sec"):
        assert len(h[key]) == 3, key
    assert h["lr"] == pytest.approx([0.1, 0.05, 0.025])
    # 100 training images per epoch, timed without the validation pass ('time' includes it)
    for rate, seconds in zip(h["images_per_sec"], h["time"]):
        assert 100 / seconds <= rate < float("inf")
    final = model.evaluate(x[100:], y[100:])
    assert h["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-6)
    assert h["val_accuracy"][-1] == pytest.approx(final["accuracy"])


def test_augment_sees_float_batches_and_leaves_the_data_alone():
    x, y = stripes(40)
    x_before = x.copy()
    seen = []

    def record(batch):
        seen.append((batch.dtype, batch.shape, float(batch.min()), float(batch.max())))
        batch *= 0.5  # even an in-place augmentation must not touch the caller's data
        return batch

    for shuffle in (True, False):
        seen.clear()
        model = Sequential([layers.Flatten(), layers.Dense(2)], input_shape=(1, 8, 8))
        model.compile(optimizer="sgd", loss="cross_entropy")
        model.fit(x, y, epochs=1, batch_size=16, shuffle=shuffle, augment=record, verbose=0)
        assert [s[1][0] for s in seen] == [16, 16, 8]
        assert all(dt == np.float32 and lo >= 0.0 and hi <= 1.0 for dt, _, lo, hi in seen)
        np.testing.assert_array_equal(x, x_before)
    xf = x.astype(np.float32) / 255
    xf_before = xf.copy()
    model.fit(xf, y, epochs=1, batch_size=16, shuffle=False, augment=record, verbose=0)
    np.testing.assert_array_equal(xf, xf_before)
    cycnn.seed(0)
    model.fit(x, y, epochs=1, batch_size=16, augment=augment.RandomShift(1), verbose=0)


def test_one_hot_labels_match_int_labels():
    x, y = blobs(64)
    one_hot = np.eye(3, dtype=np.float32)[y]
    runs = []
    for labels in (y, one_hot):
        cycnn.seed(3)
        model = mlp()
        model.compile(optimizer=optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
        h = model.fit(x, labels, epochs=2, batch_size=16, verbose=0).history
        runs.append((h["loss"], h["accuracy"], model.evaluate(x, labels)))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-5)
    assert runs[0][1] == runs[1][1]
    assert runs[0][2]["accuracy"] == runs[1][2]["accuracy"]


def test_accuracy_of_a_single_sigmoid_output_uses_threshold_half():
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]], np.float32)
    y = np.array([0.0, 1.0, 1.0, 1.0], np.float32)
    model = Sequential([layers.Dense(1), layers.Sigmoid()], input_shape=(1,))
    model.layers[0].params["kernel"][...] = 1.0
    model.layers[0].params["bias"][...] = 0.0
    model.compile(optimizer="sgd", loss="mse", metrics=["accuracy"])
    assert model.evaluate(x, y)["accuracy"] == pytest.approx(0.75)


def test_softmax_then_cross_entropy_trains_on_logits():
    x, y = blobs(64)
    cycnn.seed(5)
    plain = mlp()
    fused = Sequential([type(layer).from_config(layer.get_config()) for layer in plain.layers]
                       + [layers.Softmax()], input_shape=(8,))
    for p, q in zip(fused.params, plain.params):
        p[...] = q
    for model in (plain, fused):
        model.compile(optimizer=optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
    # predict applies the final Softmax, evaluate/fit feed the loss the logits
    logits = plain.predict(x)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(fused.predict(x), e / e.sum(axis=1, keepdims=True), rtol=1e-5,
                               atol=1e-7)
    assert fused.evaluate(x, y)["loss"] == plain.evaluate(x, y)["loss"]
    h_plain = plain.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history
    h_fused = fused.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history
    assert h_fused["loss"] == h_plain["loss"]
    assert_same_arrays(fused.params, plain.params)


def test_seed_makes_fit_reproducible():
    x, y = blobs(200)

    def run(seed):
        cycnn.seed(seed)
        model = mlp(extra=(layers.Dropout(0.3),))
        model.compile(optimizer=optim.Adam(lr=1e-2), loss="cross_entropy")
        model.fit(x, y, epochs=2, batch_size=32, verbose=0)
        return weights(model)

    first, second, other = run(7), run(7), run(8)
    assert_same_arrays(first, second)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


# ----------------------------------------------------------------------------- output
def test_verbose_levels(capsys):
    x, y = blobs(64)
    model = mlp()
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, validation_data=(x, y), verbose=0)
    model.evaluate(x, y)
    model.predict(x)
    assert capsys.readouterr().out == ""
    for verbose in (1, 2):
        model.fit(x, y, epochs=2, batch_size=16, validation_data=(x, y), verbose=verbose)
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert len(lines) == 2, out  # one summary line per epoch, no progress bar off a terminal
        assert "\r" not in out
        for epoch, line in enumerate(lines, 1):
            assert line.startswith(f"Epoch {epoch}/2")
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "img/s"):
                assert key in line, line


def test_progress_bar_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x, y = blobs(64)
    model = mlp()
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    fake = Terminal()
    monkeypatch.setattr(sys, "stdout", fake)
    model.fit(x, y, epochs=1, batch_size=16, verbose=1)
    out = fake.getvalue()
    assert "\r" in out and "4/4" in out and "ETA" in out and "img/s" in out
    assert out.endswith("\n") and out.count("\n") == 1


# ----------------------------------------------------------------------------- validation
def test_errors_echo_what_was_received():
    x, y = blobs(32)
    model = mlp()
    with pytest.raises(ValueError, match="compile"):
        model.fit(x, y)
    with pytest.raises(ValueError, match="compile"):
        model.evaluate(x, y)
    model.compile(optimizer="adam", loss="cross_entropy")
    with pytest.raises(ValueError, match=r"32 .*31"):
        model.fit(x, y[:31])
    with pytest.raises(ValueError, match=r"\(N, 8\).*\(32, 7\)"):
        model.fit(x[:, :7], y)
    with pytest.raises(ValueError, match=r"\(5, 2, 4\)"):
        model.predict(x.reshape(-1, 2, 4)[:5])
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        model.fit(x, y, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int, got 2.5"):
        model.fit(x, y, batch_size=2.5)
    with pytest.raises(ValueError, match="epochs must be >= 0, got -1"):
        model.fit(x, y, epochs=-1)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, validation_data=(x,))
    with pytest.raises(ValueError, match=r"x_val.*y_val"):
        model.fit(x, y, validation_data=(x, y[:3]))
    with pytest.raises(TypeError, match="numeric"):
        model.fit(np.array(["a"] * 32), y)
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'"):
        model.compile(optimizer="adamw")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        model.compile(metrics=["f1"])
    with pytest.raises(TypeError, match="add\\(\\) expects a cycnn layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="input_shape"):
        Sequential([layers.Dense(2)]).summary()
    assert model.fit(x, y, epochs=0, verbose=0).epoch == []


# ----------------------------------------------------------------------------- saving
def test_save_and_load_round_trip_and_resume_training(tmp_path):
    x, y = blobs(160)

    def fresh():
        model = mlp(extra=(layers.BatchNorm1D(),))
        model.compile(optimizer=optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
        return model

    cycnn.seed(11)
    straight = fresh()
    straight.fit(x, y, epochs=2, batch_size=32, verbose=0)

    cycnn.seed(11)
    first = fresh()
    first.fit(x, y, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "net.cyc"
    first.save(path)
    assert path.exists() and [p.name for p in tmp_path.iterdir()] == ["net.cyc"]  # no temp left
    loaded = load_model(path)
    assert loaded.get_config() == first.get_config()
    assert type(loaded.optimizer) is type(first.optimizer)
    assert loaded.metrics == ["accuracy"]
    np.testing.assert_array_equal(loaded.predict(x), first.predict(x))  # bit-identical
    buffers = [b for layer in first.layers for b in layer.buffers.values()]
    assert buffers, "the BatchNorm running statistics should be saved"
    assert_same_arrays([b for layer in loaded.layers for b in layer.buffers.values()], buffers)
    assert loaded.evaluate(x, y) == first.evaluate(x, y)

    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)  # optimizer state restored
    assert_same_arrays(loaded.params, straight.params)
    np.testing.assert_array_equal(loaded.predict(x), straight.predict(x))


def test_uncompiled_model_round_trip(tmp_path):
    model = mlp()
    model.save(tmp_path / "plain.cyc")
    loaded = load_model(str(tmp_path / "plain.cyc"))
    assert loaded.optimizer is None and loaded.loss is None
    x, _ = blobs(10)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    model.save(tmp_path / "plain.cyc")  # overwriting works


def test_damaged_model_files_raise_clear_errors(tmp_path):
    model = mlp()
    model.compile(optimizer="adam", loss="cross_entropy")
    x, y = blobs(32)
    model.fit(x, y, epochs=1, verbose=0)
    good = tmp_path / "good.cyc"
    model.save(good)
    data = good.read_bytes()

    with pytest.raises(OSError, match="missing.cyc"):
        load_model(tmp_path / "missing.cyc")
    with pytest.raises(OSError):
        load_model(tmp_path)

    def damaged(name, content):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match="cycnn model file") as info:
            load_model(path)
        assert name in str(info.value)

    damaged("empty.cyc", b"")
    damaged("truncated.cyc", data[: len(data) // 2])
    damaged("short.cyc", data[:100])
    damaged("text.cyc", b"hello, this is not a model\n" * 10)
    flipped = bytearray(data)
    middle = len(data) // 3
    flipped[middle:middle + 8] = bytes(b ^ 0xFF for b in flipped[middle:middle + 8])
    damaged("flipped.cyc", bytes(flipped))

    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    damaged("other.npz", other.read_bytes())
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    damaged("array.npy", npy.read_bytes())
    wrong = tmp_path / "wrong.npz"
    header = b'{"format": "something-else", "version": 1}'
    np.savez(wrong, __cycnn__=np.frombuffer(header, np.uint8))
    damaged("wrong.npz", wrong.read_bytes())
    future = tmp_path / "future.npz"
    np.savez(future, __cycnn__=np.frombuffer(b'{"format": "cycnn.model", "version": 99}', np.uint8))
    with pytest.raises(ValueError, match="version 99"):
        load_model(future)
    assert load_model(good).get_config() == model.get_config()  # the good file still loads


# ----------------------------------------------------------------------------- example
def test_mnist_example_smoke_run(mnist_dir, tmp_path):
    src = str(pathlib.Path(cycnn.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "cycnn.examples.mnist", "--data", str(mnist_dir), "--limit", "512",
         "--test-limit", "1000",
         "--epochs", "1", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "512 training images" in proc.stdout
    assert "Epoch 1/1" in proc.stdout and "val_accuracy" in proc.stdout
    assert "\r" not in proc.stdout  # not a terminal: summary lines only
    model = load_model(out / "mnist_cnn.cyc")
    assert model.count_params() == (3_199_106, 0)
    # compiled as the example compiles it, with the optimizer state of the 8 training steps
    assert isinstance(model.optimizer, optim.Adam) and model.optimizer.lr == pytest.approx(1e-3)
    assert model.optimizer.iterations == 512 // 64


def _bn_model():
    model = Sequential([layers.Conv2D(4, 3, padding="same", activation="relu"),
                        layers.BatchNorm2D(), layers.MaxPool2D(2), layers.Flatten(),
                        layers.Dense(5)], input_shape=(1, 6, 6))
    model.compile(optim.Adam(), "cross_entropy")
    return model


def test_non_finite_loss_leaves_running_statistics_untouched():
    cycnn.seed(3)
    rng = np.random.default_rng(3)
    x, y = rng.random((10, 1, 6, 6), dtype=np.float32), rng.integers(0, 5, 10)
    model = _bn_model()
    model.fit(x, y, verbose=0)
    before = {k: v.copy() for k, v in model.layers[1].buffers.items()}
    with pytest.raises(FloatingPointError, match="loss became nan"):
        model.fit(np.full_like(x, np.nan), y, verbose=0)
    for key, value in model.layers[1].buffers.items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    assert np.isfinite(model.evaluate(x, y)["loss"])


def test_saved_weights_must_be_numbers(tmp_path):
    model = _bn_model()
    path = tmp_path / "m.cyc"
    model.save(path)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    key = next(k for k in arrays if k.endswith("params.kernel"))
    arrays[key] = arrays[key].astype(str)
    with open(path, "wb") as f:                  # (np.savez on a path would append .npz)
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="not numbers"):
        load_model(path)


def test_softmax_activation_with_cross_entropy_warns():
    model = Sequential([layers.Dense(3, activation="softmax")], input_shape=(4,))
    with pytest.warns(UserWarning, match="applies its own softmax"):
        model.compile("adam", "cross_entropy")


def test_version_1_file_loads_with_its_predictions():
    """tests/data/model_v1.cyc was written by the version-1 writer (cycnn before the models
    package); model_v1_expected.npz holds the predictions the saving model gave."""
    data = pathlib.Path(__file__).parent / "data"
    expected = np.load(data / "model_v1_expected.npz")
    model = load_model(data / "model_v1.cyc")
    assert isinstance(model, Sequential) and model.name == "v1net"
    assert model.input_shape == (1, 6, 6)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "BatchNorm2D", "MaxPool2D", "Flatten", "Dense", "Dropout", "Dense", "Softmax"]
    assert np.array_equal(model.predict(expected["x"]), expected["pred"])
    assert model.metrics == ["accuracy"] and type(model.optimizer).__name__ == "Adam"
    assert int(model.optimizer.state_dict()["step"]) == 4   # 2 epochs of 2 batches
    model.fit(expected["x"], expected["y"], epochs=1, batch_size=8, verbose=0)  # resumes
