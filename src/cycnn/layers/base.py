"""The :class:`Layer` base class, the class registry and shared validation helpers."""
import contextlib
import contextvars
import itertools
import numbers
import re

import numpy as np

from .. import initializers
from .._args import pair

__all__ = ["Layer", "CallState", "WeightDict", "get", "reset_name_counters",
           "weight_source"]

_REGISTRY = {}
_COUNTERS = {}
# Where add_weight takes its arrays from while a model file is loaded (see weight_source).
_WEIGHT_SOURCE = contextvars.ContextVar("cycnn_weight_source", default=None)


@contextlib.contextmanager
def weight_source(source):
    """Within the block, :meth:`Layer.add_weight` calls ``source(layer, kind, key, shape,
    dtype)`` (kind 'params' or 'buffers') for each array instead of initialising one, and stores
    what it returns. ``cycnn.load_model`` uses it to check every declared shape against the
    file before anything is allocated, and to skip the random initialisation."""
    token = _WEIGHT_SOURCE.set(source)
    try:
        yield
    finally:
        _WEIGHT_SOURCE.reset(token)


def get(class_name):
    """The layer class registered under ``class_name`` (e.g. ``'Conv2D'``); classes pass through."""
    if isinstance(class_name, type) and issubclass(class_name, Layer):
        return class_name
    try:
        return _REGISTRY[class_name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layer class {class_name!r}; expected one of "
                         f"{sorted(_REGISTRY)}") from None


def reset_name_counters():
    """Restart the per-class default-name counters (so names begin again at ``<class>_1``)."""
    _COUNTERS.clear()


def _snake(class_name):
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", class_name).lower()


# ----------------------------------------------------------------------------- validation
def check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a float inside [low, high] (ends open when asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    bad = (v != v or (low is not None and (v <= low if low_open else v < low))
           or (high is not None and (v >= high if high_open else v > high)))
    if bad:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{'-inf' if low is None else low}, "
                         f"{'inf' if high is None else high}{hi}, got {value!r}")
    return v


def check_padding(value, name="padding"):
    """int >= 0, a pair of them, 'same' or 'valid'; lists become tuples (JSON round trip)."""
    if isinstance(value, str):
        if value.lower() not in ("same", "valid"):
            raise ValueError(f"{name} must be an int, a pair, 'same' or 'valid', got {value!r}")
        return value.lower()
    p = pair(value, name)
    if p[0] < 0 or p[1] < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return p[0] if isinstance(value, numbers.Integral) else p


def check_initializer(name, argname):
    if not isinstance(name, str):
        raise TypeError(f"{argname} must be the name of an initializer, got {name!r}")
    initializers.get(name)  # raises ValueError for unknown names
    return name.lower()


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _check_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


# ----------------------------------------------------------------------------- base class
class CallState:
    """What one forward call of a layer cached for its backward (see
    :meth:`Layer.save_call_state`): the layer it belongs to, its own values and its
    sub-layers' states."""
    __slots__ = ("layer", "values", "children")

    def __init__(self, layer, values, children):
        self.layer, self.values, self.children = layer, values, children

    def __repr__(self):
        keys = sorted(self.values) if self.values else []
        return f"CallState({self.layer.name!r}, {keys})"


_WEIGHTS_CLOCK = itertools.count(1)   # versions are unique across layers, always increasing


class WeightDict(dict):
    """The ``params`` / ``buffers`` dict of a layer: putting or removing an entry marks the
    layer's weights as changed (see :meth:`Layer.mark_weights_changed`)."""

    __slots__ = ("_owner",)

    def __init__(self, owner, items=()):
        super().__init__(items)
        self._owner = owner

    def _changed(self):
        owner = getattr(self, "_owner", None)   # unset while a copy/unpickle fills the dict
        if owner is not None:
            owner._weights_version = next(_WEIGHTS_CLOCK)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key):
        super().__delitem__(key)
        self._changed()

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self._changed()

    def setdefault(self, key, default=None):
        value = super().setdefault(key, default)
        self._changed()
        return value

    def pop(self, *args):
        value = super().pop(*args)
        self._changed()
        return value

    def popitem(self):
        item = super().popitem()
        self._changed()
        return item

    def clear(self):
        super().clear()
        self._changed()

    def __ior__(self, other):
        self.update(other)
        return self


class Layer:
    """Base class of every layer.

    Attributes: ``name``, ``built``, ``input_shape`` / ``output_shape`` (per sample, no batch
    dimension, set by :meth:`build`), ``params`` (trainable arrays), ``grads`` (same keys and
    shapes, overwritten by every :meth:`backward`), ``buffers`` (non-trainable saved state),
    ``dtype`` (float32 unless asked otherwise; setting it casts existing params and buffers) and
    ``needs_input_grad`` (True; a model sets it False on its first layer, whose input gradient
    nothing needs: Conv2D, Conv1D and Dense then skip computing it and their backward returns
    None).

    Subclasses implement ``_build(input_shape)`` (create params, return the output shape),
    ``forward``, ``backward``, ``_config()`` (their own constructor kwargs) and, when they accept
    only some input ranks, ``_check_input_shape(input_shape)``.

    Per-call cache: ``forward`` stores what ``backward`` needs with ``self._remember(key=value,
    ...)`` (one fresh dict per call) and ``backward`` reads it with ``self._cached(key)``; no other
    per-call attribute is kept. :meth:`save_call_state` / :meth:`restore_call_state` move that
    cache out and back in, so one layer object can be called twice in a graph (forward A, save,
    forward B, save; restore B, backward B; restore A, backward A).

    Weights version: :attr:`weights_version` changes whenever the weights may have changed --
    an entry of ``params`` / ``buffers`` put or removed, the dicts replaced, the dtype changed,
    :meth:`mark_weights_changed` called (by the training step after the optimizer, by
    BatchNorm's training forward, by ``load_model``). The inference plan behind
    ``Model.predict`` compares it to rebuild its packed weights. Whoever writes into a weight
    array in place by hand calls :meth:`mark_weights_changed`.
    """

    multi_input = False  # True for layers taking a list of inputs (cycnn.layers.merge)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):  # shared private bases are not layers of their own
            _REGISTRY[cls.__name__] = cls

    def __init__(self, name=None, dtype="float32"):
        if name is None:
            base = getattr(type(self), "_default_name", None) or _snake(type(self).__name__)
            counter = _COUNTERS.setdefault(base, itertools.count(1))
            name = f"{base}_{next(counter)}"
        elif not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        self.name = name
        self._dtype = _check_dtype(dtype)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._weights_version = next(_WEIGHTS_CLOCK)
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self._state = None  # this call's cache for backward (see save_call_state)
        self.needs_input_grad = True

    # -- weights and their version -------------------------------------------------------------
    @property
    def params(self):
        return self._params

    @params.setter
    def params(self, value):
        self._params = WeightDict(self, value)
        self.mark_weights_changed()

    @property
    def buffers(self):
        return self._buffers

    @buffers.setter
    def buffers(self, value):
        self._buffers = WeightDict(self, value)
        self.mark_weights_changed()

    @property
    def weights_version(self):
        """An int that changes whenever the weights may have changed (see the class note)."""
        return self._weights_version

    def mark_weights_changed(self):
        """Record that params or buffers were changed in place (plans built on the old
        values are rebuilt on their next use)."""
        self._weights_version = next(_WEIGHTS_CLOCK)

    # -- dtype ----------------------------------------------------------------------------
    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, value):
        dt = _check_dtype(value)
        self._dtype = dt
        for store in (self.params, self.buffers):
            for key, arr in store.items():
                if arr.dtype != dt:
                    store[key] = arr.astype(dt)
        self.grads = {k: g.astype(dt) for k, g in self.grads.items()}
        for child in self._children():
            child.dtype = dt

    def _children(self):
        """Sub-layers owned by this layer (a fused activation); their dtype follows ours."""
        return []

    # -- building ---------------------------------------------------------------------------
    def build(self, input_shape):
        """Create the parameters for per-sample ``input_shape``; a no-op once built."""
        input_shape = tuple(int(s) for s in input_shape)
        if any(s < 1 for s in input_shape):
            raise ValueError(f"{type(self).__name__} '{self.name}' needs a per-sample input shape "
                             f"of positive sizes, got {input_shape}")
        self._check_input_shape(input_shape)
        if self.built:
            return
        output_shape = self._build(input_shape)
        self.input_shape = input_shape
        self.output_shape = tuple(int(s) for s in output_shape)
        self.built = True

    def _build(self, input_shape):
        return self.compute_output_shape(input_shape)

    def add_weight(self, key, shape, initializer="zeros", trainable=True):
        """Create the array ``key`` of ``shape`` in the layer dtype, initialised by
        ``initializer`` (a name from :mod:`cycnn.initializers` or a callable), in ``params``
        (trainable) or ``buffers``; returns it. Layers create every weight through this method,
        so that loading a model file can supply the stored arrays instead (:func:`weight_source`)."""
        shape = tuple(int(s) for s in shape)
        kind = "params" if trainable else "buffers"
        source = _WEIGHT_SOURCE.get()
        if source is not None:
            value = source(self, kind, key, shape, self._dtype)
        else:
            value = initializers.get(initializer)(shape, dtype=self._dtype)
        getattr(self, kind)[key] = value
        return value

    def _check_input_shape(self, input_shape):
        """Raise ValueError when ``input_shape`` (per sample) does not suit this layer."""

    def compute_output_shape(self, input_shape):
        """Per-sample output shape for per-sample ``input_shape``."""
        return tuple(input_shape)

    def _prepare(self, x, ndim=None, what=None):
        """``x`` as an array of the layer dtype, checked and the layer built from it."""
        x = np.asarray(x, dtype=self._dtype)
        if ndim is not None and x.ndim not in ((ndim,) if isinstance(ndim, int) else ndim):
            raise ValueError(f"{type(self).__name__} '{self.name}' expects {what} input, got an "
                             f"array of shape {x.shape}")
        if not self.built:
            self.build(x.shape[1:])
        else:
            self._check_input_shape(tuple(x.shape[1:]))
        return x

    # -- computation ------------------------------------------------------------------------
    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=False):
        """``forward(x, training)`` on arrays; on symbolic tensors (``cycnn.Input`` and what
        layers return for them) a graph node, built by :mod:`cycnn.models.functional`."""
        symbolic = x if getattr(x, "_symbolic", False) is True else None
        if symbolic is None and isinstance(x, (list, tuple)):
            symbolic = next((t for t in x if getattr(t, "_symbolic", False) is True), None)
        if symbolic is not None:
            return symbolic._apply(self, x)
        return self.forward(x, training=training)

    # -- the per-call cache ---------------------------------------------------------------------
    # Everything a forward keeps for its backward lives in ONE object, ``self._state`` (a dict
    # made fresh by every forward through _remember). A graph that calls the same layer object
    # twice moves it out after each forward (save_call_state) and back in before the matching
    # backward (restore_call_state), so the two calls never see each other's arrays.
    def _remember(self, **values):
        """Start this call's cache, replacing the previous call's: ``values`` for backward."""
        self._state = values

    def _cached(self, key):
        """``key`` from this call's cache; RuntimeError when forward has not run (or its cache
        was moved out by :meth:`save_call_state`)."""
        state = self._state
        if state is None or key not in state:
            raise RuntimeError(f"{type(self).__name__} '{self.name}': call forward before backward")
        return state[key]

    def save_call_state(self):
        """Detach and return what the last forward cached for backward (this layer's and its
        fused activation's). The layer keeps nothing: backward raises until
        :meth:`restore_call_state` gives a state back. The state is opaque; pass it back to the
        same layer only."""
        state = CallState(self, self._state, tuple(c.save_call_state() for c in self._children()))
        self._state = None
        return state

    def restore_call_state(self, state):
        """Make ``state`` (from :meth:`save_call_state` on this layer) the cache that the next
        :meth:`backward` reads."""
        if not isinstance(state, CallState):
            raise TypeError(f"state must come from save_call_state, got {type(state).__name__}")
        if state.layer is not self:
            raise ValueError(f"state was saved by layer {state.layer.name!r}, not by "
                             f"{self.name!r}")
        self._state = state.values
        for child, child_state in zip(self._children(), state.children):
            child.restore_call_state(child_state)

    # -- configuration ------------------------------------------------------------------------
    def _config(self):
        return {}

    def get_config(self):
        """JSON-able constructor kwargs including ``name``; ``cls(**config)`` rebuilds the layer
        (``dtype`` is included only when it is not float32)."""
        config = {"name": self.name}
        config.update(self._config())
        if self._dtype != np.float32:
            config["dtype"] = self._dtype.name
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def count_params(self):
        """Number of trainable scalars (0 before :meth:`build`)."""
        return int(sum(p.size for p in self.params.values()))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args}{', ' if args else ''}name={self.name!r})"
