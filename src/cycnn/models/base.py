"""The :class:`Model` base: compile / fit / evaluate / predict / summary / save over a graph of
layers that a subclass (``Sequential``, the functional ``Model``) defines.

A subclass provides ``layers`` (every layer once, in execution order), ``input_shape``,
``build``/``_require_built``, ``_forward(x, training, skip_softmax)`` and ``_backward(dy,
skip_softmax)``, ``get_config``/``from_config`` and ``_output_layer()``; everything users call
lives here, once.

Conventions
-----------
* Shapes given to the model (``input_shape``) are per sample, without the batch axis.
* Inputs and labels: see :mod:`cycnn.models.data` (uint8 images scaled to [0, 1], a batch at a
  time; int class ids or float targets).
* Softmax fusion: when the last layer is ``Softmax`` and the loss is cross-entropy (which works on
  logits, with a fused softmax), training and ``evaluate`` skip that last Softmax and feed the
  logits to the loss. ``predict`` and ``forward`` still apply it, so they return probabilities.
* ``cycnn.seed(n)`` (with the same thread count) makes ``fit`` reproducible: shuffling,
  initialisation and dropout all draw from the one generator of ``cycnn._random``.
"""
import math
import time
import warnings

import numpy as np

from .. import layers as _layers
from .. import losses as _losses
from .. import optim as _optim
from .._random import get_rng
from . import saving
from ._util import check_int, describe
from .callbacks import History
from .data import Batches, as_data, prepare_y
from .progress import Progress

__all__ = ["Model"]

_METRIC_NAMES = {"accuracy": "accuracy", "acc": "accuracy"}


def _class_config(obj):
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def _optimizer_from(spec):
    """An optimizer from a name ('adam', 'sgd', 'rmsprop'), an instance, or a saved config."""
    if isinstance(spec, (str, dict, _optim.Optimizer)):
        return _optim.get(spec)
    raise TypeError(f"optimizer must be 'sgd', 'adam', 'rmsprop' or an optimizer instance, "
                    f"got {describe(spec)}")


def _loss_from(spec):
    """A loss from a name ('cross_entropy', 'mse', ...), an instance, or a saved config."""
    if isinstance(spec, (str, dict, _losses.Loss)) or (isinstance(spec, type)
                                                        and issubclass(spec, _losses.Loss)):
        return _losses.get(spec)
    raise TypeError(f"loss must be a loss name or a cycnn loss, got {describe(spec)}")


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


class Model:
    """Base class of the models: training, evaluation, prediction and saving of a layer graph."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        saving.register_model_class(cls)

    def _init_training_state(self):
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self._base_lr = None

    # ------------------------------------------------------------------ graph (subclasses)
    def _output_layer(self):
        """The layer producing the output (None for an empty model)."""
        raise NotImplementedError

    def _forward(self, x, training, skip_softmax):
        raise NotImplementedError

    def _backward(self, dy, skip_softmax):
        raise NotImplementedError

    def forward(self, x, training=False):
        """Run every layer on a prepared float batch (N, *input_shape); returns the output."""
        return self._forward(x, training, False)

    def backward(self, dy):
        """Back-propagate dL/d(output) through every layer; fills :attr:`grads`, returns dL/dx."""
        return self._backward(dy, False)

    # ------------------------------------------------------------------ parameters
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
        last_activation = getattr(self._output_layer(), "activation", None)
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
        return (isinstance(self._output_layer(), _layers.Softmax)
                and isinstance(self.loss, _losses.CrossEntropy))

    @property
    def _threshold(self):
        """Decision threshold of a single output: 0.5 for probabilities, 0 for logits."""
        return 0.0 if getattr(self.loss, "from_logits", False) else 0.5

    # ------------------------------------------------------------------ data checks
    def _check_x(self, x, name="x"):
        x = as_data(x, name)
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
        y = as_data(y, yname)
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
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        initial_epoch = check_int(initial_epoch, "initial_epoch", 0)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable on float batches, "
                            f"got {describe(augment)}")
        if lr_schedule is not None and not callable(lr_schedule):
            raise TypeError(f"lr_schedule must be a callable (epoch, base_lr) -> lr, "
                            f"got {describe(lr_schedule)}")
        x, y = self._check_xy(x, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"validation_data must be a pair (x_val, y_val), got "
                                 f"{describe(validation_data)}")
            val_x, val_y = self._check_xy(*validation_data, xname="x_val", yname="y_val")

        n = len(x)
        batch_size = min(batch_size, n)
        n_batches = -(-n // batch_size)
        skip = self._fuse_softmax
        want_acc = "accuracy" in self.metrics
        threshold = self._threshold
        batches = Batches(x, batch_size)
        progress = Progress(verbose, epochs, n_batches)
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
                    xb, yb = batches.take(index), prepare_y(y[index])
                else:
                    xb = batches.slice(start, stop, copy=augment is not None)
                    yb = prepare_y(y[start:stop])
                if augment is not None:
                    xb = augment(xb)
                saved = [(buf, buf.copy()) for layer in self.layers
                         for buf in layer.buffers.values()]   # BatchNorm running statistics
                out = self._forward(xb, True, skip)
                loss, dy = self.loss.value_and_grad(out, yb)
                if not math.isfinite(loss):
                    for buf, before in saved:
                        buf[...] = before
                    raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, batch "
                                             f"{b + 1}: lower the learning rate?")
                self._backward(dy, skip)
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
        batch_size = check_int(batch_size, "batch_size", 1)
        x, y = self._check_xy(x, y)
        result = self._evaluate(x, y, batch_size)
        if verbose:
            print(" - ".join(f"{key} {value:.4f}" for key, value in result.items()))
        return result

    def _evaluate(self, x, y, batch_size):
        n = len(x)
        batch_size = min(batch_size, n)
        skip = self._fuse_softmax
        batches = Batches(x, batch_size)
        threshold = self._threshold
        loss_sum = 0.0
        correct = 0
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yb = prepare_y(y[start:stop])
            out = self._forward(batches.slice(start, stop), False, skip)
            loss_sum += float(self.loss(out, yb)) * (stop - start)
            if "accuracy" in self.metrics:
                correct += _accuracy(out, yb, threshold)
        result = {"loss": loss_sum / n}
        if "accuracy" in self.metrics:
            result["accuracy"] = correct / n
        return result

    def predict(self, x, batch_size=256):
        """Outputs of the last layer for every sample of x, as one float32 array."""
        batch_size = check_int(batch_size, "batch_size", 1)
        x = self._check_x(x)
        n = len(x)
        batch_size = min(batch_size, n)
        batches = Batches(x, batch_size)
        result = None
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            out = self._forward(batches.slice(start, stop), False, False)
            if result is None:
                result = np.empty((n,) + out.shape[1:], out.dtype)
            result[start:stop] = out
        return result

    # ------------------------------------------------------------------ config and saving
    def _compile_config(self):
        if self.loss is None or self.optimizer is None:
            return None
        return {"optimizer": _class_config(self.optimizer), "loss": _class_config(self.loss),
                "metrics": list(self.metrics), "base_lr": self._base_lr}

    def _restore_compile(self, compiled):
        """Compile again from :meth:`_compile_config` output (used by ``load_model``)."""
        self.compile(_optimizer_from(compiled["optimizer"]), _loss_from(compiled["loss"]),
                     compiled["metrics"])
        self._base_lr = compiled.get("base_lr", self._base_lr)

    def save(self, path):
        """Write architecture, weights, buffers, compile settings and optimizer state to one
        file (format: :mod:`cycnn.models.saving`). The write is atomic."""
        saving.save_model(self, path)
