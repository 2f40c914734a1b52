"""fit's conveniences: train_step, callbacks (EarlyStopping, ModelCheckpoint, CSVLogger,
LearningRateScheduler, custom hooks) and validation_split."""
import csv

import numpy as np
import pytest

import cycnn
from cycnn import layers, optim
from cycnn.models import (Callback, CSVLogger, EarlyStopping, LearningRateScheduler,
                          ModelCheckpoint, Sequential, load_model)


def blobs(n=120, n_features=6, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    x = centers[y] + rng.normal(0, 0.5, (n, n_features))
    return x.astype(np.float32), y.astype(np.int64)


def mlp(seed=0, lr=1e-2):
    cycnn.seed(seed)
    model = Sequential([layers.Dense(8, activation="relu"), layers.Dense(3)], input_shape=(6,))
    model.compile(optim.Adam(lr), "cross_entropy", ["accuracy"])
    return model


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, logs["size"], logs["loss"]))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, dict(logs)))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


# ----------------------------------------------------------------------------- train_step
def test_train_step_is_one_forward_backward_update():
    x, y = blobs(16)
    model = mlp()
    before = [p.copy() for p in model.params]
    logs = model.train_step(x, y)
    # the same step by hand on a copy that starts from the same weights
    twin = mlp()
    out = twin.forward(x, training=True)
    loss, dy = twin.loss.value_and_grad(out, y)
    twin.backward(dy)
    twin.optimizer.step(twin.params, twin.grads)
    assert logs["loss"] == pytest.approx(float(loss), rel=1e-6)
    assert logs["accuracy"] == np.mean(np.argmax(out, axis=1) == y)
    for p, q, b in zip(model.params, twin.params, before):
        np.testing.assert_array_equal(p, q)
        assert not np.array_equal(p, b)


def test_train_step_scales_uint8_and_refuses_non_finite_losses():
    model = mlp()
    x = np.full((4, 6), 255, np.uint8)
    y = np.zeros(4, np.int64)
    twin = mlp()
    model.train_step(x, y)
    twin.train_step(np.ones((4, 6), np.float32), y)
    for p, q in zip(model.params, twin.params):
        np.testing.assert_array_equal(p, q)
    bad = np.full((4, 6), np.inf, np.float32)
    before = [p.copy() for p in model.params]
    with pytest.raises(FloatingPointError, match="loss became"):
        model.train_step(bad, y)
    for p, b in zip(model.params, before):
        np.testing.assert_array_equal(p, b)
    with pytest.raises(ValueError, match="compile"):
        Sequential([layers.Dense(2)], input_shape=(3,)).train_step(np.ones((2, 3)), [0, 1])


def test_fit_runs_through_train_step():
    calls = []

    class Counting(Sequential):
        def train_step(self, x, y):
            calls.append(len(x))
            return super().train_step(x, y)

    cycnn.seed(0)
    model = Counting([layers.Dense(3)], input_shape=(6,))
    model.compile("sgd", "cross_entropy")
    x, y = blobs(50)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert calls == [16, 16, 16, 2] * 2


# ----------------------------------------------------------------------------- hooks
def test_custom_callback_sees_every_hook_in_order():
    x, y = blobs(40)
    rec = Recorder()
    history = mlp().fit(x, y, epochs=2, batch_size=16, callbacks=[rec], verbose=0)
    kinds = [e[0] for e in rec.events]
    assert kinds == (["train_begin"] + (["epoch_begin"] + ["batch_end"] * 3 + ["epoch_end"]) * 2
                     + ["train_end"])
    sizes = [e[2] for e in rec.events if e[0] == "batch_end"]
    assert sizes == [16, 16, 8] * 2
    ends = [e for e in rec.events if e[0] == "epoch_end"]
    assert [e[2]["loss"] for e in ends] == history.history["loss"]
    batch_losses = [e[3] for e in rec.events if e[0] == "batch_end"][:3]
    assert ends[0][2]["loss"] == pytest.approx(np.average(batch_losses, weights=[16, 16, 8]))
    assert rec.model is not None and rec.params["epochs"] == 2 and rec.params["steps"] == 3


def test_stop_training_from_a_batch_hook():
    class StopAfterTwo(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = blobs(80)
    history = mlp().fit(x, y, epochs=5, batch_size=16, callbacks=[StopAfterTwo()], verbose=0)
    assert history.epoch == [0]


def test_early_stopping_waits_patience_epochs_and_restores_best_weights():
    x, y = blobs(60)
    losses = iter([1.0, 0.5, 0.6, 0.55, 0.7, 0.1])
    weights_at = {}

    class FakeVal(Callback):   # a scripted 'val_loss' (set before EarlyStopping reads it)
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            weights_at[epoch] = [p.copy() for p in self.model.params]

    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model = mlp()
    model.predict(x)    # builds predict's plan on the initial weights
    history = model.fit(x, y, epochs=6, batch_size=30, callbacks=[FakeVal(), stop], verbose=0)
    assert history.epoch == [0, 1, 2, 3]         # best at epoch 1, then 2 epochs without gain
    assert stop.stopped_epoch == 3 and stop.best == 0.5 and stop.best_epoch == 1
    for p, q in zip(model.params, weights_at[1]):
        np.testing.assert_array_equal(p, q)
    # predict (a compiled plan for this chain) sees the restored weights
    np.testing.assert_allclose(model.predict(x), model._graph.forward([x], False)[0],
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not among the logged values"):
        mlp().fit(x, y, epochs=1, callbacks=[EarlyStopping(monitor="val_loss")], verbose=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


def test_model_checkpoint_best_only_is_atomic_and_loadable(tmp_path):
    x, y = blobs(60)
    scores = iter([0.5, 0.7, 0.6, 0.9])
    saved_at = []

    class FakeAcc(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_accuracy"] = next(scores)

    class Watch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if path.exists():
                saved_at.append((epoch, path.stat().st_mtime_ns, path.read_bytes()))

    path = tmp_path / "best.cyc"
    ckpt = ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True)
    model = mlp()
    model.fit(x, y, epochs=4, batch_size=30, callbacks=[FakeAcc(), ckpt, Watch()], verbose=0)
    assert ckpt.best == 0.9
    contents = [blob for _, _, blob in saved_at]
    assert contents[0] != contents[1] and contents[1] == contents[2] != contents[3]
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))   # the last (best)
    assert [p.name for p in tmp_path.iterdir()] == ["best.cyc"]  # no temporary files left
    pattern = ModelCheckpoint(tmp_path / "e{epoch:02d}-{loss:.2f}.cyc")
    mlp().fit(x, y, epochs=2, batch_size=30, callbacks=[pattern], verbose=0)
    assert sorted(p.name[:3] for p in tmp_path.glob("e*.cyc")) == ["e01", "e02"]


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = blobs(60)
    path = tmp_path / "log.csv"
    history = mlp().fit(x, y, epochs=3, batch_size=30, validation_split=0.2,
                        callbacks=[CSVLogger(path)], verbose=0)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["val_loss"]) for r in rows] == history.history["val_loss"]
    assert [float(r["accuracy"]) for r in rows] == history.history["accuracy"]
    mlp().fit(x, y, epochs=1, batch_size=30, validation_split=0.2,
              callbacks=[CSVLogger(path, append=True)], verbose=0)
    with open(path, newline="") as f:
        assert len(list(csv.DictReader(f))) == 4   # appended, one header


def test_learning_rate_scheduler_and_lr_schedule_shortcut():
    x, y = blobs(40)
    model = mlp(lr=0.1)
    history = model.fit(x, y, epochs=3, batch_size=40, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5)])
    assert history.history["lr"] == [0.05, 0.025, 0.0125]      # Keras: from the current lr
    model = mlp(lr=0.1)
    history = model.fit(x, y, epochs=3, batch_size=40, verbose=0,
                        lr_schedule=optim.StepLR(step_size=2, gamma=0.1))
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.01])   # from the initial lr
    model = mlp(lr=0.1)
    history = model.fit(x, y, epochs=2, batch_size=40, verbose=0,
                        lr_schedule=lambda epoch, base: base / (epoch + 1))
    assert history.history["lr"] == pytest.approx([0.1, 0.05])
    with pytest.raises(ValueError, match="finite number"):
        mlp().fit(x, y, epochs=1, verbose=0,
                  callbacks=[LearningRateScheduler(lambda e, lr: float("nan"))])
    with pytest.raises(TypeError, match="callbacks"):
        mlp().fit(x, y, epochs=1, verbose=0, callbacks=[lambda: None])


# ----------------------------------------------------------------------------- validation_split
def test_validation_split_holds_out_the_last_samples():
    x, y = blobs(100)
    model = mlp()
    history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.1, verbose=0)
    twin = mlp()
    twin.fit(x[:90], y[:90], epochs=2, batch_size=16, verbose=0)   # same shuffles, same seed
    np.testing.assert_array_equal(model.predict(x), twin.predict(x))
    expected = twin.evaluate(x[90:], y[90:])
    assert history.history["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == expected["accuracy"]
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, y, validation_split=0.1, validation_data=(x, y), verbose=0)
    with pytest.raises(ValueError, match="leaves 0"):
        model.fit(x[:5], y[:5], validation_split=0.1, verbose=0)
