"""Models: the :class:`Model` base (compile / fit / evaluate / predict / summary / save) and the
ways to build one (:class:`Sequential`), callbacks, console progress, data batching and the file
format (:func:`load_model`).

Modules (data flows down, no cycles): ``base`` (Model) -> ``saving`` (file format), ``callbacks``,
``progress``, ``data``; ``sequential`` builds on ``base``.
"""
from .base import Model
from .callbacks import History
from .saving import load_model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "History", "load_model"]
