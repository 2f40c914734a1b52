"""``keras.datasets.mnist.load_data()`` and ``fashion_mnist``: Keras's shapes ((N, 28, 28) uint8
images, (N,) uint8 labels) through cycnn's verified loader (``CYCNN_DATA``, the cache, MD5-checked
download)."""
import types

import numpy as np

from .. import datasets as _cdatasets

__all__ = ["mnist", "fashion_mnist"]


def _keras_shapes(loaded):
    (x_train, y_train), (x_test, y_test) = loaded
    return ((x_train.reshape(-1, 28, 28), y_train.astype(np.uint8)),
            (x_test.reshape(-1, 28, 28), y_test.astype(np.uint8)))


def _module(name, loader):
    def load_data(path=None):
        """((x_train, y_train), (x_test, y_test)): (N, 28, 28) uint8 and (N,) uint8."""
        return _keras_shapes(loader(root=path))
    return types.SimpleNamespace(__name__=f"{__name__}.{name}", load_data=load_data)


mnist = _module("mnist", _cdatasets.load_mnist)
fashion_mnist = _module("fashion_mnist", _cdatasets.load_fashion_mnist)
