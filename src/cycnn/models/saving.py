"""The cycnn model file format: ``Model.save`` / ``load_model``.

Layout (version 2)
------------------
An uncompressed (ZIP_STORED) NumPy ``.npz`` archive of plain numeric arrays. The entry
``__cycnn__`` is a uint8 array holding a UTF-8 JSON header::

    {"format": "cycnn.model", "version": 2, "class_name": "Model" | "Sequential" | ...,
     "config": <model.get_config()>, "compile": <optimizer/loss/metrics or null>,
     "arrays": {"<name>": {"shape": [...], "dtype": "float32"}, ...}}

Weights are stored as ``layers.<i>.params.<key>`` and ``layers.<i>.buffers.<key>`` (``i`` indexes
``model.layers``), the optimizer state as ``optimizer.<key>``. A functional model's config holds
its layers and its wiring (inputs, nodes, outputs); a Sequential's its layers and input shape.
Version-1 files (Sequential only, written by cycnn 0.1; ``arrays`` a list of names) are still
read. Files are written to a temporary file in the same folder, then renamed over the target, so
a crash never leaves a half-written model behind.

Reading untrusted files
-----------------------
A file costs what it holds, never more, and never runs code:

* the archive is read with :mod:`zipfile`, not ``np.load``: compressed or encrypted members are
  refused, every member's size must agree with its zip headers and lie inside the file, and the
  members together cannot be larger than the file (no zip bombs);
* each member's ``.npy`` header is parsed first (no pickle: only plain numeric dtypes), and the
  size it declares must equal the member's size, before anything is allocated;
* the JSON header is at most :data:`MAX_HEADER_BYTES`;
* the layers are created from the config without random initialisation: every weight a layer
  declares (:meth:`cycnn.layers.Layer.add_weight`) is checked against the stored array's shape
  before it is allocated, and the stored array becomes the weight. A file declaring
  ``Dense(units=3_000_000)`` next to a small kernel fails at once with ValueError.

This module depends on no model class: the classes register themselves (``Model`` subclasses do
so when they are defined) and are used through the Model interface (``layers``, ``optimizer``,
``get_config``, ``from_config``).
"""
import json
import math
import os
import tempfile
import zipfile

import numpy as np

from .._random import get_rng
from ..layers.base import weight_source

__all__ = ["save_model", "load_model", "register_model_class", "MAX_HEADER_BYTES"]

FORMAT_NAME = "cycnn.model"
FORMAT_VERSION = 2
MAX_HEADER_BYTES = 16 << 20   # the JSON header
_MAX_NPY_HEADER = 10000       # an .npy header (numpy's own default limit)
_HEADER_KEY = "__cycnn__"

_MODEL_CLASSES = {}


def register_model_class(cls):
    """Make ``cls`` (a Model subclass) loadable under its class name."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


# ----------------------------------------------------------------------------- writing
def _model_arrays(model):
    arrays = {}
    if model.built:
        for i, layer in enumerate(model.layers):
            for kind in ("params", "buffers"):
                for key, value in getattr(layer, kind).items():
                    arrays[f"layers.{i}.{kind}.{key}"] = np.asarray(value)
    if model.optimizer is not None:
        for key, value in model.optimizer.state_dict().items():
            arrays[f"optimizer.{key}"] = np.asarray(value)
    return arrays


def save_model(model, path):
    """Write ``model`` (architecture, weights, buffers, compile settings, optimizer state)
    atomically to ``path``."""
    path = os.fspath(path)
    arrays = _model_arrays(model)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
              "class_name": type(model).__name__, "config": model.get_config(),
              "compile": model._compile_config(),
              "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.name}
                         for name, a in sorted(arrays.items())}}
    arrays[_HEADER_KEY] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)   # ZIP_STORED members
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


# ----------------------------------------------------------------------------- reading
class _Archive:
    """The members of an .npz file, checked without reading their data: ``entries`` maps a name
    to (ZipInfo, shape, dtype, fortran_order, data offset in the member, data size)."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "rb")
        try:
            self.size = os.fstat(self.file.fileno()).st_size
            if self.size == 0:
                raise ValueError(f"not a cycnn model file: {path!r} is empty")
            try:
                self.zip = zipfile.ZipFile(self.file)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, OverflowError,
                    NotImplementedError) as exc:
                raise ValueError(f"not a cycnn model file (or damaged): {path!r} "
                                 f"({type(exc).__name__}: {exc})") from None
            self.entries = {}
            total = 0
            for info in self.zip.infolist():
                total += info.file_size
                self._check_member(info, total)
                name = info.filename[:-4]
                if name in self.entries:
                    raise ValueError(f"damaged cycnn model file: {path!r} holds {name!r} twice")
                self.entries[name] = self._npy_header(info)
        except BaseException:
            self.file.close()
            raise

    def _bad(self, why):
        return ValueError(f"damaged or hostile cycnn model file: {self.path!r}: {why}")

    def _check_member(self, info, total):
        if info.flag_bits & 0x1:
            raise self._bad(f"member {info.filename!r} is encrypted")
        if info.compress_type != zipfile.ZIP_STORED:
            raise self._bad(f"member {info.filename!r} is compressed (method "
                            f"{info.compress_type}); cycnn model files are uncompressed")
        if info.compress_size != info.file_size:
            raise self._bad(f"member {info.filename!r} declares {info.file_size} bytes but "
                            f"stores {info.compress_size}")
        if info.header_offset + info.compress_size > self.size or total > self.size:
            raise self._bad(f"members declare more bytes than the file holds ({self.size})")
        if not info.filename.endswith(".npy"):
            raise self._bad(f"member {info.filename!r} is not an .npy array")

    def _npy_header(self, info):
        try:
            with self.zip.open(info) as f:
                major, _ = np.lib.format.read_magic(f)
                if major == 1:
                    header = np.lib.format.read_array_header_1_0(f, _MAX_NPY_HEADER)
                elif major in (2, 3):
                    header = np.lib.format.read_array_header_2_0(f, _MAX_NPY_HEADER)
                else:
                    raise ValueError(f"unknown .npy version {major}")
                offset = f.tell()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError, TypeError,
                OverflowError, NotImplementedError) as exc:
            raise self._bad(f"member {info.filename!r}: {type(exc).__name__}: {exc}") from None
        shape, fortran, dtype = header
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
                or dtype.kind not in "biuf":
            raise self._bad(f"member {info.filename!r} holds {dtype} values, not numbers")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise self._bad(f"member {info.filename!r} declares shape {shape} ({nbytes} bytes) "
                            f"but holds {info.file_size - offset} bytes of data")
        return info, tuple(shape), dtype, fortran, offset, nbytes

    def shape(self, name):
        return self.entries[name][1]

    def dtype(self, name):
        return self.entries[name][2]

    def read(self, name):
        """The array ``name`` (a fresh, writable array; costs its size in the file)."""
        info, shape, dtype, fortran, offset, nbytes = self.entries[name]
        buf = np.empty(nbytes, np.uint8)
        try:
            with self.zip.open(info) as f:
                f.seek(offset)
                got = f.readinto(memoryview(buf)) if nbytes else 0
                f.read(1)  # reaching the end makes zipfile check the CRC
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise self._bad(f"member {info.filename!r}: {type(exc).__name__}: {exc}") from None
        if got != nbytes:
            raise self._bad(f"member {info.filename!r} is truncated")
        return buf.view(dtype).reshape(shape, order="F" if fortran else "C")

    def close(self):
        self.zip.close()
        self.file.close()


def _read_header(archive):
    path = archive.path
    if _HEADER_KEY not in archive.entries:
        raise ValueError(f"not a cycnn model file: {path!r} has no cycnn header")
    if archive.dtype(_HEADER_KEY) != np.uint8 or len(archive.shape(_HEADER_KEY)) != 1:
        raise ValueError(f"not a cycnn model file: {path!r} has no cycnn header")
    if archive.shape(_HEADER_KEY)[0] > MAX_HEADER_BYTES:
        raise ValueError(f"cycnn model file {path!r}: header of {archive.shape(_HEADER_KEY)[0]}"
                         f" bytes, more than the {MAX_HEADER_BYTES} allowed")
    try:
        header = json.loads(archive.read(_HEADER_KEY).tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"damaged cycnn model file: {path!r} (header: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"not a cycnn model file: {path!r} (format "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version \
            or version > FORMAT_VERSION:
        raise ValueError(f"unsupported cycnn model file version {version!r} in {path!r}; "
                         f"this cycnn reads versions 1 to {FORMAT_VERSION}")
    declared = header.get("arrays", [])
    if not isinstance(declared, (list, dict)):
        raise ValueError(f"damaged cycnn model file: {path!r} (header 'arrays')")
    missing = sorted(set(declared) - set(archive.entries))
    if missing:
        raise ValueError(f"damaged cycnn model file: {path!r} lacks {missing}")
    if isinstance(declared, dict):
        for name, spec in declared.items():
            if not isinstance(spec, dict) or list(archive.shape(name)) != spec.get("shape"):
                raise ValueError(f"damaged cycnn model file: {path!r}: {name} has shape "
                                 f"{archive.shape(name)}, the header declares {spec!r}")
    return header


class _Weights:
    """The weight source of ``load_model``: hands each layer its stored arrays, checking the
    shape the layer declares against the file before reading (or allocating) anything."""

    def __init__(self, archive, layers):
        self.archive = archive
        self.index = {id(layer): i for i, layer in enumerate(layers)}
        self.given = set()

    def name(self, layer, kind, key):
        i = self.index.get(id(layer))
        if i is None:
            raise ValueError(f"layer {layer.name!r} is not among the model's layers")
        return f"layers.{i}.{kind}.{key}"

    def check(self, name, shape):
        archive = self.archive
        if name not in archive.entries:
            raise ValueError(f"damaged cycnn model file: {archive.path!r} lacks {name!r}")
        if archive.dtype(name).kind not in "iuf":
            raise ValueError(f"damaged cycnn model file: {archive.path!r}: {name} holds "
                             f"{archive.dtype(name)} values, not numbers")
        if archive.shape(name) != tuple(shape):
            raise ValueError(f"cycnn model file {archive.path!r}: {name} has shape "
                             f"{archive.shape(name)}, the model declares {tuple(shape)}")

    def __call__(self, layer, kind, key, shape, dtype):
        name = self.name(layer, kind, key)
        self.check(name, shape)
        self.given.add(name)
        return np.ascontiguousarray(self.archive.read(name), dtype=dtype)

    def restore_rest(self, model):
        """Arrays of layers that did not create them through add_weight: checked and copied."""
        for layer in model.layers:
            for kind in ("params", "buffers"):
                store = getattr(layer, kind)
                for key in store:
                    name = self.name(layer, kind, key)
                    if name not in self.given:
                        self.check(name, store[key].shape)
                        store[key][...] = self.archive.read(name)


def load_model(path):
    """Load a model written by ``Model.save`` (either kind, format version 1 or 2):
    architecture, weights and, when it was compiled, optimizer, loss, metrics and optimizer
    state (so training can continue). Untrusted files are safe to load (see the module
    docstring); anything wrong gives ValueError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such cycnn model file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"expected a cycnn model file, got a directory: {path!r}")
    archive = _Archive(path)
    try:
        return _load(archive, path)
    finally:
        archive.close()


def _load(archive, path):
    header = _read_header(archive)
    class_name = header.get("class_name", "Sequential") if header["version"] >= 2 \
        else "Sequential"
    cls = _MODEL_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise ValueError(f"cycnn model file {path!r} holds a {class_name!r}, which this cycnn "
                         f"does not know (known: {sorted(_MODEL_CLASSES)})")
    # Layers normally draw no random numbers here (their weights come from the file), but one
    # that creates an array outside add_weight would: keep the shared generator's state.
    rng_state = get_rng().bit_generator.state
    try:
        config = header["config"]
        if not isinstance(config, dict):
            raise TypeError(f"config is {type(config).__name__}, not a dict")
        layers = cls._layers_from_config(config)
        weights = _Weights(archive, layers)
        with weight_source(weights):
            model = cls.from_config(config, layers=layers)
        weights.restore_rest(model)
        compiled = header.get("compile")
        if compiled is not None:
            model._restore_compile(compiled)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if repr(path) in message
                         else f"cycnn model file {path!r}: {message}") from None
    except (KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ValueError(f"damaged cycnn model file: {path!r} (config: {type(exc).__name__}: "
                         f"{exc})") from None
    finally:
        get_rng().bit_generator.state = rng_state
    state = {name[len("optimizer."):]: archive.read(name) for name in archive.entries
             if name.startswith("optimizer.")}
    if model.optimizer is not None and state:
        params = model.params
        for key, value in state.items():   # per-parameter slots must match the parameters
            slot, _, index = key.rpartition(".")
            if slot and index.isdigit() and (int(index) >= len(params)
                                             or value.shape != params[int(index)].shape):
                raise ValueError(f"damaged cycnn model file: {path!r}: optimizer.{key} has "
                                 f"shape {value.shape}, which matches no parameter")
        try:
            model.optimizer.load_state_dict(state)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"damaged cycnn model file: {path!r} (optimizer state: {exc})") \
                from None
    return model
