"""Element-wise activation layers and the ``activation=`` shortcut resolver.

All of them keep the input shape: output shape = input shape.
"""
import numpy as np

from .. import ops
from .base import Layer, check_float, get as get_layer_class

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Activation", "get_activation",
           "activation_config", "ACTIVATIONS", "WithActivation"]


class ReLU(Layer):
    """max(x, 0).

    Shape: any (N, ...) input; output has the same shape.
    """
    _default_name = "relu"

    def forward(self, x, training=False):
        x = self._prepare(x)
        y = ops.relu(x)
        self._remember(y=y)
        return y

    def _forward_in_place(self, x):
        """forward, overwriting x when it is a writable C-contiguous array of our dtype (the
        fresh output of the layer this activation is fused into)."""
        x = self._prepare(x)
        y = ops.relu(x, out=x if x.flags.c_contiguous and x.flags.writeable else None)
        self._remember(y=y)
        return y

    def backward(self, dy):
        y = self._cached("y")
        return ops.relu_backward(np.asarray(dy, dtype=self._dtype), y)


class LeakyReLU(Layer):
    """x if x > 0 else alpha * x.

    Shape: any (N, ...) input; output has the same shape.
    """
    _default_name = "leaky_relu"

    def __init__(self, alpha=0.01, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.alpha = check_float(alpha, "alpha", low=0.0)

    def _config(self):
        return {"alpha": self.alpha}

    def forward(self, x, training=False):
        x = self._prepare(x)
        self._remember(x=x)
        return np.where(x > 0, x, x * self._dtype.type(self.alpha))

    def backward(self, dy):
        x = self._cached("x")
        dx = np.where(x > 0, dy, dy * self._dtype.type(self.alpha))
        return dx.astype(self._dtype, copy=False)


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only ever taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed without overflow for any finite x.

    Shape: any (N, ...) input; output has the same shape.
    """

    def forward(self, x, training=False):
        x = self._prepare(x)
        y = _sigmoid(x).astype(self._dtype, copy=False)
        self._remember(y=y)
        return y

    def backward(self, dy):
        y = self._cached("y")
        return dy * y * (1 - y)


class Tanh(Layer):
    """tanh(x).

    Shape: any (N, ...) input; output has the same shape.
    """

    def forward(self, x, training=False):
        x = self._prepare(x)
        y = np.tanh(x)
        self._remember(y=y)
        return y

    def backward(self, dy):
        y = self._cached("y")
        return dy * (1 - y * y)


class Softmax(Layer):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the maximum so it never overflows.

    For probabilities fed to a cross-entropy prefer raw logits with
    ``losses.CrossEntropy`` (fused and more accurate).

    Shape: any (N, ...) input; output has the same shape.
    """

    def __init__(self, axis=-1, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis must be an int, got {axis!r}")
        if axis == 0:
            raise ValueError("axis must not be 0 (the batch axis)")
        self.axis = int(axis)

    def _config(self):
        return {"axis": self.axis}

    def forward(self, x, training=False):
        x = self._prepare(x)
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(f"Softmax axis {self.axis} is out of range for input of shape "
                             f"{x.shape}")
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        y = e / e.sum(axis=self.axis, keepdims=True)
        self._remember(y=y)
        return y

    def backward(self, dy):
        y = self._cached("y")
        return y * (dy - (dy * y).sum(axis=self.axis, keepdims=True))


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
               "softmax": Softmax}
_ACTIVATION_CLASSES = {cls.__name__ for cls in ACTIVATIONS.values()}


def get_activation(activation, owner_name, dtype):
    """Resolve the ``activation=`` argument of Conv/Dense into a layer instance (or None).

    Accepts None, a name from :data:`ACTIVATIONS` (softmax then works over axis 1, the
    channel/feature axis), a Layer instance, or ``{'class_name': ..., 'config': ...}`` as
    written by :func:`activation_config`.
    """
    if activation is None:
        return None
    if isinstance(activation, str):
        key = activation.lower()
        if key not in ACTIVATIONS:
            raise ValueError(f"activation must be None, a layer or one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        kwargs = {"axis": 1} if key == "softmax" else {}
        return ACTIVATIONS[key](name=f"{owner_name}_{key}", dtype=dtype, **kwargs)
    if isinstance(activation, dict) and set(activation) == {"class_name", "config"}:
        activation = get_layer_class(activation["class_name"]).from_config(activation["config"])
    if isinstance(activation, Layer):
        if activation.params or type(activation).__name__ not in _ACTIVATION_CLASSES:
            raise ValueError(f"activation layer must be one of {sorted(_ACTIVATION_CLASSES)}, "
                             f"got {activation!r}")
        # a copy: the layer caches its output for backward, so one instance cannot serve two layers
        config = dict(activation.get_config(), name=f"{owner_name}_{activation.name}")
        return type(activation).from_config(dict(config, dtype=str(np.dtype(dtype))))
    raise TypeError(f"activation must be None, a str or a Layer, got {activation!r}")


class WithActivation:
    """Mixin for the layers with an ``activation=`` shortcut (Conv2D, Conv1D, Dense): the
    activation runs after the layer's own forward, and first in its backward."""

    def _set_activation(self, activation):
        self._activation_arg = activation
        self.activation = get_activation(activation, self.name, self.dtype)

    def _children(self):
        return [] if self.activation is None else [self.activation]

    def _activation_config(self):
        return activation_config(self._activation_arg)

    def _activate(self, y, training):
        if self.activation is None:
            return y
        if type(self.activation) is ReLU:   # y is our own fresh output: rectified in place
            return self.activation._forward_in_place(y)
        return self.activation.forward(y, training=training)

    def _activation_backward(self, dy):
        return dy if self.activation is None else self.activation.backward(dy)


class Activation(Layer):
    """An activation given by name, as Keras's ``Activation('relu')``: one of
    ``'relu'``, ``'leaky_relu'``, ``'sigmoid'``, ``'tanh'``, ``'softmax'`` (over axis 1, the
    channel/feature axis of cycnn's layouts) or ``'linear'`` (identity). The work is done by the
    matching layer (ReLU, ...), held as a sub-layer.

    Shape: any (N, ...) input; output has the same shape.
    """

    def __init__(self, activation, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(activation, str):
            raise TypeError(f"activation must be a str, got {activation!r}")
        key = activation.lower()
        if key != "linear" and key not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS) + ['linear']}, got "
                             f"{activation!r}")
        self.activation = key
        self._inner = None if key == "linear" else get_activation(key, self.name, dtype)

    def _config(self):
        return {"activation": self.activation}

    def _children(self):
        return [] if self._inner is None else [self._inner]

    def forward(self, x, training=False):
        x = self._prepare(x)
        self._remember(called=True)
        return x if self._inner is None else self._inner.forward(x, training=training)

    def backward(self, dy):
        self._cached("called")
        dy = np.asarray(dy, dtype=self.dtype)
        return dy if self._inner is None else self._inner.backward(dy)


def activation_config(activation):
    """JSON-able form of the ``activation=`` argument."""
    if activation is None or isinstance(activation, str):
        return activation
    if isinstance(activation, dict):
        return activation
    return {"class_name": type(activation).__name__, "config": activation.get_config()}
