"""A Keras-compatible front end: Keras tutorial code for CNNs runs on cycnn with its imports
changed to ``from cycnn import keras`` and ``from cycnn.keras import layers``.

Channels-last data (``data_format="channels_last"``, Keras's default) is transposed once at the
model's input; inside, cycnn runs NCHW. See README.md, "Keras front end", for what is covered.
"""
from . import callbacks, datasets, layers, losses, optimizers, utils  # noqa: F401
from .models import Input, Model, Sequential, load_model  # noqa: F401
from . import models  # noqa: F401

__all__ = ["Input", "Model", "Sequential", "load_model", "layers", "models", "callbacks",
           "datasets", "losses", "optimizers", "utils"]
