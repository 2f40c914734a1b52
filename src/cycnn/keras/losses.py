"""Keras loss names and objects mapped onto cycnn's losses.

Categorical cross-entropies on a softmax output train on the logits: the model's last layer is a
separate Softmax (the Keras layers make one from ``activation='softmax'``) which ``fit`` skips,
feeding the logits to cycnn's fused softmax + cross-entropy (stable for any logits).
"""
from .. import layers as _cl
from .. import losses as _closses

__all__ = ["CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
           "MeanSquaredError", "get"]

SOFTMAX = _cl.Softmax


class CategoricalCrossentropy:
    """One-hot (or probability) targets; ``from_logits=False`` needs a softmax output."""

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Integer class labels; ``from_logits=False`` needs a softmax output."""


class BinaryCrossentropy:
    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)


class MeanSquaredError:
    pass


_NAMES = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
}


def get(spec, softmax_output):
    """The cycnn loss for a Keras loss name or object; ``softmax_output``: the model's output
    layer is a Softmax (which fit skips: the loss sees logits)."""
    if isinstance(spec, _closses.Loss):
        return spec
    if isinstance(spec, str):
        if spec.lower() not in _NAMES:
            raise ValueError(f"unknown loss {spec!r}; expected one of {sorted(_NAMES)}")
        spec = _NAMES[spec.lower()]()
    if isinstance(spec, CategoricalCrossentropy):
        if not spec.from_logits and not softmax_output:
            raise ValueError("categorical cross-entropy with from_logits=False expects a softmax "
                             "output (Dense(..., activation='softmax')); for a model that outputs "
                             "logits pass from_logits=True")
        if spec.from_logits and softmax_output:
            raise ValueError("from_logits=True, but the model ends with a softmax: drop one")
        return _closses.CrossEntropy()
    if isinstance(spec, BinaryCrossentropy):
        return _closses.BinaryCrossEntropy(from_logits=spec.from_logits)
    if isinstance(spec, MeanSquaredError):
        return _closses.MSE()
    raise TypeError(f"loss must be a Keras loss name or object, got {spec!r}")
