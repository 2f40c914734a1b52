"""The cycnn model file format: ``Model.save`` / ``load_model``.

An uncompressed NumPy ``.npz`` archive of plain arrays, read back with ``allow_pickle=False``.
The entry ``__cycnn__`` is a uint8 array holding a UTF-8 JSON header: ``{"format": "cycnn.model",
"version": 1, "config": <model config>, "compile": <optimizer/loss/metrics or null>, "arrays":
[...]}``. Weights are stored as ``layers.<i>.params.<key>`` and ``layers.<i>.buffers.<key>``
(``i`` is the layer index), the optimizer state as ``optimizer.<key>``. Files are written to a
temporary file in the same folder, then renamed over the target, so a crash never leaves a
half-written model behind.

This module depends on no model class: the classes register themselves (``Model`` subclasses do
so when they are defined) and are used through the Model interface (``layers``, ``optimizer``,
``get_config``, ``from_config``).
"""
import json
import os
import tempfile

import numpy as np

from .._random import get_rng

__all__ = ["save_model", "load_model", "register_model_class"]

FORMAT_NAME = "cycnn.model"
FORMAT_VERSION = 1
_HEADER_KEY = "__cycnn__"

_MODEL_CLASSES = {}


def register_model_class(cls):
    """Make ``cls`` (a Model subclass) loadable under its class name."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def save_model(model, path):
    """Write ``model`` (architecture, weights, buffers, compile settings, optimizer state)
    atomically to ``path``."""
    path = os.fspath(path)
    arrays = {}
    if model.built:
        for i, layer in enumerate(model.layers):
            for key, value in layer.params.items():
                arrays[f"layers.{i}.params.{key}"] = np.asarray(value)
            for key, value in getattr(layer, "buffers", {}).items():
                arrays[f"layers.{i}.buffers.{key}"] = np.asarray(value)
    if model.optimizer is not None:
        for key, value in model.optimizer.state_dict().items():
            arrays[f"optimizer.{key}"] = np.asarray(value)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": model.get_config(),
              "compile": model._compile_config(), "arrays": sorted(arrays)}
    arrays[_HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_file(path):
    """(header dict, {name: array}) of a cycnn model file; ValueError when it is not one."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such cycnn model file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"expected a cycnn model file, got a directory: {path!r}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"not a cycnn model file: {path!r} is empty")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise ValueError("a single .npy array, not an archive")
            arrays = {name: archive[name] for name in archive.files}
    except OSError as exc:
        if isinstance(exc, (PermissionError, FileNotFoundError)):
            raise
        raise ValueError(f"not a cycnn model file (or damaged): {path!r} ({exc})") from None
    except Exception as exc:  # BadZipFile, zlib errors, bad npy headers, pickled data ...
        raise ValueError(f"not a cycnn model file (or damaged): {path!r} "
                         f"({type(exc).__name__}: {exc})") from None
    raw = arrays.pop(_HEADER_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"not a cycnn model file: {path!r} has no cycnn header")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError as exc:
        raise ValueError(f"damaged cycnn model file: {path!r} (header: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"not a cycnn model file: {path!r} (format "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    version = header.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"unsupported cycnn model file version {version!r} in {path!r}; "
                         f"this cycnn reads versions up to {FORMAT_VERSION}")
    missing = set(header.get("arrays", [])) - set(arrays)
    if missing:
        raise ValueError(f"damaged cycnn model file: {path!r} lacks {sorted(missing)}")
    return header, arrays


def _restore(target, name, arrays, key, path):
    value = arrays.get(key)
    if value is None:
        raise ValueError(f"damaged cycnn model file: {path!r} lacks {key!r}")
    if value.dtype.kind not in "iuf":
        raise ValueError(f"damaged cycnn model file: {path!r}: {key} holds {value.dtype} values, "
                         f"not numbers")
    if value.shape != target[name].shape:
        raise ValueError(f"cycnn model file {path!r}: {key} has shape {value.shape}, the model "
                         f"expects {target[name].shape}")
    target[name][...] = value


def load_model(path):
    """Load a model written by ``Model.save``: architecture, weights and, when it was
    compiled, optimizer, loss, metrics and optimizer state (so training can continue)."""
    path = os.fspath(path)
    header, arrays = _read_file(path)
    # Building the layers draws initial weights from the shared generator; put its state back
    # so that loading a model does not change what a seeded run does next.
    rng_state = get_rng().bit_generator.state
    try:
        model = _MODEL_CLASSES["Sequential"].from_config(header["config"])
        compiled = header.get("compile")
        if compiled is not None:
            model._restore_compile(compiled)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"damaged cycnn model file: {path!r} (config: {type(exc).__name__}: "
                         f"{exc})") from None
    finally:
        get_rng().bit_generator.state = rng_state
    if model.built:
        for i, layer in enumerate(model.layers):
            for key in layer.params:
                _restore(layer.params, key, arrays, f"layers.{i}.params.{key}", path)
            buffers = getattr(layer, "buffers", {})
            for key in buffers:
                _restore(buffers, key, arrays, f"layers.{i}.buffers.{key}", path)
    state = {key[len("optimizer."):]: value for key, value in arrays.items()
             if key.startswith("optimizer.")}
    if model.optimizer is not None and state:
        model.optimizer.load_state_dict(state)
    return model
