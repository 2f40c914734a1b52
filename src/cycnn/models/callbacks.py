"""Callbacks of ``fit``: hooks called at the start and end of training, of every epoch and of
every batch (as Keras's).

A callback subclasses :class:`Callback` and overrides any of ``on_train_begin(logs)``,
``on_train_end(logs)``, ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
``on_batch_begin(batch, logs)`` and ``on_batch_end(batch, logs)``. ``self.model`` is the model
being trained, ``self.params`` holds epochs / steps / samples / batch_size / verbose. Setting
``self.model.stop_training = True`` ends ``fit`` after the current batch.

Logs: ``on_batch_end`` gets the batch's ``train_step`` logs ('loss', 'accuracy', ...) and
'size'; ``on_epoch_end`` gets the epoch's averages, 'val_*' entries with validation data, 'lr',
'time' (seconds, validation included) and 'images_per_sec'.

Provided: :class:`History` (always installed; ``fit`` returns it), :class:`EarlyStopping`,
:class:`ModelCheckpoint`, :class:`CSVLogger` and :class:`LearningRateScheduler`.
"""
import csv
import math
import numbers
import os

import numpy as np

from .. import optim as _optim
from ._util import check_int, describe

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint", "CSVLogger",
           "LearningRateScheduler"]


class Callback:
    """Base class: every hook does nothing.

    ``writes_files``: True for callbacks that write files (ModelCheckpoint, CSVLogger); in
    data-parallel training (:mod:`cycnn.distributed`) only rank 0 runs them.
    """

    writes_files = False

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params)

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class CallbackList:
    """Calls every hook of several callbacks in order (what ``fit`` uses)."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", {} if logs is None else logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", {} if logs is None else logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, {} if logs is None else logs)

    def on_epoch_end(self, epoch, logs):
        self._call("on_epoch_end", epoch, logs)

    def on_batch_begin(self, batch, logs):
        self._call("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs):
        self._call("on_batch_end", batch, logs)


class History(Callback):
    """What ``fit`` returns: ``history`` maps a name to one value per epoch; ``epoch`` lists them.

    Keys: 'loss', 'accuracy' (when compiled with that metric), 'val_loss', 'val_accuracy' (with
    validation data), 'lr', 'time' (seconds for the whole epoch, validation included) and
    'images_per_sec' (training images / training time of the epoch).
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.append(epoch, logs or {})

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def _check_mode(mode, monitor):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    return mode


def _check_monitor(monitor):
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"monitor must be the name of a logged value (e.g. 'val_loss'), got "
                        f"{describe(monitor)}")
    return monitor


def _monitored(logs, monitor, who):
    if monitor not in logs:
        raise ValueError(f"{who}: monitor {monitor!r} is not among the logged values "
                         f"{sorted(logs)} (validation data gives 'val_*')")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop training after ``patience`` epochs in a row without improvement of ``monitor``.

    An improvement is a change of more than ``min_delta`` in the right direction (``mode``:
    'min', 'max', or 'auto' = 'max' for accuracies, 'min' otherwise). ``restore_best_weights``:
    at the end, put back the weights of the best epoch. ``stopped_epoch`` is the epoch at which
    training stopped (0 if it did not), ``best`` the best value seen.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False):
        super().__init__()
        self.monitor = _check_monitor(monitor)
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) \
                or not min_delta >= 0:
            raise ValueError(f"min_delta must be a number >= 0, got {describe(min_delta)}")
        self.min_delta = float(min_delta)
        self.patience = check_int(patience, "patience", 0)
        self.mode = _check_mode(mode, self.monitor)
        self.restore_best_weights = bool(restore_best_weights)

    def _better(self, value, best):
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs or {}, self.monitor, "EarlyStopping")
        if self._better(value, self.best):
            self.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch:
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model at the end of epochs.

    ``filepath`` may hold ``str.format`` fields filled from the epoch's logs and ``epoch``
    (counted from 1), e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.cyc"``. ``save_best_only``: save
    only when ``monitor`` improves on the best value so far (``mode`` as :class:`EarlyStopping`).
    Every write is atomic (a temporary file renamed over the target), so an interrupted run
    leaves the previous checkpoint intact. ``best`` holds the best value seen.
    """

    writes_files = True   # data-parallel fit: rank 0 only (cycnn.distributed)

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 verbose=0):
        super().__init__()
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"filepath must be a str or path, got {describe(filepath)}")
        self.filepath = os.fspath(filepath)
        self.monitor = _check_monitor(monitor)
        self.save_best_only = bool(save_best_only)
        self.mode = _check_mode(mode, self.monitor)
        self.verbose = verbose
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill filepath {self.filepath!r} from "
                             f"epoch and logs {sorted(logs)} ({exc})") from None
        self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class CSVLogger(Callback):
    """Write one CSV row per epoch: 'epoch' then the logged values in sorted key order.

    ``append``: add to an existing file (no second header) instead of replacing it. The file is
    flushed after every row, so a crashed run keeps its epochs.
    """

    writes_files = True   # data-parallel fit: rank 0 only (cycnn.distributed)

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"filename must be a str or path, got {describe(filename)}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {describe(separator)}")
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        had_rows = self.append and os.path.exists(self.filename) \
            and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._keys = None
        self._had_rows = had_rows

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            if not self._had_rows:
                self._writer.writerow(["epoch"] + self._keys)
        self._writer.writerow([epoch] + [_csv_value(logs.get(k, "")) for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


def _csv_value(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return value


class LearningRateScheduler(Callback):
    """Set the optimizer's lr at the start of every epoch to ``schedule(epoch, lr)``.

    As in Keras, ``lr`` is the optimizer's current lr. With ``from_initial=True`` (and for
    cycnn's own schedules, :class:`cycnn.optim.StepLR` and :class:`cycnn.optim.CosineLR`, which
    are written in terms of it) it is the lr at compile time (``fit(lr_schedule=...)`` uses
    this form). ``verbose``: print the new lr.
    """

    def __init__(self, schedule, from_initial=False, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a callable (epoch, lr) -> lr, got "
                            f"{describe(schedule)}")
        self.schedule = schedule
        self.from_initial = bool(from_initial) or isinstance(schedule,
                                                             (_optim.StepLR, _optim.CosineLR))
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        base = self.model._base_lr if self.from_initial else float(opt.lr)
        lr = self.schedule(epoch, base)
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) \
                or lr < 0:
            raise ValueError(f"the learning-rate schedule returned {describe(lr)} for epoch "
                             f"{epoch}; it must return a finite number >= 0")
        opt.lr = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {opt.lr:.6g}")
