"""Dense, Flatten and Dropout."""
import math

import numpy as np

from .. import ops
from .._random import get_rng
from .activations import WithActivation
from .base import Layer, check_bool, check_float, check_initializer, check_positive_int

__all__ = ["Dense", "Flatten", "Dropout"]


class Dense(WithActivation, Layer):
    """Fully connected layer ``y = x @ kernel.T + bias``, optionally followed by an activation.

    Parameters: ``kernel`` (units, in_features) (PyTorch layout, so fan_in = in_features) and
    ``bias`` (units,) when ``use_bias``. One matrix product per batch on cycnn's GEMM (``cycnn.ops.matmul``): it runs on the same
    OpenMP threads as the convolutions, where NumPy's BLAS would start a second thread pool that
    fights them for the cores (measured: 3x slower training steps on 2 cores).

    Shape:
        input (N, in_features) -> output (N, units).
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.units = check_positive_int(units, "units")
        self.use_bias = check_bool(use_bias, "use_bias")
        self.kernel_initializer = check_initializer(kernel_initializer, "kernel_initializer")
        self._set_activation(activation)

    def _config(self):
        return {"units": self.units, "activation": self._activation_config(),
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer}

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Dense '{self.name}' expects input (N, features) - add a Flatten "
                             f"layer first - got per-sample shape {input_shape}")
        if self.built and input_shape[0] != self.input_shape[0]:
            raise ValueError(f"Dense '{self.name}' was built for {self.input_shape[0]} input "
                             f"features, got {input_shape[0]}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        return (self.units,)

    def _build(self, input_shape):
        self.add_weight("kernel", (self.units, input_shape[0]), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), "zeros")
        return (self.units,)

    def forward(self, x, training=False):
        x = self._prepare(x, 2, "(N, features) (add a Flatten layer before it)")
        self._remember(x=x)
        y = ops.matmul(x, self.params["kernel"].T)
        if self.use_bias:
            y += self.params["bias"]
        return self._activate(y, training)

    def backward(self, dy):
        x = self._cached("x")
        dy = self._activation_backward(dy)
        dy = np.asarray(dy, dtype=self.dtype)
        self.grads = {"kernel": ops.matmul(dy.T, x)}
        if self.use_bias:
            self.grads["bias"] = dy.sum(axis=0)
        return ops.matmul(dy, self.params["kernel"]) if self.needs_input_grad else None


class Flatten(Layer):
    """Collapse every axis but the batch axis.

    ``data_format``: ``'channels_first'`` (default) flattens (N, C, H, W) in C, H, W order;
    ``'channels_last'`` flattens in H, W, C order, as Keras does on channels-last images (the
    Keras front end uses it so that Dense weights after Flatten mean what they mean in Keras).
    Inputs of other ranks are flattened as they are.

    Shape:
        input (N, d1, d2, ...) -> output (N, d1*d2*...).
    """

    def __init__(self, data_format="channels_first", name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got "
                             f"{data_format!r}")
        self.data_format = data_format

    def _config(self):
        return {} if self.data_format == "channels_first" else {"data_format": self.data_format}

    def compute_output_shape(self, input_shape):
        return (math.prod(int(s) for s in input_shape),)

    def _to_last(self, x):
        return self.data_format == "channels_last" and x.ndim == 4

    def forward(self, x, training=False):
        x = self._prepare(x)
        if x.ndim < 2:
            raise ValueError(f"Flatten '{self.name}' expects input (N, ...), got shape {x.shape}")
        self._remember(in_shape=x.shape)
        if self._to_last(x):
            x = x.transpose(0, 2, 3, 1)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # (not -1: N may be 0)

    def backward(self, dy):
        shape = self._cached("in_shape")
        dy = np.asarray(dy, dtype=self.dtype)
        if self.data_format == "channels_last" and len(shape) == 4:
            n, c, h, w = shape
            return np.ascontiguousarray(dy.reshape(n, h, w, c).transpose(0, 3, 1, 2))
        return dy.reshape(shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``rate`` and scale the
    survivors by 1 / (1 - rate); identity when ``training=False``. Masks come from the shared
    generator, so ``cycnn.seed(n)`` makes them reproducible.

    Shape: any (N, ...) input; output has the same shape.
    """

    def __init__(self, rate, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.rate = check_float(rate, "rate", low=0.0, high=1.0, high_open=True)

    def _config(self):
        return {"rate": self.rate}

    def forward(self, x, training=False):
        x = self._prepare(x)
        if not training or self.rate == 0.0:
            self._remember(mask=None)  # identity
            return x
        keep = get_rng().random(x.shape, dtype=np.float32) >= self.rate
        mask = keep.astype(self.dtype) / self.dtype.type(1.0 - self.rate)
        self._remember(mask=mask)
        return x * mask

    def backward(self, dy):
        mask = self._cached("mask")
        dy = np.asarray(dy, dtype=self.dtype)
        return dy if mask is None else dy * mask
