"""Weight initialisers.

Every initialiser has the signature ``init(shape, dtype=np.float32, fan_in=None, fan_out=None)``
and draws from the shared generator (:func:`cycnn._random.get_rng`), so ``cycnn.seed(n)`` makes
initialisation reproducible. When the fans are not given they are computed from ``shape`` the
way Keras and PyTorch do for weights laid out as (out, in, *receptive_field):

* Dense kernel (units, in_features): fan_in = in_features, fan_out = units
* Conv2D kernel (K, C, R, S):        fan_in = C*R*S,       fan_out = K*R*S
* Conv1D kernel (K, C, S):           fan_in = C*S,         fan_out = K*S

``he_normal`` and ``glorot_normal`` use a plain (untruncated) normal, as PyTorch does.
"""
import math

import numpy as np

from ._random import get_rng

__all__ = ["compute_fans", "he_uniform", "he_normal", "glorot_uniform", "glorot_normal",
           "zeros", "ones", "get"]


def compute_fans(shape):
    """(fan_in, fan_out) for a weight of ``shape`` = (out, in, *receptive_field)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fans(shape, fan_in, fan_out):
    auto_in, auto_out = compute_fans(shape)
    return (auto_in if fan_in is None else fan_in), (auto_out if fan_out is None else fan_out)


def _uniform(shape, limit, dtype):
    return get_rng().uniform(-limit, limit, size=tuple(shape)).astype(dtype)


def _normal(shape, std, dtype):
    return (get_rng().standard_normal(size=tuple(shape)) * std).astype(dtype)


def he_uniform(shape, dtype=np.float32, fan_in=None, fan_out=None):
    """U(-sqrt(6 / fan_in), sqrt(6 / fan_in)) (Kaiming uniform for ReLU)."""
    fan_in, _ = _fans(shape, fan_in, fan_out)
    return _uniform(shape, math.sqrt(6.0 / fan_in), dtype)


def he_normal(shape, dtype=np.float32, fan_in=None, fan_out=None):
    """N(0, 2 / fan_in) (Kaiming normal for ReLU)."""
    fan_in, _ = _fans(shape, fan_in, fan_out)
    return _normal(shape, math.sqrt(2.0 / fan_in), dtype)


def glorot_uniform(shape, dtype=np.float32, fan_in=None, fan_out=None):
    """U(-sqrt(6 / (fan_in + fan_out)), +sqrt(...)) (Xavier uniform)."""
    fan_in, fan_out = _fans(shape, fan_in, fan_out)
    return _uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def glorot_normal(shape, dtype=np.float32, fan_in=None, fan_out=None):
    """N(0, 2 / (fan_in + fan_out)) (Xavier normal)."""
    fan_in, fan_out = _fans(shape, fan_in, fan_out)
    return _normal(shape, math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def zeros(shape, dtype=np.float32, fan_in=None, fan_out=None):
    """All zeros."""
    return np.zeros(tuple(shape), dtype=dtype)


def ones(shape, dtype=np.float32, fan_in=None, fan_out=None):
    """All ones."""
    return np.ones(tuple(shape), dtype=dtype)


_REGISTRY = {f.__name__: f for f in (he_uniform, he_normal, glorot_uniform, glorot_normal,
                                     zeros, ones)}


def get(name):
    """The initialiser called ``name`` (a callable is returned unchanged)."""
    if callable(name):
        return name
    if isinstance(name, str) and name.lower() in _REGISTRY:
        return _REGISTRY[name.lower()]
    raise ValueError(f"unknown initializer {name!r}; expected one of {sorted(_REGISTRY)}")
