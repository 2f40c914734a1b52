"""Models: the :class:`Model` (compile / fit / train_step / evaluate / predict / summary / save)
and the two ways to build one: the functional API (:func:`Input`, layer calls on symbolic
tensors, ``Model(inputs, outputs)``) and :class:`Sequential`; callbacks, console progress, data
batching and the file format (:func:`load_model`).

Modules (data flows down, no cycles): ``sequential`` -> ``base`` (Model) -> ``functional``
(Input, symbolic tensors, Graph), ``callbacks``, ``progress``, ``data``, ``saving`` (the file
format, which knows models only through the Model interface and a class registry).
"""
from .base import Model
from .callbacks import (Callback, CSVLogger, EarlyStopping, History, LearningRateScheduler,
                        ModelCheckpoint)
from .functional import Input, SymbolicTensor
from .saving import load_model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "Input", "SymbolicTensor", "load_model", "Callback", "History",
           "EarlyStopping", "ModelCheckpoint", "CSVLogger", "LearningRateScheduler"]
