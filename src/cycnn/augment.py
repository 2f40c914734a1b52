"""Random data augmentation for NCHW batches, for ``model.fit(..., augment=...)``.

Every transform is a callable taking a batch ``x`` of shape (N, C, H, W) and returning a new
array of the same dtype (and, except for :class:`RandomCrop`, the same shape); the input is
never modified. Randomness comes only from ``cycnn._random.get_rng()``, so ``cycnn.seed(n)``
makes runs reproducible. Each transform draws its per-image parameters for the whole batch at
once, and the work is vectorised over the batch (no Python loop over images).

>>> augment = Compose([RandomCrop(28, padding=2), RandomFlip(0.5)])
>>> x_aug = augment(x)                                  # doctest: +SKIP
"""
import numbers

import numpy as np

from . import _random

__all__ = ["RandomShift", "RandomCrop", "RandomFlip", "Compose", "shift", "crop"]


# --------------------------------------------------------------------------- validation

def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def _int_pair(value, name, minimum):
    """(h, w) ints >= minimum from an int or a pair; ValueError echoing ``value`` otherwise."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    elif _is_int(value):
        pair = (int(value), int(value))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {_describe(value)}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_describe(value)}")
    return pair


def _fill_value(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"fill must be a real number, got {_describe(value)}")
    return float(value)


def _batch(x, who):
    """``x`` as an ndarray (no copy), checked to be a 4-D NCHW batch of real numbers."""
    arr = np.asarray(x)
    if arr.ndim != 4:
        raise ValueError(f"{who} expects a 4-D (N, C, H, W) batch, got {_describe(x)}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{who} expects a real numeric batch, got {_describe(x)}")
    return arr


def _per_image(offsets, n, name):
    """int64 array (N,) from an int or one int per image."""
    arr = np.asarray(offsets)
    if arr.dtype.kind not in "iu" or arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ValueError(f"{name} must be an int or {n} ints (one per image), "
                         f"got {_describe(offsets)}")
    return np.broadcast_to(arr.astype(np.int64), (n,))


# ------------------------------------------------------------------------ deterministic core

def _gather(padded, top, left, out_h, out_w):
    """``out[i] = padded[i, :, top[i]:top[i]+out_h, left[i]:left[i]+out_w]`` for every i."""
    n = padded.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (out_h, out_w), axis=(2, 3))
    # windows: (N, C, Hp-out_h+1, Wp-out_w+1, out_h, out_w); the advanced indices on axes 0, 2
    # and 3 are split by a slice, so their broadcast dimension (N) comes first: (N, C, h, w).
    return np.ascontiguousarray(windows[np.arange(n), :, top, left])


def _pad(x, pad_h, pad_w, fill):
    n, c, h, w = x.shape
    if pad_h == 0 and pad_w == 0:
        return x
    out = np.full((n, c, h + 2 * pad_h, w + 2 * pad_w), fill, dtype=x.dtype)
    out[:, :, pad_h:pad_h + h, pad_w:pad_w + w] = x
    return out


def shift(x, dy, dx, fill=0.0):
    """Shift image i of the batch down by ``dy[i]`` and right by ``dx[i]`` pixels.

    Negative values shift up / left; vacated pixels get ``fill``. ``dy``, ``dx``: an int or one
    int per image. Returns a new array: ``out[i, :, r, c] = x[i, :, r - dy[i], c - dx[i]]``
    where that source pixel exists, else ``fill``.
    """
    x = _batch(x, "shift")
    fill = _fill_value(fill)
    n, _, h, w = x.shape
    dy = _per_image(dy, n, "dy")
    dx = _per_image(dx, n, "dx")
    if n == 0:
        return x.copy()
    # Clip to the image size: a shift of H or more leaves only fill either way.
    dy = np.clip(dy, -h, h)
    dx = np.clip(dx, -w, w)
    pad_h = int(np.abs(dy).max())
    pad_w = int(np.abs(dx).max())
    padded = _pad(x, pad_h, pad_w, fill)
    return _gather(padded, pad_h - dy, pad_w - dx, h, w)


def crop(x, top, left, size):
    """Crop image i to ``x[i, :, top[i]:top[i]+size_h, left[i]:left[i]+size_w]`` (a new array).

    ``top``, ``left``: an int or one int per image; ``size``: an int or (size_h, size_w). Every
    window must lie inside the image.
    """
    x = _batch(x, "crop")
    n, _, h, w = x.shape
    out_h, out_w = _int_pair(size, "size", 1)
    top = _per_image(top, n, "top")
    left = _per_image(left, n, "left")
    if out_h > h or out_w > w:
        raise ValueError(f"crop size {(out_h, out_w)} is larger than the images {(h, w)}")
    if n and (top.min() < 0 or left.min() < 0 or top.max() > h - out_h
              or left.max() > w - out_w):
        raise ValueError(f"crop windows of size {(out_h, out_w)} at top {top.tolist()}, left "
                         f"{left.tolist()} do not fit in images of size {(h, w)}")
    if n == 0:
        return np.empty((0, x.shape[1], out_h, out_w), dtype=x.dtype)
    return _gather(x, top, left, out_h, out_w)


# ------------------------------------------------------------------------------ transforms

class RandomShift:
    """Shift each image by a random whole number of pixels in both axes, vacated pixels filled.

    ``max_shift``: int or (max_dy, max_dx) >= 0; each image draws dy uniformly from
    [-max_dy, max_dy] and dx from [-max_dx, max_dx] independently. Output shape = input shape.
    """

    def __init__(self, max_shift, fill=0.0):
        self.max_shift = _int_pair(max_shift, "max_shift", 0)
        self.fill = _fill_value(fill)

    def __call__(self, x):
        x = _batch(x, "RandomShift")
        n = x.shape[0]
        my, mx = self.max_shift
        rng = _random.get_rng()
        dy = rng.integers(-my, my + 1, size=n)
        dx = rng.integers(-mx, mx + 1, size=n)
        return shift(x, dy, dx, self.fill)

    def get_config(self):
        return {"class": "RandomShift", "max_shift": list(self.max_shift), "fill": self.fill}

    def __repr__(self):
        return f"RandomShift(max_shift={self.max_shift}, fill={self.fill})"


class RandomCrop:
    """Pad each image by ``padding`` (filled with ``fill``) and cut a random ``size`` window.

    ``size``: int or (size_h, size_w) >= 1; ``padding``: int or (pad_h, pad_w) >= 0, added on
    both sides. Output shape (N, C, size_h, size_w). The window position is drawn uniformly
    per image; the padded image must be at least ``size``.
    """

    def __init__(self, size, padding=0, fill=0.0):
        self.size = _int_pair(size, "size", 1)
        self.padding = _int_pair(padding, "padding", 0)
        self.fill = _fill_value(fill)

    def __call__(self, x):
        x = _batch(x, "RandomCrop")
        n, _, h, w = x.shape
        pad_h, pad_w = self.padding
        out_h, out_w = self.size
        span_h, span_w = h + 2 * pad_h - out_h, w + 2 * pad_w - out_w
        if span_h < 0 or span_w < 0:
            raise ValueError(
                f"RandomCrop size {self.size} is larger than the padded images "
                f"{(h + 2 * pad_h, w + 2 * pad_w)} (images {(h, w)}, padding {self.padding})")
        rng = _random.get_rng()
        top = rng.integers(0, span_h + 1, size=n)
        left = rng.integers(0, span_w + 1, size=n)
        if n == 0:
            return np.empty((0, x.shape[1], out_h, out_w), dtype=x.dtype)
        return _gather(_pad(x, pad_h, pad_w, self.fill), top, left, out_h, out_w)

    def get_config(self):
        return {"class": "RandomCrop", "size": list(self.size), "padding": list(self.padding),
                "fill": self.fill}

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding}, fill={self.fill})"


class RandomFlip:
    """Flip each image left-right with probability ``p`` (0 <= p <= 1)."""

    def __init__(self, p=0.5):
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) \
                or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be a probability between 0 and 1, got {_describe(p)}")
        self.p = float(p)

    def __call__(self, x):
        x = _batch(x, "RandomFlip")
        flip = _random.get_rng().random(x.shape[0]) < self.p
        out = x.copy()
        if flip.any():
            out[flip] = x[flip][..., ::-1]
        return out

    def get_config(self):
        return {"class": "RandomFlip", "p": self.p}

    def __repr__(self):
        return f"RandomFlip(p={self.p})"


class Compose:
    """Apply ``transforms`` (callables batch -> batch) in order; an empty list copies."""

    def __init__(self, transforms):
        if callable(transforms) or isinstance(transforms, (str, bytes)):
            raise ValueError(f"transforms must be a list of callables, got {_describe(transforms)}")
        try:
            items = list(transforms)
        except TypeError:
            raise ValueError(
                f"transforms must be a list of callables, got {_describe(transforms)}") from None
        for i, t in enumerate(items):
            if not callable(t):
                raise ValueError(f"transforms[{i}] is not callable: {_describe(t)}")
        self.transforms = items

    def __call__(self, x):
        x = _batch(x, "Compose")
        out = x
        for t in self.transforms:
            out = t(out)
        return x.copy() if out is x else out

    def get_config(self):
        return {"class": "Compose",
                "transforms": [t.get_config() if hasattr(t, "get_config") else repr(t)
                               for t in self.transforms]}

    def __repr__(self):
        return f"Compose({self.transforms!r})"
