"""Data batching for the training loop: inputs checked, converted to float32 a batch at a time.

* ``uint8`` images become float32 in [0, 1] (``x / 255``); every other numeric input is cast to
  float32 as is. The conversion is done one batch at a time, into a buffer that is reused, so a
  dataset is never copied whole.
* Labels: integer class ids of shape (N,) (given to the loss as int64) or one-hot / float targets
  of shape (N, C) (given as float32).
"""
import numpy as np

from ._util import describe

__all__ = ["DTYPE", "as_data", "Batches", "prepare_y"]

DTYPE = np.float32


def as_data(x, name):
    """ndarray view of x (no copy when it already is one); rejects non-numeric data."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a numeric array, got {describe(x)}")
    if arr.ndim < 1:
        raise ValueError(f"{name} must have a batch axis, got {describe(x)}")
    return arr


class Batches:
    """Turns rows of x into float32 batches, reusing one buffer.

    uint8 data is scaled by 1/255 (x / 255); other data is cast to float32. Rows are gathered
    with ``np.take(..., out=...)`` into the reused buffer, so no per-batch allocation happens for
    x apart from what the layers themselves do.
    """

    def __init__(self, x, batch_size):
        self.x = x
        self._scale = x.dtype == np.uint8
        self._raw = None if x.dtype == DTYPE else np.empty((batch_size,) + x.shape[1:], x.dtype)
        self._out = np.empty((batch_size,) + x.shape[1:], DTYPE)

    def slice(self, start, stop, copy=False):
        """Rows start:stop (a view when x already is float32 and copy is False)."""
        src = self.x[start:stop]
        n = stop - start
        if self._scale:
            return np.divide(src, DTYPE(255), out=self._out[:n], dtype=DTYPE)
        if src.dtype == DTYPE and not copy:
            return src
        out = self._out[:n]
        out[...] = src
        return out

    def take(self, index):
        """Rows ``index`` (an int array), gathered into the reused buffer."""
        n = len(index)
        if self._raw is None:
            return np.take(self.x, index, axis=0, out=self._out[:n], mode="clip")
        raw = np.take(self.x, index, axis=0, out=self._raw[:n], mode="clip")
        if self._scale:
            return np.divide(raw, DTYPE(255), out=self._out[:n], dtype=DTYPE)
        out = self._out[:n]
        out[...] = raw
        return out


def prepare_y(y):
    """Labels as given to the loss: int64 class ids, or float32 targets."""
    if y.dtype.kind == "f":
        return y if y.dtype == DTYPE else y.astype(DTYPE)
    return y if y.dtype == np.int64 else y.astype(np.int64)
