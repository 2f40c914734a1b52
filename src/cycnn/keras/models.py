"""Keras's ``Input`` / ``Model`` / ``Sequential`` on channels-last data, over a cycnn
:class:`~cycnn.models.Model` (NCHW inside).

Data crosses the boundary once: 4-D inputs (N, H, W, C) are transposed to (N, C, H, W) when
they enter ``fit`` / ``evaluate`` / ``predict``, and 4-D outputs (and 4-D targets) are
transposed back. Everything else -- the graph, training, saving -- is cycnn's own
:class:`cycnn.Model`, reachable as ``model.cycnn_model``.
"""
import numpy as np

from .. import losses as _closses
from .. import models as _cmodels
from ..models import callbacks as _ccallbacks
from ..models.functional import Input as _cinput
from . import layers as _klayers
from . import losses as _klosses
from . import optimizers as _koptimizers

__all__ = ["KerasTensor", "Input", "Model", "Sequential", "load_model"]


def _to_nchw_shape(shape):
    shape = tuple(int(s) for s in shape)
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


def _to_nhwc_shape(shape):
    shape = tuple(shape)
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


class KerasTensor:
    """A symbolic tensor with Keras's channels-last ``shape`` over a cycnn SymbolicTensor."""

    def __init__(self, symbolic):
        self.symbolic = symbolic

    @property
    def shape(self):
        return (None,) + _to_nhwc_shape(self.symbolic.sample_shape)

    @property
    def ndim(self):
        return self.symbolic.ndim

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}>"


def Input(shape=None, batch_size=None, name=None, dtype="float32"):  # noqa: N802
    """``keras.Input(shape=(28, 28, 1))``: channels-last per-sample shape, no batch axis."""
    if shape is None:
        raise ValueError("Input needs shape=")
    return KerasTensor(_cinput(_to_nchw_shape(shape), name=name, dtype=dtype))


def _nchw(x):
    """Model input: (N, H, W, C) -> contiguous (N, C, H, W); other ranks as they are."""
    x = np.asarray(x)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def _nhwc(y):
    return y.transpose(0, 2, 3, 1) if isinstance(y, np.ndarray) and y.ndim == 4 else y


def _map(fn, value):
    return [fn(v) for v in value] if isinstance(value, (list, tuple)) else fn(value)


def _verbose(value):
    return 1 if value == "auto" else value


class Model:
    """``keras.Model(inputs=..., outputs=...)`` (functional API) on channels-last data."""

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if kwargs:
            raise TypeError(f"Model: unsupported argument(s) {sorted(kwargs)}")
        self.name = name
        self._model = None
        self._keras_layers = []
        if inputs is not None or outputs is not None:
            self._wrap(_cmodels.Model(inputs=_map(lambda t: t.symbolic, inputs),
                                      outputs=_map(lambda t: t.symbolic, outputs),
                                      name=name))

    def _wrap(self, model):
        self._model = model
        if self.name is None:
            self.name = model.name

    @property
    def cycnn_model(self):
        """The cycnn Model doing the work (NCHW)."""
        self._require_built()
        return self._model

    def _require_built(self, x=None):
        if self._model is None:
            raise ValueError(f"model {self.name!r} has no input shape yet: start it with "
                             f"keras.Input(shape=...), give input_shape= to the first layer, or "
                             f"call fit/predict first")

    # -- structure ---------------------------------------------------------------------------
    @property
    def layers(self):
        return self.cycnn_model.layers

    def get_layer(self, name=None, index=None):
        return self.cycnn_model.get_layer(name=name, index=index)

    @property
    def input_shape(self):
        shape = self.cycnn_model.input_shape
        return (None,) + _to_nhwc_shape(shape)

    @property
    def output_shape(self):
        return (None,) + _to_nhwc_shape(self.cycnn_model.output_shape)

    def summary(self, print_fn=print):
        """cycnn's summary of the model, with Keras's channels-last shapes (None = batch)."""
        self.cycnn_model.summary(print_fn=print_fn,
                                 shape_fn=lambda s: s[:1] + _to_nhwc_shape(s[1:]))

    def count_params(self):
        return sum(self.cycnn_model.count_params())

    def get_weights(self):
        """Every weight array, in cycnn's layouts (conv kernels (K, C, R, S), Dense (in, out)
        as cycnn stores it)."""
        return self.cycnn_model.get_weights()

    def set_weights(self, weights):
        self.cycnn_model.set_weights(weights)

    # -- training ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Keras's compile: optimizer name or object, loss name or object
        ('categorical_crossentropy', 'sparse_categorical_crossentropy',
        'binary_crossentropy', 'mse', ...), metrics=['accuracy']."""
        if kwargs:
            raise TypeError(f"compile: unsupported argument(s) {sorted(kwargs)}")
        if loss is None:
            raise ValueError("compile needs loss=")
        self._compile_args = (optimizer, loss, metrics)
        if self._model is not None:
            self._compile_now()

    def _compile_now(self):
        optimizer, loss, metrics = self._compile_args
        model = self._model
        n_out = len(model.outputs)
        loss_list = list(loss) if isinstance(loss, (list, tuple)) else [loss] * n_out
        losses = []
        for i, item in enumerate(loss_list):
            probs = isinstance(model._graph.output_layer(i), _klosses.SOFTMAX)
            losses.append(_klosses.get(item, softmax_output=probs))
        model.compile(optimizer=_koptimizers.get(optimizer),
                      loss=losses if isinstance(loss, (list, tuple)) else losses[0],
                      metrics=list(metrics or []))

    def _ensure(self, x):
        """Build a deferred Sequential from the first data it sees; compile when asked to."""
        if self._model is None:
            first = x[0] if isinstance(x, (list, tuple)) else x
            self._build_from_data(np.asarray(first).shape[1:])
        if getattr(self, "_compile_args", None) is not None and self._model.loss is None:
            self._compile_now()

    def _build_from_data(self, shape):
        self._require_built()

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            **kwargs):
        """Keras's fit on channels-last data; returns a History (``history.history``)."""
        if kwargs:
            raise TypeError(f"fit: unsupported argument(s) {sorted(kwargs)}")
        self._ensure(x)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            validation_data = (_map(_nchw, validation_data[0]),
                               _map(_nchw, validation_data[1]))
        return self._model.fit(_map(_nchw, x), _map(_nchw, y),
                               batch_size=32 if batch_size is None else batch_size,
                               epochs=epochs, verbose=_verbose(verbose), callbacks=callbacks,
                               validation_split=validation_split,
                               validation_data=validation_data, shuffle=shuffle,
                               initial_epoch=initial_epoch)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False,
                 **kwargs):
        """[loss, metric, ...] as Keras (the loss alone when there are no metrics), or a dict
        with ``return_dict=True``."""
        if kwargs:
            raise TypeError(f"evaluate: unsupported argument(s) {sorted(kwargs)}")
        self._ensure(x)
        result = self._model.evaluate(_map(_nchw, x), _map(_nchw, y),
                                      batch_size=32 if batch_size is None else batch_size,
                                      verbose=_verbose(verbose))
        if return_dict:
            return result
        values = [result["loss"]] + [result[m] for m in self._model.metrics if m in result]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        """Outputs for channels-last x (4-D outputs come back channels-last)."""
        if kwargs:
            raise TypeError(f"predict: unsupported argument(s) {sorted(kwargs)}")
        self._ensure(x)
        out = self._model.predict(_map(_nchw, x), batch_size=32 if batch_size is None
                                  else batch_size)
        return _map(_nhwc, out)

    def __call__(self, x):
        return self.predict(x, verbose=0)

    # -- files -------------------------------------------------------------------------------
    def save(self, filepath):
        """cycnn's model file (architecture, weights, optimizer state); atomic."""
        self.cycnn_model.save(filepath)

    def __repr__(self):
        return f"<cycnn.keras {type(self).__name__} {self.name!r}>"


class Sequential(Model):
    """``keras.Sequential([...])``: a stack of Keras layers, optionally starting with
    ``keras.Input(shape=...)`` (or ``input_shape=`` on the first layer); without either it is
    built from the first data given to fit / predict."""

    def __init__(self, layers=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._input = None
        for item in layers or []:
            self.add(item)

    def add(self, layer):
        if isinstance(layer, KerasTensor):
            if self._input is not None or self._keras_layers:
                raise ValueError("keras.Input can only start a Sequential")
            self._input = layer
            return
        if not isinstance(layer, _klayers.Layer):
            raise TypeError(f"Sequential takes cycnn.keras layers, got {layer!r}")
        if layer.multi_input:
            raise TypeError(f"{type(layer).__name__} takes several inputs: use keras.Model")
        if self._model is not None:
            raise ValueError("the model is already built; add layers before using it")
        if isinstance(layer, _klayers.InputLayer) or (not self._keras_layers and self._input is
                                                      None and layer.input_shape is not None):
            self._input = Input(shape=layer.input_shape)
            if isinstance(layer, _klayers.InputLayer):
                return
        self._keras_layers.append(layer)
        if self._input is not None and len(self._keras_layers) >= 1:
            pass  # built lazily (fit/predict/summary), so add() may continue

    def _require_built(self, x=None):
        if self._model is None and self._input is not None:
            self._build(self._input)
        super()._require_built(x)

    def _build_from_data(self, shape):
        if self._input is None:
            self._input = Input(shape=shape)
        self._build(self._input)

    def _build(self, inputs):
        if not self._keras_layers:
            raise ValueError("Sequential has no layers")
        x = inputs
        for layer in self._keras_layers:
            x = layer(x)
        self._wrap(_cmodels.Model(inputs=inputs.symbolic, outputs=x.symbolic,
                                  name=self.name or "sequential"))


def load_model(filepath):
    """A Keras-front-end model from a file written by ``model.save`` (cycnn's format)."""
    model = Model()
    model._wrap(_cmodels.load_model(filepath))
    return model
