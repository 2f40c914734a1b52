"""Pooling layers over NCHW input."""
import numpy as np

from .. import ops
from .._args import pool_padding, positive_pair
from .base import Layer, check_padding

__all__ = ["MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"]


class _Pool2D(Layer):
    def __init__(self, pool_size, stride=None, padding=0, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.pool_size = positive_pair(pool_size, "pool_size")
        self.stride = None if stride is None else positive_pair(stride, "stride")
        self.padding = check_padding(padding)

    def _config(self):
        return {"pool_size": list(self.pool_size),
                "stride": None if self.stride is None else list(self.stride),
                "padding": list(self.padding) if isinstance(self.padding, tuple) else self.padding}

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects per-sample input shape "
                             f"(C, H, W), got {input_shape}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        _, _, _, (oh, ow) = pool_padding(self.pool_size, self.stride, self.padding,
                                         tuple(input_shape[1:]))
        return (int(input_shape[0]), oh, ow)


class MaxPool2D(_Pool2D):
    """Maximum over ``pool_size`` windows; ``stride`` defaults to ``pool_size``.

    ``padding`` (int, pair, 'valid' or 'same') pads with -inf, at most half the window per side.

    Shape:
        input (N, C, H, W) -> output (N, C, H_out, W_out) with, per axis,
        ``H_out = floor((H + pad_top + pad_bottom - pool_h) / stride_h) + 1``
        ('same': ``ceil(H / stride_h)``).
    """

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        y, indices = ops.max_pool2d(x, self.pool_size, stride=self.stride, padding=self.padding)
        self._remember(indices=indices, in_shape=x.shape)
        return y

    def backward(self, dy):
        indices, in_shape = self._cached("indices"), self._cached("in_shape")
        return ops.max_pool2d_backward(np.asarray(dy, dtype=self.dtype), indices, in_shape)


class AvgPool2D(_Pool2D):
    """Mean over ``pool_size`` windows; ``stride`` defaults to ``pool_size``.

    How padded cells count in the mean is decided by ``cycnn.ops.avg_pool2d``.

    Shape:
        input (N, C, H, W) -> output (N, C, H_out, W_out) with, per axis,
        ``H_out = floor((H + pad_top + pad_bottom - pool_h) / stride_h) + 1``
        ('same': ``ceil(H / stride_h)``).
    """

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        self._remember(in_shape=x.shape)
        return ops.avg_pool2d(x, self.pool_size, stride=self.stride, padding=self.padding)

    def backward(self, dy):
        in_shape = self._cached("in_shape")
        return ops.avg_pool2d_backward(np.asarray(dy, dtype=self.dtype), in_shape, self.pool_size,
                                       stride=self.stride, padding=self.padding)


class _GlobalPool2D(Layer):
    """Shared shape rules of the global pools: (C, H, W) -> (C,)."""

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects per-sample input "
                             f"shape (C, H, W), got {input_shape}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        return (int(input_shape[0]),)


class GlobalAvgPool2D(_GlobalPool2D):
    """Mean over the whole H x W plane of every channel.

    Shape:
        input (N, C, H, W) -> output (N, C).
    """

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        self._remember(in_shape=x.shape)
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        n, c, h, w = self._cached("in_shape")
        dy = np.asarray(dy, dtype=self.dtype) / self.dtype.type(h * w)
        return np.ascontiguousarray(np.broadcast_to(dy[:, :, None, None], (n, c, h, w)))


class GlobalMaxPool2D(_GlobalPool2D):
    """Maximum over the whole H x W plane of every channel (the gradient goes to the element
    chosen: the first maximum on ties, as :func:`cycnn.ops.global_max_pool2d`).

    Shape:
        input (N, C, H, W) -> output (N, C).
    """

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        y, indices = ops.global_max_pool2d(x)
        self._remember(indices=indices, in_shape=x.shape)
        return y

    def backward(self, dy):
        indices, in_shape = self._cached("indices"), self._cached("in_shape")
        return ops.global_max_pool2d_backward(np.asarray(dy, dtype=self.dtype), indices, in_shape)
