"""Batch normalisation layers."""
import math

import numpy as np

from .base import Layer, check_float

__all__ = ["BatchNorm1D", "BatchNorm2D"]


class _BatchNorm(Layer):
    """Shared implementation; the channel/feature axis is axis 1, statistics over all others.

    Training: normalise with the batch mean and biased batch variance, then update
    ``running = momentum * running + (1 - momentum) * batch`` (Keras meaning of ``momentum``;
    PyTorch's momentum=0.1 is our 0.9) where the running variance uses the unbiased batch
    variance (m / (m - 1), as PyTorch does). Inference: normalise with the running statistics.
    """
    _ndims = ()

    def __init__(self, momentum=0.9, eps=1e-5, name=None, dtype="float32"):
        super().__init__(name=name, dtype=dtype)
        self.momentum = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.eps = check_float(eps, "eps", low=0.0, low_open=True)

    def _config(self):
        return {"momentum": self.momentum, "eps": self.eps}

    def _check_input_shape(self, input_shape):
        if len(input_shape) + 1 not in self._ndims:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects input of "
                             f"{' or '.join(f'{n}-D' for n in self._ndims)} "
                             f"({self._layout}), got per-sample shape {input_shape}")
        if self.built and input_shape[0] != self.input_shape[0]:
            raise ValueError(f"{type(self).__name__} '{self.name}' was built for "
                             f"{self.input_shape[0]} channels, got per-sample shape {input_shape}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        return tuple(input_shape)

    def _build(self, input_shape):
        c = input_shape[0]
        self.add_weight("gamma", (c,), "ones")
        self.add_weight("beta", (c,), "zeros")
        self.add_weight("running_mean", (c,), "zeros", trainable=False)
        self.add_weight("running_var", (c,), "ones", trainable=False)
        return tuple(input_shape)

    def forward(self, x, training=False):
        x = self._prepare(x)
        n, c = x.shape[:2]
        x3 = x.reshape(n, c, math.prod(x.shape[2:]))  # (N, C, L) view: stats over axes 0, 2
        m = n * x3.shape[2]
        if training:
            if m < 2:
                raise ValueError(f"{type(self).__name__} '{self.name}' needs more than one value "
                                 f"per channel in training, got input shape {x.shape}")
            mean = x3.mean(axis=(0, 2))
            centered = x3 - mean[:, None]
            var = np.einsum("ncl,ncl->c", centered, centered) / self.dtype.type(m)
            mom = self.dtype.type(self.momentum)
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= mom
            rm += (1 - mom) * mean
            rv *= mom
            rv += (1 - mom) * var * self.dtype.type(m / (m - 1))
            self.mark_weights_changed()   # running statistics feed inference plans
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            centered = x3 - mean[:, None]
        inv_std = (1 / np.sqrt(var + self.dtype.type(self.eps))).astype(self.dtype)
        xhat = centered
        xhat *= inv_std[:, None]
        self._remember(xhat=xhat, inv_std=inv_std, training=training)
        y = xhat * self.params["gamma"][:, None]
        y += self.params["beta"][:, None]
        return y.reshape(x.shape)

    def backward(self, dy):
        xhat, inv_std, training = (self._cached(k) for k in ("xhat", "inv_std", "training"))
        shape = np.shape(dy)
        dy = np.asarray(dy, dtype=self.dtype).reshape(xhat.shape)
        dbeta = dy.sum(axis=(0, 2))
        dgamma = np.einsum("ncl,ncl->c", dy, xhat)
        self.grads = {"gamma": dgamma, "beta": dbeta}
        scale = (self.params["gamma"] * inv_std)[:, None]
        if not training:  # the statistics were constants
            return (dy * scale).reshape(shape)
        m = xhat.shape[0] * xhat.shape[2]
        # d/dx of gamma * (x - mean) / std with the batch mean and variance:
        # scale * (dy - mean(dy) - xhat * mean(dy * xhat))
        dx = xhat * (-dgamma / m)[:, None]
        dx += dy
        dx -= (dbeta / m)[:, None]
        dx *= scale
        return dx.reshape(shape)


class BatchNorm2D(_BatchNorm):
    """Batch normalisation per channel of NCHW input (statistics over N, H, W).

    Parameters ``gamma``, ``beta`` (C,); buffers ``running_mean``, ``running_var`` (C,).
    ``momentum`` in [0, 1) weights the old running value; ``eps`` > 0 is added to the variance.

    Shape:
        input (N, C, H, W) -> output (N, C, H, W).
    """
    _ndims = (4,)
    _layout = "(N, C, H, W)"


class BatchNorm1D(_BatchNorm):
    """Batch normalisation per feature of (N, F) input, or per channel of (N, C, L) input.

    Parameters ``gamma``, ``beta`` (F,); buffers ``running_mean``, ``running_var`` (F,).
    ``momentum`` in [0, 1) weights the old running value; ``eps`` > 0 is added to the variance.

    Shape:
        input (N, F) -> output (N, F); input (N, C, L) -> output (N, C, L).
    """
    _ndims = (2, 3)
    _layout = "(N, F) or (N, C, L)"
