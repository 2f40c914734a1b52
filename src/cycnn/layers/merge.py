"""Merge layers: several inputs, one output (``Add``, ``Multiply``, ``Concatenate``).

The multi-input layer API differs from :class:`~cycnn.layers.Layer`'s in three places (the class
attribute ``multi_input = True`` tells a graph which one to use):

- ``build(input_shapes)`` takes a list of per-sample shapes (no batch dimension), and
  ``input_shape`` then holds that list;
- ``forward(inputs, training)`` takes a list (or tuple) of arrays with the same batch size;
- ``backward(dy)`` returns a list of gradients, one per input, in input order.

``Add`` and ``Multiply`` broadcast per-sample shapes of equal rank whose sizes agree or are 1
(a (C, 1, 1) gate times a (C, H, W) map, as in squeeze-and-excitation blocks); the gradient of a
broadcast input is summed back to its shape.
"""
import numbers

import numpy as np

from .base import Layer

__all__ = ["Add", "Multiply", "Concatenate"]


def _shape_tuple(shape, i, owner):
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{owner}: input shape {i} must be a tuple of ints, got {shape!r}") from None
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_))
               for s in items):
        raise TypeError(f"{owner}: input shape {i} must be a tuple of ints, got {shape!r}")
    if any(s < 1 for s in items):
        raise ValueError(f"{owner} needs per-sample input shapes of positive sizes, got "
                         f"{tuple(items)} for input {i}")
    return tuple(int(s) for s in items)


def _unbroadcast(grad, shape):
    """Sum ``grad`` (N, *out) down to (N, *shape): the adjoint of broadcasting."""
    axes = tuple(i + 1 for i, (g, s) in enumerate(zip(grad.shape[1:], shape)) if s == 1 and g != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class _Merge(Layer):
    """Shared machinery of the merge layers (see the module docstring)."""
    multi_input = True

    def _describe(self):
        return f"{type(self).__name__} '{self.name}'"

    def _shapes(self, input_shapes):
        if isinstance(input_shapes, (str, bytes)) or not isinstance(input_shapes, (list, tuple)):
            raise TypeError(f"{self._describe()} takes a list of input shapes, got "
                            f"{input_shapes!r}")
        if len(input_shapes) < 2:
            raise ValueError(f"{self._describe()} needs at least 2 inputs, got "
                             f"{len(input_shapes)}")
        return [_shape_tuple(s, i, self._describe()) for i, s in enumerate(input_shapes)]

    def build(self, input_shapes):
        """Check the per-sample ``input_shapes`` (a list) and set the output shape."""
        shapes = self._shapes(input_shapes)
        output_shape = self.compute_output_shape(shapes)
        if not self.built:
            self.input_shape = shapes
            self.output_shape = output_shape
            self.built = True

    def _prepare_inputs(self, inputs):
        """The inputs as arrays of the layer dtype with one batch size; builds on first use."""
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{self._describe()} takes a list of arrays, got "
                            f"{type(inputs).__name__}")
        xs = [np.asarray(x, dtype=self._dtype) for x in inputs]
        for i, x in enumerate(xs):
            if x.ndim < 2:
                raise ValueError(f"{self._describe()} expects inputs (N, ...), got input {i} of "
                                 f"shape {x.shape}")
        if len({x.shape[0] for x in xs}) > 1:
            raise ValueError(f"{self._describe()} needs inputs with one batch size, got shapes "
                             f"{[x.shape for x in xs]}")
        self.build([x.shape[1:] for x in xs])  # checks the shapes on every call
        return xs


class _Elementwise(_Merge):
    def compute_output_shape(self, input_shapes):
        shapes = self._shapes(input_shapes)
        if len({len(s) for s in shapes}) > 1:
            raise ValueError(f"{self._describe()} needs inputs of one rank, got per-sample "
                             f"shapes {shapes}")
        out = []
        for sizes in zip(*shapes):
            big = {s for s in sizes if s != 1}
            if len(big) > 1:
                raise ValueError(f"{self._describe()} cannot broadcast per-sample shapes "
                                 f"{shapes} (sizes must agree or be 1)")
            out.append(big.pop() if big else 1)
        return tuple(out)


class Add(_Elementwise):
    """Element-wise sum of its inputs (broadcasting sizes of 1).

    Shape:
        inputs [(N, *s1), (N, *s2), ...] of one rank -> output (N, *s) with s the broadcast of
        s1, s2, ... (sizes equal or 1 per axis).
    """

    def forward(self, inputs, training=False):
        xs = self._prepare_inputs(inputs)
        self._remember(shapes=[x.shape[1:] for x in xs])
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dy):
        shapes = self._cached("shapes")
        dy = np.asarray(dy, dtype=self.dtype)
        # distinct arrays, so a graph may accumulate into one without touching another
        return [_unbroadcast(dy, s) if i == 0 else _unbroadcast(dy, s).copy()
                for i, s in enumerate(shapes)]


class Multiply(_Elementwise):
    """Element-wise product of its inputs (broadcasting sizes of 1).

    Shape:
        inputs [(N, *s1), (N, *s2), ...] of one rank -> output (N, *s) with s the broadcast of
        s1, s2, ... (sizes equal or 1 per axis).
    """

    def forward(self, inputs, training=False):
        xs = self._prepare_inputs(inputs)
        self._remember(xs=xs)
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y *= x
        return y

    def backward(self, dy):
        xs = self._cached("xs")
        dy = np.asarray(dy, dtype=self.dtype)
        grads = []
        for i, x in enumerate(xs):
            g = dy
            for j, other in enumerate(xs):
                if j != i:
                    g = g * other
            grads.append(_unbroadcast(g, x.shape[1:]))
        return grads


class Concatenate(_Merge):
    """Join the inputs along ``axis``, which counts the batch axis as Keras does: 1 is the
    channel axis of NCHW input (the default); negative values count from the end; 0 (the batch
    axis) is not allowed.

    Shape:
        inputs (N, ..., d_i, ...) equal except along ``axis`` -> output (N, ..., sum d_i, ...).
    """

    def __init__(self, axis=1, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int, got {axis!r}")
        if axis == 0:
            raise ValueError("axis must not be 0 (the batch axis); 1 joins channels of NCHW input")
        self.axis = int(axis)

    def _config(self):
        return {"axis": self.axis}

    def _sample_axis(self, rank):
        """Index of ``axis`` in a per-sample shape of ``rank`` dimensions."""
        full = self.axis + rank + 1 if self.axis < 0 else self.axis
        if not 1 <= full <= rank:
            raise ValueError(f"{self._describe()}: axis {self.axis} is out of range for inputs "
                             f"(N, ...) with {rank} per-sample dimensions")
        return full - 1

    def compute_output_shape(self, input_shapes):
        shapes = self._shapes(input_shapes)
        if len({len(s) for s in shapes}) > 1:
            raise ValueError(f"{self._describe()} needs inputs of one rank, got per-sample "
                             f"shapes {shapes}")
        a = self._sample_axis(len(shapes[0]))
        others = {s[:a] + s[a + 1:] for s in shapes}
        if len(others) > 1:
            raise ValueError(f"{self._describe()}: inputs must agree on every axis but axis "
                             f"{self.axis}, got per-sample shapes {shapes}")
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes)
        return tuple(out)

    def forward(self, inputs, training=False):
        xs = self._prepare_inputs(inputs)
        a = self._sample_axis(xs[0].ndim - 1) + 1
        self._remember(sizes=[x.shape[a] for x in xs])
        return np.concatenate(xs, axis=a)

    def backward(self, dy):
        sizes = self._cached("sizes")
        dy = np.asarray(dy, dtype=self.dtype)
        a = self._sample_axis(dy.ndim - 1) + 1
        if dy.shape[a] != sum(sizes):
            raise ValueError(f"{self._describe()}: dy must have {sum(sizes)} entries along axis "
                             f"{self.axis}, got shape {dy.shape}")
        return [np.ascontiguousarray(part)
                for part in np.split(dy, np.cumsum(sizes)[:-1], axis=a)]
