"""Argument checks shared by the model classes (errors echo the value received)."""
import numbers

import numpy as np

__all__ = ["describe", "check_int", "as_shape"]


def describe(value):
    """Short text for an error message: shape and dtype of arrays, a clipped repr otherwise."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def as_shape(shape, name="input_shape"):
    """A per-sample shape (no batch axis) as a tuple of positive ints."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints (per sample, no batch axis), "
                        f"got {describe(shape)}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1
                       for d in dims):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints (per sample, "
                         f"no batch axis), got {describe(shape)}")
    return tuple(int(d) for d in dims)
