"""Compatibility alias: the models live in :mod:`cycnn.models` (Sequential, History, load_model)."""
from .models import History, Sequential, load_model  # noqa: F401

__all__ = ["Sequential", "History", "load_model"]
