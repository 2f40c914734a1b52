"""Keras-named layers for :mod:`cycnn.keras`: the arguments and defaults of Keras 3 on
channels-last data, built from cycnn's own layers (NCHW inside).

A Keras layer here is a small recipe: called on a :class:`~cycnn.keras.models.KerasTensor` it
makes (once) the cycnn layer(s) that do the work, maps channels-last arguments to cycnn's
layout (a Concatenate on the last axis is cycnn's axis 1, Flatten keeps Keras's H, W, C order,
``activation='softmax'`` becomes a separate Softmax layer so that cross-entropy trains on the
logits) and applies them. Calling one layer object twice reuses its cycnn layers: the weights are
shared, as in Keras.
"""
import numbers

from .. import layers as _cl
from .._args import _same_padding, pair

__all__ = ["Layer", "InputLayer", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose",
           "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
           "BatchNormalization", "Dropout", "Flatten", "Dense", "Activation", "ReLU",
           "LeakyReLU", "Softmax", "Add", "Concatenate", "Multiply", "UpSampling2D",
           "ZeroPadding2D", "MaxPool2D", "AvgPool2D"]

_ACTIVATIONS = {None: None, "linear": None, "relu": "relu", "sigmoid": "sigmoid",
                "tanh": "tanh", "softmax": "softmax", "leaky_relu": "leaky_relu"}


def _activation(value):
    key = value.lower() if isinstance(value, str) else value
    if key not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of 'relu', 'sigmoid', 'tanh', 'softmax', "
                         f"'leaky_relu', 'linear' or None, got {value!r}")
    return _ACTIVATIONS[key]


def _padding_mode(value):
    if not isinstance(value, str) or value.lower() not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {value!r}")
    return value.lower()


def _initializer(value, default):
    if value is None:
        return default
    if not isinstance(value, str):
        raise TypeError(f"initializers are given by name here ('glorot_uniform', 'he_normal', "
                        f"...), got {value!r}")
    return value


def _check_zeros(value, name):
    if value not in (None, "zeros"):
        raise ValueError(f"{name}: only 'zeros' is supported, got {value!r}")


def _check_channels_last(data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"data_format: cycnn.keras takes channels-last data "
                         f"('channels_last'), got {data_format!r}; use cycnn's own layers for "
                         f"NCHW")


class Layer:
    """Base of the Keras-named layers: ``layer(tensor)`` on a KerasTensor (or a list of them
    for merges) returns a KerasTensor. ``input_shape=`` (channels-last, no batch axis) on the
    first layer of a Sequential gives the model its input, as in Keras 2."""

    multi_input = False

    def __init__(self, name=None, input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected or unsupported argument(s) "
                            f"{sorted(kwargs)}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        self.name = name
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self._cycnn = None       # the cycnn layers, made on the first call

    def _make(self, ndim, sample_shape):
        """The cycnn layers for an input of ``ndim`` axes (batch included), NCHW sample shape."""
        raise NotImplementedError

    @property
    def cycnn_layers(self):
        """The cycnn layers doing the work (empty before the first call)."""
        return list(self._cycnn or [])

    @property
    def weights(self):
        return [a for layer in self.cycnn_layers for a in layer.params.values()]

    def __call__(self, inputs):
        from .models import KerasTensor
        items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not items or not all(isinstance(t, KerasTensor) for t in items):
            raise TypeError(f"{type(self).__name__} is called on Keras tensors (from "
                            f"keras.Input and layer calls), got {inputs!r}")
        if self.multi_input != isinstance(inputs, (list, tuple)):
            raise TypeError(f"{type(self).__name__} takes "
                            f"{'a list of tensors' if self.multi_input else 'one tensor'}")
        if self._cycnn is None:
            first = items[0].symbolic
            self._cycnn = self._make(first.ndim, first.sample_shape)
        x = [t.symbolic for t in items] if self.multi_input else items[0].symbolic
        for layer in self._cycnn:
            x = layer(x)
        return KerasTensor(x)


class InputLayer(Layer):
    """``keras.layers.InputLayer(shape=...)`` as the first entry of a Sequential."""

    def __init__(self, shape=None, input_shape=None, name=None, **kwargs):
        super().__init__(name=name, input_shape=shape if shape is not None else input_shape,
                         **kwargs)
        if self.input_shape is None:
            raise ValueError("InputLayer needs shape=")

    def _make(self, ndim, sample_shape):
        return []


class _WithActivation(Layer):
    """A layer whose ``activation=`` becomes part of the cycnn layer, except softmax: a
    separate Softmax layer (over the channel axis), so fit can train on the logits."""

    def _with_activation(self, layer_cls, activation, **kwargs):
        act = _activation(activation)
        main = layer_cls(activation=None if act == "softmax" else act, name=self.name, **kwargs)
        return [main] + ([_cl.Softmax(axis=1)] if act == "softmax" else [])


class Conv2D(_WithActivation):
    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        _check_zeros(bias_initializer, "bias_initializer")
        self.config = dict(filters=filters, kernel_size=kernel_size, stride=strides,
                           padding=_padding_mode(padding), dilation=dilation_rate, groups=groups,
                           use_bias=use_bias,
                           kernel_initializer=_initializer(kernel_initializer, "glorot_uniform"))
        self.activation = activation
        _activation(activation)

    def _make(self, ndim, sample_shape):
        return self._with_activation(_cl.Conv2D, self.activation, **self.config)


class DepthwiseConv2D(_WithActivation):
    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        _check_zeros(bias_initializer, "bias_initializer")
        self.config = dict(kernel_size=kernel_size, depth_multiplier=depth_multiplier,
                           stride=strides, padding=_padding_mode(padding),
                           dilation=dilation_rate, use_bias=use_bias,
                           kernel_initializer=_initializer(depthwise_initializer,
                                                           "glorot_uniform"))
        self.activation = activation
        _activation(activation)

    def _make(self, ndim, sample_shape):
        return self._with_activation(_cl.DepthwiseConv2D, self.activation, **self.config)


class Conv2DTranspose(_WithActivation):
    """Keras's transposed convolution: 'valid' gives (H - 1) * s + k (at least H * s), 'same'
    gives H * s, made from PyTorch-style padding and output_padding."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        _check_zeros(bias_initializer, "bias_initializer")
        self.filters, self.activation = filters, activation
        self.kernel_size, self.strides = pair(kernel_size, "kernel_size"), pair(strides,
                                                                                "strides")
        self.dilation = pair(dilation_rate, "dilation_rate")
        self.padding = _padding_mode(padding)
        self.output_padding = None if output_padding is None else pair(output_padding,
                                                                       "output_padding")
        self.use_bias = use_bias
        self.kernel_initializer = _initializer(kernel_initializer, "glorot_uniform")
        _activation(activation)

    def _make(self, ndim, sample_shape):
        pads, extras = [], []
        for k, s, d, i in zip(self.kernel_size, self.strides, self.dilation, (0, 1)):
            span = d * (k - 1) + 1
            if self.padding == "same":        # output H * s
                p = max(span - s, 0)
                pad = -(-p // 2)
                extra = 2 * pad - (span - s)
            else:                             # output (H - 1) * s + span, at least H * s
                pad, extra = 0, max(s - span, 0)
            if self.output_padding is not None:
                extra = self.output_padding[i]
            pads.append(pad)
            extras.append(extra)
        return self._with_activation(
            _cl.Conv2DTranspose, self.activation, filters=self.filters,
            kernel_size=self.kernel_size, stride=self.strides, padding=tuple(pads),
            output_padding=tuple(extras), dilation=self.dilation, use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer)


class _Pooling(Layer):
    cycnn_class = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = _padding_mode(padding)

    def _make(self, ndim, sample_shape):
        pad = (0, 0)
        if self.padding == "same":
            pads = [_same_padding(size, k, s, 1)
                    for size, k, s in zip(sample_shape[1:], self.pool_size, self.strides)]
            if any(a != b for a, b in pads) or isinstance(self, AveragePooling2D) and any(
                    a for a, _ in pads):
                raise ValueError(f"{type(self).__name__}(padding='same') on {sample_shape[1:]} "
                                 f"images needs padding {pads}, which cycnn's pooling does not "
                                 f"do (only even, symmetric padding for max pooling); use "
                                 f"padding='valid' or ZeroPadding2D")
            pad = tuple(a for a, _ in pads)
        return [self.cycnn_class(self.pool_size, stride=self.strides, padding=pad,
                                 name=self.name)]


class MaxPooling2D(_Pooling):
    cycnn_class = _cl.MaxPool2D


class AveragePooling2D(_Pooling):
    cycnn_class = _cl.AvgPool2D


MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D


class _Global(Layer):
    cycnn_class = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        if keepdims:
            raise ValueError("keepdims=True is not supported")

    def _make(self, ndim, sample_shape):
        return [self.cycnn_class(name=self.name)]


class GlobalAveragePooling2D(_Global):
    cycnn_class = _cl.GlobalAvgPool2D


class GlobalMaxPooling2D(_Global):
    cycnn_class = _cl.GlobalMaxPool2D


class BatchNormalization(Layer):
    """Keras's BatchNormalization over the channel axis (axis=-1 of channels-last data):
    ``momentum`` weights the old running value (0.99), ``epsilon`` 1e-3."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True,
                 **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, 3):
            raise ValueError(f"axis: cycnn.keras normalises the channel axis (-1), got {axis!r}")
        if not center or not scale:
            raise ValueError("center=False / scale=False are not supported")
        self.momentum, self.epsilon = momentum, epsilon

    def _make(self, ndim, sample_shape):
        if ndim == 4:
            cls = _cl.BatchNorm2D
        elif ndim == 2:
            cls = _cl.BatchNorm1D
        else:
            raise ValueError(f"BatchNormalization takes (N, H, W, C) or (N, features) input, got "
                             f"{ndim} axes")
        return [cls(momentum=self.momentum, eps=self.epsilon, name=self.name)]


class Dropout(Layer):
    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if noise_shape is not None:
            raise ValueError("noise_shape is not supported")
        self.rate = rate

    def _make(self, ndim, sample_shape):
        return [_cl.Dropout(self.rate, name=self.name)]


class Flatten(Layer):
    """Flatten in Keras's order (H, W, C for images)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)

    def _make(self, ndim, sample_shape):
        return [_cl.Flatten(data_format="channels_last", name=self.name)]


class Dense(_WithActivation):
    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        _check_zeros(bias_initializer, "bias_initializer")
        self.units, self.activation, self.use_bias = units, activation, use_bias
        self.kernel_initializer = _initializer(kernel_initializer, "glorot_uniform")
        _activation(activation)

    def _make(self, ndim, sample_shape):
        if ndim != 2:
            raise ValueError(f"Dense takes (N, features) input here, got {ndim} axes: add "
                             f"Flatten or a global pooling first")
        return self._with_activation(_cl.Dense, self.activation, units=self.units,
                                     use_bias=self.use_bias,
                                     kernel_initializer=self.kernel_initializer)


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activation(activation)

    def _make(self, ndim, sample_shape):
        if self.activation == "softmax":
            return [_cl.Softmax(axis=1, name=self.name)]
        return [_cl.Activation(self.activation or "linear", name=self.name)]


class ReLU(Layer):
    def _make(self, ndim, sample_shape):
        return [_cl.ReLU(name=self.name)]


class LeakyReLU(Layer):
    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = negative_slope

    def _make(self, ndim, sample_shape):
        return [_cl.LeakyReLU(alpha=self.negative_slope, name=self.name)]


class Softmax(Layer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"Softmax: only axis=-1 (the channel axis) is supported, got {axis!r}")

    def _make(self, ndim, sample_shape):
        return [_cl.Softmax(axis=1, name=self.name)]


class _Merge(Layer):
    multi_input = True
    cycnn_class = None

    def _make(self, ndim, sample_shape):
        return [self.cycnn_class(name=self.name)]


class Add(_Merge):
    cycnn_class = _cl.Add


class Multiply(_Merge):
    cycnn_class = _cl.Multiply


class Concatenate(Layer):
    """Concatenate on a channels-last ``axis`` (-1: the channels, cycnn's axis 1)."""

    multi_input = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def _make(self, ndim, sample_shape):
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 1 <= axis < ndim:
            raise ValueError(f"Concatenate axis {self.axis} is out of range for {ndim}-axis "
                             f"input (the batch axis 0 cannot be concatenated)")
        if ndim == 4:             # channels-last axis -> NCHW axis
            axis = {1: 2, 2: 3, 3: 1}[axis]
        return [_cl.Concatenate(axis=axis, name=self.name)]


class UpSampling2D(Layer):
    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        self.size, self.interpolation = size, interpolation

    def _make(self, ndim, sample_shape):
        return [_cl.UpSampling2D(self.size, interpolation=self.interpolation, name=self.name)]


class ZeroPadding2D(Layer):
    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_channels_last(data_format)
        self.padding = padding

    def _make(self, ndim, sample_shape):
        return [_cl.ZeroPadding2D(self.padding, name=self.name)]
