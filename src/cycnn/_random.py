"""The one random generator behind weight initialisation, shuffling, dropout and augmentation.

``cycnn.seed(n)`` resets it, so the same seed (and thread count) gives identical results.
"""
import numpy as np

_rng = np.random.default_rng()


def seed(n):
    """Seed every random choice cycnn makes (initialisers, shuffling, dropout, augmentation)."""
    global _rng
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"seed must be a non-negative int, got {n!r}")
    _rng = np.random.default_rng(int(n))


def get_rng():
    """The shared ``numpy.random.Generator``."""
    return _rng
