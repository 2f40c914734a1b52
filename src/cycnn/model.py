"""Sequential models: build, train, evaluate, predict, save and load.

A :class:`Sequential` is a list of layers applied one after the other. It feels like Keras::

    model = cycnn.Sequential([...layers...], input_shape=(1, 28, 28))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=64,
                        validation_data=(x_test, y_test))
    model.save("mnist_cnn.cyc")
    model = cycnn.load_model("mnist_cnn.cyc")

Conventions
-----------
* Shapes given to the model (``input_shape``) are per sample, without the batch axis.
* Inputs: ``uint8`` images are converted to float32 in [0, 1] (``x / 255``); every other numeric
  input is cast to float32 as is. The conversion is done one batch at a time, into a buffer that
  is reused, so a dataset is never copied whole.
* Labels: integer class ids of shape (N,) or one-hot / float targets of shape (N, C).
* Softmax fusion: when the last layer is ``Softmax`` and the loss is cross-entropy (which works on
  logits, with a fused softmax), training and ``evaluate`` skip that last Softmax and feed the
  logits to the loss. ``predict`` and ``forward`` still apply it, so they return probabilities.
* ``cycnn.seed(n)`` (with the same thread count) makes ``fit`` reproducible: shuffling,
  initialisation and dropout all draw from the one generator of ``cycnn._random``.

File format (``save`` / ``load_model``): an uncompressed NumPy ``.npz`` archive of plain arrays,
read back with ``allow_pickle=False``. The entry ``__cycnn__`` is a uint8 array holding a UTF-8
JSON header: ``{"format": "cycnn.model", "version": 1, "config": <model config>,
"compile": <optimizer/loss/metrics or null>, "arrays": [...]}``. Weights are stored as
``layers.<i>.params.<key>`` and ``layers.<i>.buffers.<key>`` (``i`` is the layer index), the
optimizer state as ``optimizer.<key>``. Files are written to a temporary file in the same
folder, then renamed over the target, so a crash never leaves a half-written model behind.
"""
import json
import math
import numbers
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from . import layers as _layers
from . import losses as _losses
from . import optim as _optim
from ._random import get_rng

__all__ = ["Sequential", "History", "load_model"]

FORMAT_NAME = "cycnn.model"
FORMAT_VERSION = 1
_HEADER_KEY = "__cycnn__"
DTYPE = np.float32

_METRIC_NAMES = {"accuracy": "accuracy", "acc": "accuracy"}


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _as_shape(shape, name="input_shape"):
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints (per sample, no batch axis), "
                        f"got {_describe(shape)}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
                       for d in dims):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints (per sample, "
                         f"no batch axis), got {_describe(shape)}")
    return tuple(int(d) for d in dims)


def _as_data(x, name):
    """ndarray view of x (no copy when it already is one); rejects non-numeric data."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a numeric array, got {_describe(x)}")
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a batch axis, got {_describe(x)}")
    return arr


class _Batches:
    """Turns rows of x into float32 batches, reusing one buffer.

    uint8 data is scaled by 1/255 (x / 255); other data is cast to float32. Rows are gathered
    with ``np.take(..., out=...)`` into the reused buffer, so no per-batch allocation happens for
    x apart from what the layers themselves do.
    """

    def __init__(self, x, batch_size):
        self.x = x
        self._scale = x.dtype == np.uint8
        self._raw = None if x.dtype == DTYPE else np.empty((batch_size,) + x.shape[1:], x.dtype)
        self._out = np.empty((batch_size,) + x.shape[1:], DTYPE)

    def slice(self, start, stop, copy=False):
        """Rows start:stop (a view when x already is float32 and copy is False)."""
        src = self.x[start:stop]
        n = stop - start
        if self._scale:
            return np.divide(src, DTYPE(255), out=self._out[:n], dtype=DTYPE)
        if src.dtype == DTYPE and not copy:
            return src
        out = self._out[:n]
        out[...] = src
        return out

    def take(self, index):
        """Rows ``index`` (an int array), gathered into the reused buffer."""
        n = len(index)
        if self._raw is None:
            return np.take(self.x, index, axis=0, out=self._out[:n], mode="clip")
        raw = np.take(self.x, index, axis=0, out=self._raw[:n], mode="clip")
        if self._scale:
            return np.divide(raw, DTYPE(255), out=self._out[:n], dtype=DTYPE)
        out = self._out[:n]
        out[...] = raw
        return out


def _prepare_y(y):
    """Labels as given to the loss: int64 class ids, or float32 targets."""
    if y.dtype.kind == "f":
        return y if y.dtype == DTYPE else y.astype(DTYPE)
    return y if y.dtype == np.int64 else y.astype(np.int64)


class History:
    """What ``fit`` returns: ``history`` maps a name to one value per epoch; ``epoch`` lists them.

    Keys: 'loss', 'accuracy' (when compiled with that metric), 'val_loss', 'val_accuracy' (with
    validation data), 'lr', 'time' (seconds for the whole epoch, validation included) and
    'images_per_sec' (training images / training time of the epoch).
    """

    def __init__(self):
        self.history = {}
        self.epoch = []

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class _Progress:
    """Per-epoch console output of ``fit``.

    verbose=1 on a terminal: a live single-line bar rewritten with '\\r', then the epoch summary.
    verbose=1 when stdout is not a terminal, or verbose=2: the epoch summary only.
    """

    def __init__(self, verbose, epochs, n_batches):
        self.stream = sys.stdout  # looked up now, so redirections (and pytest's capsys) apply
        isatty = getattr(self.stream, "isatty", None)
        self.live = verbose == 1 and bool(isatty and isatty())
        self.quiet = verbose == 0
        self.epochs = epochs
        self.n_batches = n_batches
        self._last = 0.0

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def start(self, epoch):
        self.epoch = epoch
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, done, seen, loss, acc):
        if not self.live:
            return
        now = time.perf_counter()
        if done < self.n_batches and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self.t0
        width = 25
        filled = width * done // self.n_batches
        bar = "=" * filled + (">" if filled < width else "") + "." * (width - filled - 1)
        eta = elapsed / done * (self.n_batches - done) if done else 0.0
        text = (f"\rEpoch {self.epoch + 1}/{self.epochs} {done:>{len(str(self.n_batches))}}/"
                f"{self.n_batches} [{bar}] ETA {_fmt_time(eta)} - loss {loss:.4f}")
        if acc is not None:
            text += f" - accuracy {acc:.4f}"
        text += f" - {seen / max(elapsed, 1e-9):,.0f} img/s"
        self._write(text + "\033[K")

    def end(self, logs):
        if self.quiet:
            return
        parts = [f"Epoch {self.epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{logs['time']:.1f}s")
        parts.append(f"{logs['images_per_sec']:,.0f} img/s")
        line = " - ".join(parts)
        self._write(f"\r{line}\033[K\n" if self.live else line + "\n")


def _fmt_time(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def _class_config(obj):
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _optimizer_from(spec):
    """An optimizer from a name ('adam', 'sgd', 'rmsprop'), an instance, or a saved config."""
    if isinstance(spec, (str, dict, _optim.Optimizer)):
        return _optim.get(spec)
    raise TypeError(f"optimizer must be 'sgd', 'adam', 'rmsprop' or an optimizer instance, "
                    f"got {_describe(spec)}")


def _loss_from(spec):
    """A loss from a name ('cross_entropy', 'mse', ...), an instance, or a saved config."""
    if isinstance(spec, (str, dict, _losses.Loss)) or (isinstance(spec, type)
                                                        and issubclass(spec, _losses.Loss)):
        return _losses.get(spec)
    raise TypeError(f"loss must be a loss name or a cycnn loss, got {_describe(spec)}")


def _accuracy(y_pred, y_true, threshold=0.5):
    """Number of correct predictions in a batch.

    Several outputs: argmax of the prediction against the int label or the argmax of a one-hot
    row. One output (a sigmoid probability): prediction > 0.5 against label > 0.5 (threshold 0
    when the loss is binary cross-entropy on logits).
    """
    if y_pred.ndim == 2 and y_pred.shape[1] > 1:
        pred = np.argmax(y_pred, axis=1)
        true = y_true if y_true.ndim == 1 else np.argmax(y_true, axis=1)
        return int(np.count_nonzero(pred == true))
    pred = y_pred.reshape(len(y_pred)) > threshold
    true = y_true.reshape(len(y_true)) > 0.5
    return int(np.count_nonzero(pred == true))


class Sequential:
    """A stack of layers, each feeding the next.

    Parameters
    ----------
    layers : list of Layer, optional
        The layers, first to last (more can be added with :meth:`add`).
    input_shape : tuple of int, optional
        Shape of one sample without the batch axis, e.g. ``(1, 28, 28)``. Given here (or to
        :meth:`build`), the layers are built at once; otherwise on the first batch seen.
    name : str, optional
    """

    def __init__(self, layers=None, input_shape=None, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {_describe(name)}")
        self.name = name or "sequential"
        self.layers = []
        self.input_shape = None
        self.output_shape = None
        self.built = False
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self._base_lr = None
        if layers is not None:
            if not isinstance(layers, (list, tuple)):
                raise TypeError(f"layers must be a list of layers, got {_describe(layers)}")
            for layer in layers:
                self.add(layer)
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------------ structure
    def add(self, layer):
        """Append a layer (built at once when the model already is)."""
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"add() expects a cycnn layer, got {_describe(layer)}")
        if self.built:
            self._build_layer(layer, self.output_shape)
            self.output_shape = tuple(layer.output_shape)
        self.layers.append(layer)
        return self

    @staticmethod
    def _build_layer(layer, shape):
        if layer.built:
            if tuple(layer.input_shape) != tuple(shape):
                raise ValueError(f"layer {layer.name!r} was built for input shape "
                                 f"{tuple(layer.input_shape)}, but receives {tuple(shape)}")
        else:
            layer.build(tuple(shape))

    def build(self, input_shape=None):
        """Build every layer in turn for samples of ``input_shape`` (no batch axis)."""
        if input_shape is None:
            input_shape = self.input_shape
        if input_shape is None:
            raise ValueError("build() needs input_shape (per sample, e.g. (1, 28, 28)): the model "
                             "was created without one")
        input_shape = _as_shape(input_shape)
        if self.built and input_shape == self.input_shape:
            return
        if self.built:
            raise ValueError(f"model {self.name!r} is already built for input shape "
                             f"{self.input_shape}, got {input_shape}")
        shape = input_shape
        for layer in self.layers:
            self._build_layer(layer, shape)
            shape = tuple(layer.output_shape)
        self.input_shape = input_shape
        self.output_shape = shape
        self.built = True

    def _require_built(self, x=None):
        if not self.built:
            if self.input_shape is None and x is not None and x.ndim >= 2:
                self.build(x.shape[1:])
            else:
                self.build()

    @property
    def params(self):
        """Trainable arrays of every layer, in a stable order (layer by layer, key order)."""
        return [p for layer in self.layers for p in layer.params.values()]

    @property
    def grads(self):
        """Gradients matching :attr:`params` one for one, from the last :meth:`backward`
        (None for a parameter whose layer has not been through backward yet)."""
        return [layer.grads.get(key) for layer in self.layers for key in layer.params]

    def count_params(self):
        """(trainable, non-trainable) element counts; buffers count as non-trainable."""
        trainable = sum(int(p.size) for layer in self.layers for p in layer.params.values())
        other = sum(int(b.size) for layer in self.layers
                    for b in getattr(layer, "buffers", {}).values())
        return trainable, other

    def summary(self, print_fn=print):
        """Print a table: layer name (type), output shape (None = batch), parameter count."""
        self._require_built()
        rows = [(f"{layer.name} ({type(layer).__name__})",
                 str((None,) + tuple(layer.output_shape)),
                 f"{sum(int(p.size) for p in layer.params.values()):,}") for layer in self.layers]
        heads = ("Layer (type)", "Output shape", "Param #")
        w0 = max([len(heads[0])] + [len(r[0]) for r in rows]) + 2
        w1 = max([len(heads[1])] + [len(r[1]) for r in rows]) + 2
        w2 = max([len(heads[2])] + [len(r[2]) for r in rows])
        width = w0 + w1 + w2
        trainable, other = self.count_params()
        lines = [f'Model: "{self.name}"', "-" * width,
                 f"{heads[0]:<{w0}}{heads[1]:<{w1}}{heads[2]:>{w2}}", "=" * width]
        lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in rows]
        lines += ["=" * width, f"Total params: {trainable + other:,}",
                  f"Trainable params: {trainable:,}", f"Non-trainable params: {other:,}",
                  "-" * width]
        for line in lines:
            print_fn(line)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=("accuracy",)):
        """Choose the optimizer ('adam', 'sgd', 'rmsprop' or an instance), the loss (a name or
        a cycnn loss) and the metrics (only 'accuracy' is known)."""
        opt = _optimizer_from(optimizer)
        loss_obj = _loss_from(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, str):
            metrics = [metrics]
        names = []
        for metric in metrics:
            if not isinstance(metric, str) or metric.lower() not in _METRIC_NAMES:
                raise ValueError(f"unknown metric {metric!r}; only 'accuracy' is supported")
            names.append(_METRIC_NAMES[metric.lower()])
        last_activation = getattr(self.layers[-1], "activation", None) if self.layers else None
        if isinstance(loss_obj, _losses.CrossEntropy) and isinstance(last_activation,
                                                                    _layers.Softmax):
            warnings.warn("the last layer applies activation='softmax' and 'cross_entropy' applies "
                          "its own softmax to the model's outputs: drop the activation (train on "
                          "logits) or use a separate Softmax layer, which fit skips",
                          UserWarning, stacklevel=2)
        self.optimizer = opt
        self.loss = loss_obj
        self.metrics = list(dict.fromkeys(names))
        self._base_lr = float(opt.lr)

    def _require_compiled(self, what):
        if self.loss is None or self.optimizer is None:
            raise ValueError(f"call compile(optimizer, loss) before {what}()")

    @property
    def _fuse_softmax(self):
        """Train on logits: the last layer is Softmax and the loss applies its own softmax."""
        return (bool(self.layers) and isinstance(self.layers[-1], _layers.Softmax)
                and isinstance(self.loss, _losses.CrossEntropy))

    @property
    def _threshold(self):
        """Decision threshold of a single output: 0.5 for probabilities, 0 for logits."""
        return 0.0 if getattr(self.loss, "from_logits", False) else 0.5

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x, training=False):
        """Run every layer on a prepared float batch (N, *input_shape); returns the output."""
        return self._forward(x, training, len(self.layers))

    def backward(self, dy):
        """Back-propagate dL/d(output) through every layer; fills :attr:`grads`, returns dL/dx."""
        return self._backward(dy, len(self.layers))

    def _forward(self, x, training, n_layers):
        for layer in self.layers[:n_layers]:
            x = layer.forward(x, training=training)
        return x

    def _backward(self, dy, n_layers):
        for layer in reversed(self.layers[:n_layers]):
            dy = layer.backward(dy)
        return dy

    # ------------------------------------------------------------------ data checks
    def _check_x(self, x, name="x"):
        x = _as_data(x, name)
        self._require_built(x)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{name} must have shape (N, {', '.join(map(str, self.input_shape))}) "
                             f"(samples of the model's input_shape {self.input_shape}), got "
                             f"shape {x.shape}")
        if len(x) == 0:
            raise ValueError(f"{name} holds no samples (shape {x.shape})")
        return x

    def _check_xy(self, x, y, xname="x", yname="y"):
        x = self._check_x(x, xname)
        y = _as_data(y, yname)
        if len(y) != len(x):
            raise ValueError(f"{xname} and {yname} must hold as many samples, got {len(x)} "
                             f"({xname} shape {x.shape}) and {len(y)} ({yname} shape {y.shape})")
        return x, y

    # ------------------------------------------------------------------ training
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True,
            augment=None, lr_schedule=None, verbose=1, initial_epoch=0):
        """Train for ``epochs`` passes over (x, y); returns a :class:`History`.

        x: (N, *input_shape), uint8 (scaled to [0, 1]) or float. y: (N,) int labels or (N, C)
        targets. ``augment``: a callable applied to each float training batch.
        ``lr_schedule(epoch, base_lr) -> lr`` sets the optimizer's lr at the start of each
        epoch (base_lr is the lr the optimizer had at compile time). ``initial_epoch`` resumes
        a run: epochs initial_epoch .. epochs-1 are trained (shuffling continues from the
        shared generator). verbose: 0 silent, 1 progress bar (on a terminal) and one line per
        epoch, 2 one line per epoch. A loss that becomes NaN or infinite stops training with
        FloatingPointError (before that batch updates the weights).
        """
        self._require_compiled("fit")
        epochs = _check_int(epochs, "epochs", 0)
        batch_size = _check_int(batch_size, "batch_size", 1)
        initial_epoch = _check_int(initial_epoch, "initial_epoch", 0)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable on float batches, "
                            f"got {_describe(augment)}")
        if lr_schedule is not None and not callable(lr_schedule):
            raise TypeError(f"lr_schedule must be a callable (epoch, base_lr) -> lr, "
                            f"got {_describe(lr_schedule)}")
        x, y = self._check_xy(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"validation_data must be a pair (x_val, y_val), got "
                                 f"{_describe(validation_data)}")
            val_x, val_y = self._check_xy(*validation_data, xname="x_val", yname="y_val")

        n = len(x)
        batch_size = min(batch_size, n)
        n_batches = -(-n // batch_size)
        n_layers = len(self.layers) - 1 if self._fuse_softmax else len(self.layers)
        want_acc = "accuracy" in self.metrics
        threshold = self._threshold
        batches = _Batches(x, batch_size)
        progress = _Progress(verbose, epochs, n_batches)
        history = History()
        for epoch in range(initial_epoch, epochs):
            if lr_schedule is not None:
                self.optimizer.lr = float(lr_schedule(epoch, self._base_lr))
            progress.start(epoch)
            t0 = time.perf_counter()
            order = get_rng().permutation(n) if shuffle else None
            loss_sum = 0.0
            correct = 0
            seen = 0
            for b in range(n_batches):
                start, stop = b * batch_size, min((b + 1) * batch_size, n)
                if order is not None:
                    index = order[start:stop]
                    xb, yb = batches.take(index), _prepare_y(y[index])
                else:
                    xb = batches.slice(start, stop, copy=augment is not None)
                    yb = _prepare_y(y[start:stop])
                if augment is not None:
                    xb = augment(xb)
                saved = [(buf, buf.copy()) for layer in self.layers
                         for buf in layer.buffers.values()]   # BatchNorm running statistics
                out = self._forward(xb, True, n_layers)
                loss, dy = self.loss.value_and_grad(out, yb)
                if not math.isfinite(loss):
                    for buf, before in saved:
                        buf[...] = before
                    raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, batch "
                                             f"{b + 1}: lower the learning rate?")
                self._backward(dy, n_layers)
                self.optimizer.step(self.params, self.grads)
                count = stop - start
                seen += count
                loss_sum += float(loss) * count
                if want_acc:
                    correct += _accuracy(out, yb, threshold)
                progress.update(b + 1, seen, loss_sum / seen, correct / seen if want_acc else None)
            train_time = time.perf_counter() - t0
            logs = {"loss": loss_sum / n}
            if want_acc:
                logs["accuracy"] = correct / n
            if validation_data is not None:
                val = self._evaluate(val_x, val_y, max(batch_size, 256))
                logs.update({"val_" + key: value for key, value in val.items()})
            logs["lr"] = float(self.optimizer.lr)
            logs["time"] = time.perf_counter() - t0
            logs["images_per_sec"] = n / train_time if train_time > 0 else float("inf")
            history.append(epoch, logs)
            progress.end(logs)
        return history

    def evaluate(self, x, y, batch_size=256, verbose=0):
        """Loss (and metrics) over (x, y), in inference mode: ``{'loss': ..., 'accuracy': ...}``."""
        self._require_compiled("evaluate")
        batch_size = _check_int(batch_size, "batch_size", 1)
        x, y = self._check_xy(x, y)
        result = self._evaluate(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{key} {value:.4f}" for key, value in result.items()))
        return result

    def _evaluate(self, x, y, batch_size):
        n = len(x)
        batch_size = min(batch_size, n)
        n_layers = len(self.layers) - 1 if self._fuse_softmax else len(self.layers)
        batches = _Batches(x, batch_size)
        threshold = self._threshold
        loss_sum = 0.0
        correct = 0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yb = _prepare_y(y[start:stop])
            out = self._forward(batches.slice(start, stop), False, n_layers)
            loss_sum += float(self.loss(out, yb)) * (stop - start)
            if "accuracy" in self.metrics:
                correct += _accuracy(out, yb, threshold)
        result = {"loss": loss_sum / n}
        if "accuracy" in self.metrics:
            result["accuracy"] = correct / n
        return result

    def predict(self, x, batch_size=256):
        """Outputs of the last layer for every sample of x, as one float32 array."""
        batch_size = _check_int(batch_size, "batch_size", 1)
        x = self._check_x(x)
        n = len(x)
        batch_size = min(batch_size, n)
        batches = _Batches(x, batch_size)
        result = None
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            out = self._forward(batches.slice(start, stop), False, len(self.layers))
            if result is None:
                result = np.empty((n,) + out.shape[1:], out.dtype)
            result[start:stop] = out
        return result

    # ------------------------------------------------------------------ config and saving
    def get_config(self):
        """JSON-able description of the architecture (not the weights)."""
        return {"name": self.name,
                "input_shape": list(self.input_shape) if self.input_shape is not None else None,
                "layers": [_class_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """A new, freshly initialised model from :meth:`get_config` output."""
        layers = []
        for entry in config["layers"]:
            layer_cls = _layers.get(entry["class_name"])
            layers.append(layer_cls.from_config(entry["config"]))
        return cls(layers, input_shape=config.get("input_shape"), name=config.get("name"))

    def _compile_config(self):
        if self.loss is None or self.optimizer is None:
            return None
        return {"optimizer": _class_config(self.optimizer), "loss": _class_config(self.loss),
                "metrics": list(self.metrics), "base_lr": self._base_lr}

    def save(self, path):
        """Write architecture, weights, buffers, compile settings and optimizer state to one
        file (see the module docstring for the format). The write is atomic."""
        path = os.fspath(path)
        arrays = {}
        if self.built:
            for i, layer in enumerate(self.layers):
                for key, value in layer.params.items():
                    arrays[f"layers.{i}.params.{key}"] = np.asarray(value)
                for key, value in getattr(layer, "buffers", {}).items():
                    arrays[f"layers.{i}.buffers.{key}"] = np.asarray(value)
        if self.optimizer is not None:
            for key, value in self.optimizer.state_dict().items():
                arrays[f"optimizer.{key}"] = np.asarray(value)
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": self.get_config(),
                  "compile": self._compile_config(), "arrays": sorted(arrays)}
        arrays[_HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                   suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __repr__(self):
        return (f"Sequential(name={self.name!r}, layers={len(self.layers)}, "
                f"input_shape={self.input_shape})")


def _read_file(path):
    """(header dict, {name: array}) of a cycnn model file; ValueError when it is not one."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such cycnn model file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"expected a cycnn model file, got a directory: {path!r}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"not a cycnn model file: {path!r} is empty")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise ValueError("a single .npy array, not an archive")
            arrays = {name: archive[name] for name in archive.files}
    except OSError as exc:
        if isinstance(exc, (PermissionError, FileNotFoundError)):
            raise
        raise ValueError(f"not a cycnn model file (or damaged): {path!r} ({exc})") from None
    except Exception as exc:  # BadZipFile, zlib errors, bad npy headers, pickled data ...
        raise ValueError(f"not a cycnn model file (or damaged): {path!r} "
                         f"({type(exc).__name__}: {exc})") from None
    raw = arrays.pop(_HEADER_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"not a cycnn model file: {path!r} has no cycnn header")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"damaged cycnn model file: {path!r} (header: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"not a cycnn model file: {path!r} (format "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"unsupported cycnn model file version {version!r} in {path!r}; "
                         f"this cycnn reads versions up to {FORMAT_VERSION}")
    missing = set(header.get("arrays", [])) - set(arrays)
    if missing:
        raise ValueError(f"damaged cycnn model file: {path!r} lacks {sorted(missing)}")
    return header, arrays


def _restore(target, name, arrays, key, path):
    value = arrays.get(key)
    if value is None:
        raise ValueError(f"damaged cycnn model file: {path!r} lacks {key!r}")
    if value.dtype.kind not in "iuf":
        raise ValueError(f"damaged cycnn model file: {path!r}: {key} holds {value.dtype} values, "
                         f"not numbers")
    if value.shape != target[name].shape:
        raise ValueError(f"cycnn model file {path!r}: {key} has shape {value.shape}, the model "
                         f"expects {target[name].shape}")
    target[name][...] = value


def load_model(path):
    """Load a model written by :meth:`Sequential.save`: architecture, weights and, when it was
    compiled, optimizer, loss, metrics and optimizer state (so training can continue)."""
    path = os.fspath(path)
    header, arrays = _read_file(path)
    # Building the layers draws initial weights from the shared generator; put its state back
    # so that loading a model does not change what a seeded run does next.
    rng_state = get_rng().bit_generator.state
    try:
        model = Sequential.from_config(header["config"])
        compiled = header.get("compile")
        if compiled is not None:
            model.compile(_optimizer_from(compiled["optimizer"]), _loss_from(compiled["loss"]),
                          compiled["metrics"])
            model._base_lr = compiled.get("base_lr", model._base_lr)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"damaged cycnn model file: {path!r} (config: {type(exc).__name__}: "
                         f"{exc})") from None
    finally:
        get_rng().bit_generator.state = rng_state
    if model.built:
        for i, layer in enumerate(model.layers):
            for key in layer.params:
                _restore(layer.params, key, arrays, f"layers.{i}.params.{key}", path)
            buffers = getattr(layer, "buffers", {})
            for key in buffers:
                _restore(buffers, key, arrays, f"layers.{i}.buffers.{key}", path)
    state = {key[len("optimizer."):]: value for key, value in arrays.items()
             if key.startswith("optimizer.")}
    if model.optimizer is not None and state:
        model.optimizer.load_state_dict(state)
    return model
