"""Spatial resampling layers over NCHW input: UpSampling2D and ZeroPadding2D."""
import numpy as np

from .. import ops
from .._args import interpolation_mode, pad4, positive_pair
from .base import Layer

__all__ = ["UpSampling2D", "ZeroPadding2D"]


class _Spatial(Layer):
    def _check_input_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects per-sample input shape "
                             f"(C, H, W), got {input_shape}")


class UpSampling2D(_Spatial):
    """Upsample H and W by the integer factors ``size`` (int or (sh, sw)): ``'nearest'``
    repeats pixels, ``'bilinear'`` interpolates (half-pixel centres, as Keras and PyTorch's
    ``align_corners=False``). No parameters.

    Shape:
        input (N, C, H, W) -> output (N, C, H * sh, W * sw).
    """

    def __init__(self, size=2, interpolation="nearest", name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.size = positive_pair(size, "size")
        self.interpolation = interpolation_mode(interpolation)

    def _config(self):
        return {"size": list(self.size), "interpolation": self.interpolation}

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        c, h, w = (int(s) for s in input_shape)
        return (c, h * self.size[0], w * self.size[1])

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        self._remember(called=True)
        return ops.upsample2d(x, self.size, self.interpolation)

    def backward(self, dy):
        self._cached("called")
        return ops.upsample2d_backward(np.asarray(dy, dtype=self.dtype), self.size,
                                       self.interpolation)


class ZeroPadding2D(_Spatial):
    """Pad H and W with zeros: ``padding`` an int, (ph, pw) for both sides, or
    ((top, bottom), (left, right)) (Keras's forms). No parameters.

    Shape:
        input (N, C, H, W) -> output (N, C, top + H + bottom, left + W + right).
    """

    def __init__(self, padding=1, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.padding = pad4(padding, "padding")

    def _config(self):
        return {"padding": [list(p) for p in self.padding]}

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        c, h, w = (int(s) for s in input_shape)
        (top, bottom), (left, right) = self.padding
        return (c, top + h + bottom, left + w + right)

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        self._remember(called=True)
        return ops.zero_pad2d(x, self.padding)

    def backward(self, dy):
        self._cached("called")
        return ops.zero_pad2d_backward(np.asarray(dy, dtype=self.dtype), self.padding)
