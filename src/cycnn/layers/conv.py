"""Convolution layers (NCHW / NCL) on top of ``cycnn.ops``."""
import numpy as np

from .. import ops
from .._args import conv_padding, conv_transpose_padding, pair, positive_pair
from .activations import WithActivation
from .base import Layer, check_bool, check_initializer, check_padding, check_positive_int

__all__ = ["Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv1D"]


def _as_list(value):
    return list(value) if isinstance(value, tuple) else value


def _check_image(layer, input_shape):
    """Per-sample input (C, H, W), with the channel count the layer was built for."""
    if len(input_shape) != 3:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects per-sample input shape "
                         f"(C, H, W), got {input_shape}")
    if layer.built and input_shape[0] != layer.input_shape[0]:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' was built for "
                         f"{layer.input_shape[0]} input channels, got input shape {input_shape}")


class Conv2D(WithActivation, Layer):
    """2-D convolution (cross-correlation) over NCHW input, optionally followed by an activation.

    Parameters: ``kernel`` (filters, C/groups, R, S) and ``bias`` (filters,) when ``use_bias``.
    ``padding`` is an int, a pair (ph, pw), ``'valid'`` (no padding) or ``'same'`` (TensorFlow
    meaning: output ceil(H / stride); an odd total pad puts the extra pixel bottom/right).
    ``groups`` (dividing C and filters) splits channels and filters into groups that see only
    each other (PyTorch's meaning); ``groups=C`` is a depthwise convolution (see also
    :class:`DepthwiseConv2D`).

    Shape:
        input (N, C, H, W) -> output (N, filters, H_out, W_out) with, per axis,
        ``H_out = floor((H + pad_top + pad_bottom - dilation*(R - 1) - 1) / stride) + 1``;
        'valid': pads 0; int p: pad_top = pad_bottom = p; 'same': ``H_out = ceil(H / stride)``.
    """

    def __init__(self, filters, kernel_size, stride=1, padding="valid", dilation=1, use_bias=True,
                 activation=None, kernel_initializer="he_uniform", groups=1, name=None,
                 dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.filters = check_positive_int(filters, "filters")
        self._init_geometry(kernel_size, stride, padding, dilation, use_bias, kernel_initializer)
        self.groups = check_positive_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(f"groups must divide filters, got groups={self.groups} and "
                             f"filters={self.filters}")
        self._set_activation(activation)

    def _init_geometry(self, kernel_size, stride, padding, dilation, use_bias, kernel_initializer):
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = positive_pair(stride, "stride")
        self.dilation = positive_pair(dilation, "dilation")
        self.padding = check_padding(padding)
        self.use_bias = check_bool(use_bias, "use_bias")
        self.kernel_initializer = check_initializer(kernel_initializer, "kernel_initializer")

    def _geometry_config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": _as_list(self.padding), "dilation": list(self.dilation),
                "use_bias": self.use_bias, "activation": self._activation_config(),
                "kernel_initializer": self.kernel_initializer}

    def _config(self):
        config = {"filters": self.filters, **self._geometry_config()}
        if self.groups != 1:
            config["groups"] = self.groups
        return config

    def _check_input_shape(self, input_shape):
        _check_image(self, input_shape)
        if input_shape[0] % self.groups:
            raise ValueError(f"{type(self).__name__} '{self.name}' has groups={self.groups}, "
                             f"which must divide the {input_shape[0]} input channels")

    def _out_channels(self, channels):
        return self.filters

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        _, _, _, (oh, ow) = conv_padding(self.padding, tuple(input_shape[1:]), self.kernel_size,
                                         self.stride, self.dilation)
        return (self._out_channels(int(input_shape[0])), oh, ow)

    def _build(self, input_shape):
        out = self.compute_output_shape(input_shape)
        shape = (out[0], input_shape[0] // self.groups) + self.kernel_size
        self.add_weight("kernel", shape, self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (out[0],), "zeros")
        return out

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        self._remember(x=x)
        y = ops.conv2d(x, self.params["kernel"], self.params.get("bias"), stride=self.stride,
                       padding=self.padding, dilation=self.dilation, groups=self.groups)
        return self._activate(y, training)

    def backward(self, dy):
        x = self._cached("x")
        dy = self._activation_backward(dy)
        dy = np.asarray(dy, dtype=self.dtype)
        dx, dw, db = ops.conv2d_backward(dy, x, self.params["kernel"], stride=self.stride,
                                         padding=self.padding, dilation=self.dilation,
                                         compute_dx=self.needs_input_grad, groups=self.groups)
        self.grads = {"kernel": dw}
        if self.use_bias:
            self.grads["bias"] = db
        return dx


class DepthwiseConv2D(Conv2D):
    """Depthwise 2-D convolution: every input channel convolved with its own
    ``depth_multiplier`` filters (Conv2D with groups = C and filters = C * depth_multiplier, run
    on a direct kernel), optionally followed by an activation; MobileNet's spatial half.

    Parameters: ``kernel`` (C * depth_multiplier, 1, R, S), output channel k reading input
    channel k // depth_multiplier (PyTorch's layout), and ``bias`` (C * depth_multiplier,)
    when ``use_bias``. ``padding`` as :class:`Conv2D`.

    Shape:
        input (N, C, H, W) -> output (N, C * depth_multiplier, H_out, W_out), H_out and W_out as
        :class:`Conv2D`.
    """

    def __init__(self, kernel_size, depth_multiplier=1, stride=1, padding="valid", dilation=1,
                 use_bias=True, activation=None, kernel_initializer="he_uniform", name=None,
                 dtype="float32"):
        Layer.__init__(self, name=name, dtype=dtype)
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier")
        self._init_geometry(kernel_size, stride, padding, dilation, use_bias, kernel_initializer)
        self.filters = None   # C * depth_multiplier, known at build
        self.groups = 1       # C, known at build
        self._set_activation(activation)

    def _config(self):
        return {"depth_multiplier": self.depth_multiplier, **self._geometry_config()}

    def _out_channels(self, channels):
        return channels * self.depth_multiplier

    def build(self, input_shape):
        if not self.built and len(tuple(input_shape)) == 3:
            self.groups = int(tuple(input_shape)[0])
            self.filters = self.groups * self.depth_multiplier
        super().build(input_shape)


class Conv2DTranspose(WithActivation, Layer):
    """2-D transposed convolution ("deconvolution", the input gradient of a :class:`Conv2D`),
    optionally followed by an activation; upsamples by ``stride``.

    Parameters: ``kernel`` (C, filters, R, S) (PyTorch's ``ConvTranspose2d`` layout) and
    ``bias`` (filters,) when ``use_bias``. ``padding`` is an int or a pair cropped from both
    sides of the full output, ``'valid'`` (0) or ``'same'`` (output = input * stride, as Keras);
    ``output_padding`` (smaller than the stride or the dilation) adds rows/columns at the
    bottom/right to reach an exact size.

    Shape:
        input (N, C, H, W) -> output (N, filters, H_out, W_out) with, per axis,
        ``H_out = (H - 1) * stride - pad_top - pad_bottom + dilation * (R - 1)
        + output_padding + 1``; 'same': ``H_out = H * stride``.
    """
    _default_name = "conv2d_transpose"

    def __init__(self, filters, kernel_size, stride=1, padding=0, output_padding=0, dilation=1,
                 use_bias=True, activation=None, kernel_initializer="he_uniform", name=None,
                 dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = positive_pair(stride, "stride")
        self.dilation = positive_pair(dilation, "dilation")
        self.padding = check_padding(padding)
        self.output_padding = check_padding(output_padding, "output_padding")
        if isinstance(self.output_padding, str):
            raise TypeError(f"output_padding must be an int or a pair, got {output_padding!r}")
        op = pair(self.output_padding, "output_padding")
        if self.padding == "same" and any(op):
            raise ValueError(f"output_padding must be 0 with padding='same', got "
                             f"{output_padding!r}")
        for e, s, d in zip(op, self.stride, self.dilation):
            if e >= s and e >= d:
                raise ValueError(f"output_padding must be smaller than the stride or the "
                                 f"dilation, got output_padding={output_padding!r} with stride "
                                 f"{stride!r} and dilation {dilation!r}")
        self.use_bias = check_bool(use_bias, "use_bias")
        self.kernel_initializer = check_initializer(kernel_initializer, "kernel_initializer")
        self._set_activation(activation)

    def _config(self):
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": _as_list(self.padding),
                "output_padding": _as_list(self.output_padding), "dilation": list(self.dilation),
                "use_bias": self.use_bias, "activation": self._activation_config(),
                "kernel_initializer": self.kernel_initializer}

    def _check_input_shape(self, input_shape):
        _check_image(self, input_shape)

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, dilation=self.dilation)

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        _, _, _, (oh, ow) = conv_transpose_padding(
            self.padding, self.output_padding, tuple(input_shape[1:]), self.kernel_size,
            self.stride, self.dilation)
        return (self.filters, oh, ow)

    def _build(self, input_shape):
        out = self.compute_output_shape(input_shape)
        self.add_weight("kernel", (input_shape[0], self.filters) + self.kernel_size,
                        self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), "zeros")
        return out

    def forward(self, x, training=False):
        x = self._prepare(x, 4, "(N, C, H, W)")
        self._remember(x=x)
        y = ops.conv_transpose2d(x, self.params["kernel"], self.params.get("bias"),
                                 **self._geometry())
        return self._activate(y, training)

    def backward(self, dy):
        x = self._cached("x")
        dy = np.asarray(self._activation_backward(dy), dtype=self.dtype)
        dx, dw, db = ops.conv_transpose2d_backward(dy, x, self.params["kernel"],
                                                   **self._geometry(),
                                                   compute_dx=self.needs_input_grad)
        self.grads = {"kernel": dw}
        if self.use_bias:
            self.grads["bias"] = db
        return dx


def _single(value, name, minimum=1):
    """An int from an int or a 1-element sequence (Conv1D geometry)."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


class Conv1D(WithActivation, Layer):
    """1-D convolution over (N, C, L) input, run as a 2-D convolution on (N, C, 1, L).

    Parameters: ``kernel`` (filters, C, kernel_size) and ``bias`` (filters,) when ``use_bias``.
    ``padding`` is an int, ``'valid'`` or ``'same'`` (TensorFlow meaning, extra pad on the right).

    Shape:
        input (N, C, L) -> output (N, filters, L_out) with
        ``L_out = floor((L + pad_left + pad_right - dilation*(kernel_size - 1) - 1) / stride) + 1``;
        'same': ``L_out = ceil(L / stride)``.
    """

    def __init__(self, filters, kernel_size, stride=1, padding="valid", dilation=1, use_bias=True,
                 activation=None, kernel_initializer="he_uniform", name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = _single(kernel_size, "kernel_size")
        self.stride = _single(stride, "stride")
        self.dilation = _single(dilation, "dilation")
        if isinstance(padding, str):
            self.padding = check_padding(padding)
        else:
            self.padding = _single(padding, "padding", minimum=0)
        self.use_bias = check_bool(use_bias, "use_bias")
        self.kernel_initializer = check_initializer(kernel_initializer, "kernel_initializer")
        self._set_activation(activation)

    def _config(self):
        return {"filters": self.filters, "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": self.padding, "dilation": self.dilation, "use_bias": self.use_bias,
                "activation": self._activation_config(),
                "kernel_initializer": self.kernel_initializer}

    def _geometry(self):
        """stride, padding, dilation for the (1, L) 2-D problem."""
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding)
        return (1, self.stride), padding, (1, self.dilation)

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"Conv1D '{self.name}' expects per-sample input shape (C, L), "
                             f"got {input_shape}")
        if self.built and input_shape[0] != self.input_shape[0]:
            raise ValueError(f"Conv1D '{self.name}' was built for {self.input_shape[0]} input "
                             f"channels, got input shape {input_shape}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        stride, padding, dilation = self._geometry()
        _, _, _, (_, ol) = conv_padding(padding, (1, input_shape[1]), (1, self.kernel_size),
                                        stride, dilation)
        return (self.filters, ol)

    def _build(self, input_shape):
        out = self.compute_output_shape(input_shape)
        shape = (self.filters, input_shape[0], self.kernel_size)
        self.add_weight("kernel", shape, self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), "zeros")
        return out

    def _kernel4d(self):
        k = self.params["kernel"]
        return k.reshape(k.shape[0], k.shape[1], 1, k.shape[2])

    def forward(self, x, training=False):
        x = self._prepare(x, 3, "(N, C, L)")
        x4 = x[:, :, None, :]
        self._remember(x4=x4)
        stride, padding, dilation = self._geometry()
        y = ops.conv2d(x4, self._kernel4d(), self.params.get("bias"), stride=stride,
                       padding=padding, dilation=dilation)[:, :, 0, :]
        return self._activate(y, training)

    def backward(self, dy):
        x4 = self._cached("x4")
        dy = self._activation_backward(dy)
        dy = np.asarray(dy, dtype=self.dtype)
        stride, padding, dilation = self._geometry()
        dx, dw, db = ops.conv2d_backward(dy[:, :, None, :], x4, self._kernel4d(), stride=stride,
                                         padding=padding, dilation=dilation,
                                         compute_dx=self.needs_input_grad)
        self.grads = {"kernel": dw.reshape(self.params["kernel"].shape)}
        if self.use_bias:
            self.grads["bias"] = db
        return None if dx is None else dx[:, :, 0, :]
