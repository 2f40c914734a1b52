"""The :class:`Model`: compile / fit / train_step / evaluate / predict / summary / save over a
graph of layers (:class:`cycnn.models.functional.Graph`).

``cycnn.Model(inputs=..., outputs=...)`` builds that graph from symbolic tensors (the functional
API); ``cycnn.Sequential`` (a subclass) builds it as a chain from a list of layers. Both then run
on the same engine: everything users call lives here, once.

Conventions
-----------
* Shapes given to the model are per sample, without the batch axis.
* Several inputs / outputs: ``x`` (and ``y``) are lists with one array per input (output), in
  the order given to ``Model(inputs=[...], outputs=[...])``; one input or output takes a plain
  array. ``predict`` and ``forward`` return a list when there are several outputs.
* Inputs and labels: see :mod:`cycnn.models.data` (uint8 images scaled to [0, 1], a batch at a
  time; int class ids or float targets).
* Softmax fusion: when an output layer is ``Softmax`` and its loss is cross-entropy (which works
  on logits, with a fused softmax), training and ``evaluate`` skip that Softmax and feed the
  logits to the loss. ``predict`` and ``forward`` still apply it, so they return probabilities.
* ``cycnn.seed(n)`` (with the same thread count) makes ``fit`` reproducible: shuffling,
  initialisation and dropout all draw from the one generator of ``cycnn._random``.
"""
import math
import numbers
import time
import warnings

import numpy as np

from .. import layers as _layers
from .. import losses as _losses
from .. import distributed as _distributed
from .. import optim as _optim
from .._random import get_rng
from . import plan as _plan
from . import saving
from ._util import check_int, describe
from .callbacks import Callback, CallbackList, History, LearningRateScheduler
from .data import DTYPE, Batches, as_data, prepare_y
from .functional import Graph
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


def _split_rows(arrays, n_val):
    """(first rows, last n_val rows) of every array: the validation_split of Keras."""
    cut = len(arrays[0]) - n_val
    return [a[:cut] for a in arrays], [a[cut:] for a in arrays]


class Model:
    """A model: layers wired from ``inputs`` to ``outputs`` (the functional API).

    Parameters
    ----------
    inputs : SymbolicTensor or list of them
        What :func:`cycnn.Input` returned.
    outputs : SymbolicTensor or list of them
        What the last layer calls returned.
    name : str, optional

    Attributes: ``layers`` (every layer once, in execution order), ``inputs`` / ``outputs``,
    ``input_shape`` / ``output_shape`` (per sample; a list when there are several),
    ``optimizer``, ``loss``, ``metrics`` (after :meth:`compile`), ``stop_training`` (a callback
    sets it to end :meth:`fit` after the current batch).
    """

    _data_parallel = None   # cycnn.distributed's helper while fit runs data-parallel

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        saving.register_model_class(cls)

    def __init__(self, inputs=None, outputs=None, name=None):
        if inputs is None or outputs is None:
            raise TypeError("Model needs inputs= and outputs= (symbolic tensors from cycnn.Input "
                            "and layer calls); use cycnn.Sequential for a plain stack")
        self._set_name(name, "model")
        self._graph = Graph(inputs, outputs)
        self.built = True
        self._init_training_state()

    def _set_name(self, name, default):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {describe(name)}")
        self.name = name or default

    def _init_training_state(self):
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self._losses = []
        self._base_lr = None
        self.stop_training = False

    # ------------------------------------------------------------------ structure
    @property
    def layers(self):
        """Every layer once, in the order the graph first runs them."""
        return self._graph.layers

    @property
    def inputs(self):
        self._require_built()
        return list(self._graph.inputs)

    @property
    def outputs(self):
        self._require_built()
        return list(self._graph.outputs)

    @property
    def input_shape(self):
        """Per-sample input shape (a list of them for several inputs)."""
        shapes = self._graph.input_shapes
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        """Per-sample output shape (a list of them for several outputs)."""
        shapes = self._graph.output_shapes
        return shapes[0] if len(shapes) == 1 else shapes

    def get_layer(self, name=None, index=None):
        """The layer called ``name`` (or at position ``index`` of :attr:`layers`)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer needs exactly one of name= and index=")
        if index is not None:
            index = check_int(index, "index", -len(self.layers))
            if index >= len(self.layers):
                raise ValueError(f"index {index} is out of range: the model has "
                                 f"{len(self.layers)} layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in model {self.name!r}; layers: "
                         f"{[layer.name for layer in self.layers]}")

    def _require_built(self, x=None):
        """Build the graph when it is not (Sequential without input_shape); no-op here."""

    def _output_names(self):
        names = []
        for i, t in enumerate(self._graph.outputs):
            layer = self._graph.output_layer(i)
            names.append(layer.name if layer is not None else t.name)
        return names

    # ------------------------------------------------------------------ forward / backward
    def _skip(self):
        """Per output: train on logits (its layer is Softmax and its loss applies softmax)."""
        if not self._losses:
            return ()
        return tuple(isinstance(self._graph.output_layer(i), _layers.Softmax)
                     and isinstance(loss, _losses.CrossEntropy)
                     for i, loss in enumerate(self._losses))

    def _unwrap(self, values):
        return values[0] if len(values) == 1 else values

    def forward(self, x, training=False):
        """Run the graph on prepared float batches (one array per input; a plain array for one
        input); returns the output (a list for several outputs). Keeps what :meth:`backward`
        needs."""
        self._require_built(x if isinstance(x, np.ndarray) else None)
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        return self._unwrap(self._graph.forward(xs, training))

    def backward(self, dy):
        """Back-propagate dL/d(output) (a list for several outputs) through the last
        :meth:`forward`; fills :attr:`grads` and returns dL/dx (a list for several inputs)."""
        dys = list(dy) if isinstance(dy, (list, tuple)) else [dy]
        if len(dys) != len(self._graph.outputs):
            raise ValueError(f"backward needs one gradient per output ({len(self._graph.outputs)}"
                             f"), got {len(dys)}")
        return self._unwrap(self._graph.backward(dys))

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

    def get_weights(self):
        """Copies of every parameter and buffer, layer by layer (params first, key order)."""
        return [np.array(a) for layer in self.layers
                for store in (layer.params, layer.buffers) for a in store.values()]

    def set_weights(self, weights):
        """Copy ``weights`` (as :meth:`get_weights` returns) into the layers' arrays."""
        targets = [a for layer in self.layers
                   for store in (layer.params, layer.buffers) for a in store.values()]
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"set_weights needs {len(targets)} arrays, got {len(weights)}")
        for i, (target, value) in enumerate(zip(targets, weights)):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(f"weight {i} must have shape {target.shape}, got {value.shape}")
        for target, value in zip(targets, weights):
            target[...] = value
        self.mark_weights_changed()

    # ------------------------------------------------------------------ summary
    def _summary_rows(self, shape_fn=None):
        rows = []
        graph = self._graph
        for layer in self.layers:
            nodes = [n for n in graph.nodes if n.layer is layer]
            shape = nodes[0].output.shape if nodes else (None,) + tuple(layer.output_shape)
            if shape_fn is not None:
                shape = shape_fn(tuple(shape))
            sources = [t.name for n in nodes for t in n.inputs]
            rows.append((f"{layer.name} ({type(layer).__name__})", str(shape),
                         f"{sum(int(p.size) for p in layer.params.values()):,}",
                         ", ".join(sources)))
        return rows

    _summary_links = True  # the 'Connected to' column (not for Sequential's plain chain)

    def summary(self, print_fn=print, shape_fn=None):
        """Print a table: layer name (type), output shape (None = batch), parameter count and,
        for a functional model, the tensors each layer reads ('Connected to'). ``shape_fn``
        maps each output shape before it is printed (the Keras front end shows channels-last
        shapes)."""
        self._require_built()
        heads = ("Layer (type)", "Output shape", "Param #", "Connected to")
        rows = self._summary_rows(shape_fn)
        if not self._summary_links:
            heads, rows = heads[:3], [r[:3] for r in rows]
        w = [max([len(heads[k])] + [len(r[k]) for r in rows]) for k in range(len(heads))]

        def line(cells):
            text = f"{cells[0]:<{w[0] + 2}}{cells[1]:<{w[1] + 2}}{cells[2]:>{w[2]}}"
            return text + (f"  {cells[3]}" if len(cells) > 3 else "")

        width = w[0] + w[1] + w[2] + 4 + (w[3] + 2 if len(w) > 3 else 0)
        trainable, other = self.count_params()
        lines = [f'Model: "{self.name}"', "-" * width, line(heads), "=" * width]
        lines += [line(r) for r in rows]
        lines += ["=" * width, f"Total params: {trainable + other:,}",
                  f"Trainable params: {trainable:,}", f"Non-trainable params: {other:,}",
                  "-" * width]
        for text in lines:
            print_fn(text)

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="adam", loss="cross_entropy", metrics=("accuracy",)):
        """Choose the optimizer ('adam', 'sgd', 'rmsprop' or an instance), the loss (a name or
        a cycnn loss; for several outputs one loss for all or a list, one per output) and the
        metrics (only 'accuracy' is known)."""
        self._require_built()
        n_out = len(self._graph.outputs)
        opt = _optimizer_from(optimizer)
        if isinstance(loss, (list, tuple)):
            if len(loss) != n_out:
                raise ValueError(f"loss: a list needs one loss per output ({n_out}), got "
                                 f"{len(loss)}")
            loss_objs = [_loss_from(item) for item in loss]
            loss_obj = loss_objs
        else:
            loss_obj = _loss_from(loss)
            loss_objs = [loss_obj] * n_out
        if metrics is None:
            metrics = []
        if isinstance(metrics, str):
            metrics = [metrics]
        names = []
        for metric in metrics:
            if not isinstance(metric, str) or metric.lower() not in _METRIC_NAMES:
                raise ValueError(f"unknown metric {metric!r}; only 'accuracy' is supported")
            names.append(_METRIC_NAMES[metric.lower()])
        for i, item in enumerate(loss_objs):
            last_activation = getattr(self._graph.output_layer(i), "activation", None)
            if isinstance(item, _losses.CrossEntropy) and isinstance(last_activation,
                                                                     _layers.Softmax):
                warnings.warn("the last layer applies activation='softmax' and 'cross_entropy' "
                              "applies its own softmax to the model's outputs: drop the "
                              "activation (train on logits) or use a separate Softmax layer, "
                              "which fit skips", UserWarning, stacklevel=2)
        self.optimizer = opt
        self.loss = loss_obj
        self._losses = loss_objs
        self.metrics = list(dict.fromkeys(names))
        self._base_lr = float(opt.lr)

    def _require_compiled(self, what):
        if self.loss is None or self.optimizer is None:
            raise ValueError(f"call compile(optimizer, loss) before {what}()")

    def _threshold(self, i=0):
        """Decision threshold of a single output: 0.5 for probabilities, 0 for logits."""
        return 0.0 if getattr(self._losses[i], "from_logits", False) else 0.5

    # ------------------------------------------------------------------ data checks
    def _as_list(self, value, count, name):
        if count == 1:
            if isinstance(value, (list, tuple)) and len(value) == 1 \
                    and not np.isscalar(value[0]) and np.ndim(value[0]) > 0:
                return [value[0]]
            return [value]
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise ValueError(f"{name} must be a list of {count} arrays (the model has {count} "
                             f"{'inputs' if name.startswith('x') else 'outputs'}), got "
                             f"{describe(value)}")
        return list(value)

    def _check_x(self, x, name="x"):
        if isinstance(x, np.ndarray):
            self._require_built(as_data(x, name))
        else:
            self._require_built()
        shapes = self._graph.input_shapes
        xs = [as_data(v, name if len(shapes) == 1 else f"{name}[{i}]")
              for i, v in enumerate(self._as_list(x, len(shapes), name))]
        for i, (arr, shape) in enumerate(zip(xs, shapes)):
            label = name if len(shapes) == 1 else f"{name}[{i}]"
            if tuple(arr.shape[1:]) != shape:
                raise ValueError(f"{label} must have shape (N, {', '.join(map(str, shape))}) "
                                 f"(samples of the model's input_shape {shape}), got "
                                 f"shape {arr.shape}")
            if len(arr) == 0:
                raise ValueError(f"{label} holds no samples (shape {arr.shape})")
            if len(arr) != len(xs[0]):
                raise ValueError(f"every input must hold as many samples: {name}[0] has "
                                 f"{len(xs[0])}, {label} has {len(arr)}")
        return xs

    def _check_xy(self, x, y, xname="x", yname="y"):
        xs = self._check_x(x, xname)
        n_out = len(self._graph.outputs)
        ys = [as_data(v, yname if n_out == 1 else f"{yname}[{i}]")
              for i, v in enumerate(self._as_list(y, n_out, yname))]
        for i, arr in enumerate(ys):
            if len(arr) != len(xs[0]):
                label = yname if n_out == 1 else f"{yname}[{i}]"
                raise ValueError(f"{xname} and {yname} must hold as many samples, got "
                                 f"{len(xs[0])} ({xname} shape {xs[0].shape}) and {len(arr)} "
                                 f"({label} shape {arr.shape})")
        return xs, ys

    def _batch_arrays(self, x, y):
        """x and y of one batch as the lists the graph and the losses take (float32 inputs,
        uint8 scaled by 1/255; labels as :func:`~cycnn.models.data.prepare_y`)."""
        xs, ys = self._check_xy(x, y)
        prepared = []
        for arr in xs:
            if arr.dtype == np.uint8:
                arr = np.divide(arr, DTYPE(255), dtype=DTYPE)
            elif arr.dtype != DTYPE:
                arr = arr.astype(DTYPE)
            prepared.append(arr)
        return prepared, [prepare_y(arr) for arr in ys]

    # ------------------------------------------------------------------ one training step
    def train_step(self, x, y):
        """One optimisation step on one batch: forward (training mode), loss, backward, update.

        ``x``: the batch (a list for several inputs; uint8 is scaled to [0, 1], other numbers
        are cast to float32); ``y``: its labels or targets (a list for several outputs). Returns
        the batch's logs: ``{'loss': float}`` plus ``'accuracy'`` when compiled with that metric
        (and, with several outputs, ``'<output>_loss'`` / ``'<output>_accuracy'`` per output).
        ``fit`` calls it for every batch, so a subclass may override it; custom loops, the
        benchmarks and data-parallel training call it instead of copying the steps. A loss that
        is NaN or infinite raises FloatingPointError before anything is updated (BatchNorm
        running statistics included).
        """
        self._require_compiled("train_step")
        xs, ys = self._batch_arrays(x, y)
        return self._train_step(xs, ys)

    def _train_step(self, xs, ys):
        graph = self._graph
        dp = self._data_parallel          # cycnn.distributed's helper while fit runs on ranks
        skip = self._skip()
        saved = [(buf, buf.copy()) for layer in self.layers
                 for buf in layer.buffers.values()]   # BatchNorm running statistics
        n_out = len(self._graph.outputs)
        want_acc = "accuracy" in self.metrics
        rows = len(xs[0])
        error = None
        if rows == 0:              # data-parallel: this rank's share of a tiny last batch
            return self._empty_share_step(dp, n_out, want_acc)
        try:
            outs = graph.forward(xs, True, skip)
            dys, losses = [], []
            for out, yb, loss_fn in zip(outs, ys, self._losses):
                value, dy = loss_fn.value_and_grad(out, yb)
                losses.append(float(value))
                dys.append(dy)
            accs = ([_accuracy(out, yb, self._threshold(i)) / len(yb)
                     for i, (out, yb) in enumerate(zip(outs, ys))] if want_acc else [])
            total = sum(losses)
            if not math.isfinite(total):
                error = FloatingPointError(f"loss became {total}: lower the learning rate?")
        except Exception as exc:
            if dp is None:
                raise
            error, losses, accs = exc, [0.0] * n_out, [0.0] * (n_out if want_acc else 0)
        total_rows = rows
        try:
            if dp is not None:     # global loss/accuracy, and did any rank fail?
                sums, total_rows = dp.agree([v * rows for v in losses + accs], rows, error)
                losses = [v / total_rows for v in sums[:n_out]]
                accs = [v / total_rows for v in sums[n_out:]]
            elif error is not None:
                raise error
        except Exception:
            for buf, before in saved:
                buf[...] = before
            raise
        graph.backward(dys, need_input_grads=False)
        grads = self.grads
        if dp is not None:         # mean gradient of the global batch: one allreduce
            grads = dp.reduce_grads(grads, rows, total_rows)
        self.optimizer.step(self.params, grads)
        self.mark_weights_changed()      # inference plans built on the old weights are stale
        logs = {}
        names = self._output_names() if n_out > 1 else None
        if names:
            for name, value in zip(names, losses):
                logs[f"{name}_loss"] = value
        logs["loss"] = sum(losses)
        if want_acc:
            if names:
                for name, acc in zip(names, accs):
                    logs[f"{name}_accuracy"] = acc
            else:
                logs["accuracy"] = accs[0]
        return logs

    def _empty_share_step(self, dp, n_out, want_acc):
        """A data-parallel step on a rank whose share of the batch is empty: it still takes
        part in the collectives (with zero rows and zero gradients) and applies the update."""
        sums, total_rows = dp.agree([0.0] * (n_out * (2 if want_acc else 1)), 0, None)
        grads = dp.reduce_grads([np.zeros_like(p) for p in self.params], 0, total_rows)
        self.optimizer.step(self.params, grads)
        self.mark_weights_changed()
        logs = {"loss": float(sum(sums[:n_out])) / total_rows}
        if want_acc and n_out == 1:
            logs["accuracy"] = float(sums[n_out]) / total_rows
        return logs

    # ------------------------------------------------------------------ training
    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, validation_split=0.0,
            shuffle=True, augment=None, lr_schedule=None, callbacks=None, verbose=1,
            initial_epoch=0):
        """Train for ``epochs`` passes over (x, y); returns a :class:`History`.

        x: (N, *input_shape), uint8 (scaled to [0, 1]) or float (a list for several inputs).
        y: (N,) int labels or (N, C) targets (a list for several outputs).
        ``validation_data=(x_val, y_val)`` or ``validation_split=f`` (the last fraction f of
        x and y, before shuffling, is held out, as Keras does) adds 'val_*' entries.
        ``augment``: a callable applied to each float training batch (single input).
        ``lr_schedule(epoch, base_lr) -> lr`` sets the optimizer's lr at the start of each
        epoch (base_lr is the lr the optimizer had at compile time); it is a shortcut for
        ``callbacks=[LearningRateScheduler(lr_schedule, from_initial=True)]``.
        ``callbacks``: :class:`~cycnn.models.callbacks.Callback` objects (EarlyStopping,
        ModelCheckpoint, CSVLogger, LearningRateScheduler or your own). ``initial_epoch``
        resumes a run: epochs initial_epoch .. epochs-1 are trained (shuffling continues from
        the shared generator). verbose: 0 silent, 1 progress bar (on a terminal) and one line
        per epoch, 2 one line per epoch. Each batch goes through :meth:`train_step`. A loss that
        becomes NaN or infinite stops training with FloatingPointError (before that batch
        updates the weights).
        """
        self._require_compiled("fit")
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        initial_epoch = check_int(initial_epoch, "initial_epoch", 0)
        if verbose not in (0, 1, 2) or isinstance(verbose, bool):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a callable on float batches, "
                            f"got {describe(augment)}")
        if lr_schedule is not None and not callable(lr_schedule):
            raise TypeError(f"lr_schedule must be a callable (epoch, base_lr) -> lr, "
                            f"got {describe(lr_schedule)}")
        if (isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real)
                or not 0.0 <= validation_split < 1.0):
            raise ValueError(f"validation_split must be a number in [0, 1), got "
                             f"{describe(validation_split)}")
        if validation_split and validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        user_callbacks = [] if callbacks is None else callbacks
        if not isinstance(user_callbacks, (list, tuple)) or not all(
                isinstance(cb, Callback) for cb in user_callbacks):
            raise TypeError(f"callbacks must be a list of cycnn Callback objects, got "
                            f"{describe(callbacks)}")
        xs, ys = self._check_xy(x, y)
        if augment is not None and len(xs) != 1:
            raise ValueError("augment works on models with one input")
        val = None
        if validation_split:
            n_val = int(len(xs[0]) * validation_split)
            if n_val < 1 or n_val >= len(xs[0]):
                raise ValueError(f"validation_split={validation_split} of {len(xs[0])} samples "
                                 f"leaves {n_val} for validation and {len(xs[0]) - n_val} for "
                                 f"training; both need at least one")
            (xs, val_xs), (ys, val_ys) = _split_rows(xs, n_val), _split_rows(ys, n_val)
            val = (val_xs, val_ys)
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(f"validation_data must be a pair (x_val, y_val), got "
                                 f"{describe(validation_data)}")
            val = self._check_xy(*validation_data, xname="x_val", yname="y_val")

        n = len(xs[0])
        batch_size = min(batch_size, n)
        n_batches = -(-n // batch_size)
        batches = [Batches(arr, batch_size) for arr in xs]
        dp = _distributed.active()       # data-parallel over MPI ranks (cycnn.distributed)
        if dp is not None:
            dp.broadcast_model(self)
            if dp.rank != 0:             # only rank 0 prints and writes files
                verbose = 0
                user_callbacks = [cb for cb in user_callbacks
                                  if not getattr(cb, "writes_files", False)]
        history = History()
        extra = [LearningRateScheduler(lr_schedule, from_initial=True)] if lr_schedule else []
        cbs = CallbackList([history, *extra, *user_callbacks], self,
                           {"epochs": epochs, "steps": n_batches, "samples": n,
                            "batch_size": batch_size, "verbose": verbose})
        progress = Progress(verbose, epochs, n_batches)
        self.stop_training = False
        want_acc = "accuracy" in self.metrics and len(ys) == 1
        cbs.on_train_begin()
        logs = {}
        try:
            self._data_parallel = dp
            self._fit_epochs(xs, ys, val, batches, batch_size, n_batches, epochs, initial_epoch,
                             shuffle, augment, cbs, progress, want_acc, dp, logs)
        finally:
            self._data_parallel = None
        cbs.on_train_end(self._last_logs)
        return history

    def _fit_epochs(self, xs, ys, val, batches, batch_size, n_batches, epochs, initial_epoch,
                    shuffle, augment, cbs, progress, want_acc, dp, logs):
        n = len(xs[0])
        self._last_logs = logs
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            progress.start(epoch)
            t0 = time.perf_counter()
            if not shuffle:
                order = None
            elif dp is None:
                order = get_rng().permutation(n)
            else:                        # rank 0's order on every rank
                order = dp.permutation(get_rng(), n)
            sums = {}
            seen = 0
            for b in range(n_batches):
                start, stop = b * batch_size, min((b + 1) * batch_size, n)
                lo, hi = (start, stop) if dp is None else dp.share(start, stop)
                if order is not None:
                    index = order[lo:hi]
                    xb = [bt.take(index) for bt in batches]
                    yb = [prepare_y(arr[index]) for arr in ys]
                else:
                    xb = [bt.slice(lo, hi, copy=augment is not None) for bt in batches]
                    yb = [prepare_y(arr[lo:hi]) for arr in ys]
                if augment is not None:
                    xb = [augment(xb[0])]
                count = stop - start
                cbs.on_batch_begin(b, {"size": count})
                try:
                    batch_logs = self.train_step(self._unwrap(xb), self._unwrap(yb))
                except FloatingPointError as exc:
                    raise FloatingPointError(f"{exc} (epoch {epoch + 1}, batch {b + 1})") \
                        from None
                seen += count
                for key, value in batch_logs.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * count
                progress.update(b + 1, seen, sums["loss"] / seen,
                                sums["accuracy"] / seen if want_acc else None)
                cbs.on_batch_end(b, dict(batch_logs, size=count))
                if self.stop_training:
                    break
            train_time = time.perf_counter() - t0
            if dp is not None:           # BatchNorm statistics: the mean over the ranks
                dp.average_buffers(self)
            logs = {key: value / seen for key, value in sums.items()}
            if "accuracy" in logs:  # an exact fraction of correct samples
                logs["accuracy"] = round(logs["accuracy"] * seen) / seen
            if val is not None:
                result = self._evaluate(val[0], val[1], max(batch_size, 256))
                logs.update({"val_" + key: value for key, value in result.items()})
            logs["lr"] = float(self.optimizer.lr)
            logs["time"] = time.perf_counter() - t0
            logs["images_per_sec"] = seen / train_time if train_time > 0 else float("inf")
            progress.end(logs)
            cbs.on_epoch_end(epoch, logs)
            self._last_logs = logs
            if self.stop_training:
                break

    def evaluate(self, x, y, batch_size=256, verbose=0):
        """Loss (and metrics) over (x, y), in inference mode: ``{'loss': ..., 'accuracy': ...}``
        (with several outputs also per output, as :meth:`train_step`)."""
        self._require_compiled("evaluate")
        batch_size = check_int(batch_size, "batch_size", 1)
        xs, ys = self._check_xy(x, y)
        result = self._evaluate(xs, ys, batch_size)
        if verbose:
            print(" - ".join(f"{key} {value:.4f}" for key, value in result.items()))
        return result

    def _evaluate(self, xs, ys, batch_size):
        n = len(xs[0])
        batch_size = min(batch_size, n)
        skip = self._skip()
        batches = [Batches(arr, batch_size) for arr in xs]
        names = self._output_names() if len(ys) > 1 else None
        want_acc = "accuracy" in self.metrics
        losses = [0.0] * len(ys)
        correct = [0] * len(ys)
        dp = _distributed.active()       # each rank evaluates its share; sums are reduced
        lo, hi = (0, n) if dp is None else dp.share(0, n)
        for start in range(lo, hi, batch_size):
            stop = min(start + batch_size, hi)
            outs = self._graph.forward([bt.slice(start, stop) for bt in batches], False, skip)
            for i, (out, arr, loss_fn) in enumerate(zip(outs, ys, self._losses)):
                yb = prepare_y(arr[start:stop])
                losses[i] += float(loss_fn(out, yb)) * (stop - start)
                if want_acc:
                    correct[i] += _accuracy(out, yb, self._threshold(i))
        if dp is not None:
            sums, _ = dp.agree(losses + correct, hi - lo, None)
            losses, correct = list(sums[:len(ys)]), [int(round(c)) for c in sums[len(ys):]]
        result = {"loss": sum(losses) / n}
        if want_acc and not names:
            result["accuracy"] = correct[0] / n
        if names:
            for i, name in enumerate(names):
                result[f"{name}_loss"] = losses[i] / n
                if want_acc:
                    result[f"{name}_accuracy"] = correct[i] / n
        return result

    def predict(self, x, batch_size=256):
        """Outputs for every sample of x, as one float32 array (a list for several outputs)."""
        batch_size = check_int(batch_size, "batch_size", 1)
        xs = self._check_x(x)
        n = len(xs[0])
        batch_size = min(batch_size, n)
        batches = [Batches(arr, batch_size) for arr in xs]
        results = None
        run = _plan.plan_for(self)
        if run is not None:         # the compiled inference plan (models/plan.py)
            result = np.empty((n,) + tuple(run.output_shape), np.float32)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                run(batches[0].slice(start, stop), out=result[start:stop])
            return result
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            outs = self._graph.forward([bt.slice(start, stop) for bt in batches], False)
            if results is None:
                results = [np.empty((n,) + out.shape[1:], out.dtype) for out in outs]
            for result, out in zip(results, outs):
                result[start:stop] = out
        return self._unwrap(results)

    def _inference_chain(self):
        """The layers ``predict`` runs as one compiled plan (models/plan.py): a graph that is a
        chain -- one input, one output, every layer called once on the previous one's output --
        of float32 layers; else None (the graph runs layer by layer)."""
        graph = getattr(self, "_graph", None)
        if graph is None or len(graph.inputs) != 1 or len(graph.outputs) != 1:
            return None
        prev = graph.inputs[0]
        for node in graph.nodes:
            if node.multi or len(node.inputs) != 1 or node.inputs[0] is not prev:
                return None
            prev = node.output
        chain = [node.layer for node in graph.nodes]
        if (prev is not graph.outputs[0] or not chain or len({id(l) for l in chain}) != len(chain)
                or any(layer.dtype != np.float32 for layer in chain)):
            return None
        return chain

    def compile_predictor(self):
        """The compiled inference plan of this model as a callable ``plan(x)`` on float32
        batches (N, *input_shape): a snapshot of the current weights (``predict`` itself always
        uses an up-to-date plan). ValueError when the model cannot be compiled."""
        self._require_built()
        plan = _plan.plan_for(self)
        if plan is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} has no compiled inference "
                             f"plan (only chains of float32 layers have one)")
        return plan

    def mark_weights_changed(self):
        """Record that weights were changed in place by hand (predict's plan is rebuilt)."""
        for layer in self.layers:
            layer.mark_weights_changed()

    # ------------------------------------------------------------------ config and saving
    def get_config(self):
        """JSON-able description of the architecture (layers and wiring, not the weights)."""
        return {"name": self.name, "layers": [_class_config(layer) for layer in self.layers],
                "graph": self._graph.get_config()}

    @staticmethod
    def _layers_from_config(config):
        """Fresh (unbuilt) layer objects from the 'layers' entry of a config."""
        entries = config["layers"]
        if not isinstance(entries, list):
            raise ValueError(f"config 'layers' must be a list, got {describe(entries)}")
        return [_layers.get(entry["class_name"]).from_config(entry["config"])
                for entry in entries]

    @classmethod
    def from_config(cls, config, layers=None):
        """A new model from :meth:`get_config` output (``layers``: the layer objects, already
        made from config['layers'], when the caller wants to supply them)."""
        if layers is None:
            layers = cls._layers_from_config(config)
        inputs, outputs = Graph.rebuild(config["graph"], layers)
        return cls(inputs=inputs, outputs=outputs, name=config.get("name"))

    def _compile_config(self):
        if self.loss is None or self.optimizer is None:
            return None
        loss = ([_class_config(item) for item in self.loss] if isinstance(self.loss, list)
                else _class_config(self.loss))
        return {"optimizer": _class_config(self.optimizer), "loss": loss,
                "metrics": list(self.metrics), "base_lr": self._base_lr}

    def _restore_compile(self, compiled):
        """Compile again from :meth:`_compile_config` output (used by ``load_model``)."""
        loss = compiled["loss"]
        loss = [_loss_from(item) for item in loss] if isinstance(loss, list) else _loss_from(loss)
        self.compile(_optimizer_from(compiled["optimizer"]), loss, compiled["metrics"])
        self._base_lr = compiled.get("base_lr", self._base_lr)

    def save(self, path):
        """Write architecture, weights, buffers, compile settings and optimizer state to one
        file (format: :mod:`cycnn.models.saving`). The write is atomic. In data-parallel
        training (:mod:`cycnn.distributed`) only rank 0 writes; the other ranks do nothing."""
        if not _distributed.is_main():
            return
        saving.save_model(self, path)

    def __repr__(self):
        return (f"Model(name={self.name!r}, layers={len(self.layers)}, "
                f"inputs={[t.sample_shape for t in self._graph.inputs]}, "
                f"outputs={[t.sample_shape for t in self._graph.outputs]})")


saving.register_model_class(Model)
