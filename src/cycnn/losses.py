"""Loss functions.

Every loss is called as ``loss(y_pred, y_true) -> float`` and
``loss.value_and_grad(y_pred, y_true) -> (float, dloss/dy_pred)``; losses are averaged over the
batch, the value is computed in float64 and the gradient has the dtype of ``y_pred``
(float32 unless y_pred is float64).
"""
import numpy as np

__all__ = ["Loss", "CrossEntropy", "MSE", "BinaryCrossEntropy", "get", "serialize"]


def _pred(y_pred, ndim=None, what=""):
    arr = np.asarray(y_pred)
    if arr.dtype.kind not in "iuf" or arr.dtype == np.bool_:
        raise TypeError(f"y_pred must be a real numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"y_pred must be {what}, got shape {arr.shape}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"y_pred must hold a non-empty batch, got shape {arr.shape}")
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    return arr.astype(np.float64), out_dtype


def _same_shape_target(y_true, shape):
    """y_true as float64 of ``shape``; (N,) is accepted for (N, 1)."""
    t = np.asarray(y_true)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"y_true must be a numeric array, got dtype {t.dtype}")
    if t.shape != shape:
        if len(shape) == 2 and shape[1] == 1 and t.shape == (shape[0],):
            t = t.reshape(shape)
        else:
            raise ValueError(f"y_true must have the shape of y_pred {shape}, got {t.shape}")
    return t.astype(np.float64)


class Loss:
    """Base class: subclasses implement ``value_and_grad``."""
    name = None

    def __call__(self, y_pred, y_true):
        return self.value_and_grad(y_pred, y_true)[0]

    def value_and_grad(self, y_pred, y_true):
        raise NotImplementedError

    def get_config(self):
        """JSON-able constructor kwargs."""
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class CrossEntropy(Loss):
    """Softmax + cross-entropy fused, on raw logits (do not put a Softmax layer before it).

    ``y_pred``: logits (N, classes). ``y_true``: integer labels (N,) in [0, classes), or
    one-hot / probability rows (N, classes). Value: mean over the batch of
    ``-sum(t * log_softmax(z))``, with log_softmax = z - max - log(sum(exp(z - max)))
    (log-sum-exp, so any finite logits work). Gradient: (softmax(z) - t) / N.
    """
    name = "cross_entropy"

    def _targets(self, y_true, n, classes):
        """int64 labels (N,) or float64 target rows (N, classes), validated."""
        t = np.asarray(y_true)
        if t.ndim == 1:
            if t.shape[0] != n:
                raise ValueError(f"y_true labels must have shape ({n},) to match y_pred, "
                                 f"got {t.shape}")
            if t.dtype.kind == "f":
                if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
                    raise ValueError("y_true labels must be integers, got non-integral values")
            elif t.dtype.kind not in "iu":
                raise TypeError(f"y_true labels must be integers, got dtype {t.dtype}")
            labels = t if t.dtype == np.int64 else t.astype(np.int64)
            if n and (labels.min() < 0 or labels.max() >= classes):
                bad = (labels < 0) | (labels >= classes)
                raise ValueError(f"y_true labels must be in [0, {classes}), got "
                                 f"{labels[bad][0]} at index {int(np.flatnonzero(bad)[0])}")
            return labels
        if t.ndim == 2:
            if t.shape != (n, classes):
                raise ValueError(f"y_true must be labels ({n},) or probabilities ({n}, {classes}) "
                                 f"to match y_pred, got shape {t.shape}")
            return t.astype(np.float64)
        raise ValueError(f"y_true must be labels ({n},) or probabilities ({n}, {classes}), got "
                         f"shape {t.shape}")

    def value_and_grad(self, y_pred, y_true):
        z, dtype = _pred(y_pred, 2, "logits (N, classes)")
        n, classes = z.shape
        t = self._targets(y_true, n, classes)
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        sums = e.sum(axis=1, keepdims=True)
        if t.ndim == 1:   # labels: no one-hot matrix, pick the label's column instead
            rows = np.arange(n)
            value = (np.log(sums[:, 0]) - shifted[rows, t]).sum() / n
            e /= sums
            e[rows, t] -= 1.0
            e /= n
            return float(value), e.astype(dtype, copy=False)
        log_p = shifted - np.log(sums)
        value = -(t * log_p).sum() / n
        grad = (np.exp(log_p) * t.sum(axis=1, keepdims=True) - t) / n
        return float(value), grad.astype(dtype)


class MSE(Loss):
    """Mean squared error over every element: mean((y_pred - y_true)**2).

    ``y_true`` has the shape of ``y_pred`` ((N,) also accepted for (N, 1)).
    Gradient: 2 * (y_pred - y_true) / y_pred.size.
    """
    name = "mse"

    def value_and_grad(self, y_pred, y_true):
        p, dtype = _pred(y_pred)
        diff = p - _same_shape_target(y_true, p.shape)
        return float(np.mean(diff * diff)), (2.0 * diff / diff.size).astype(dtype)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy, mean over every element.

    ``from_logits=False``: ``y_pred`` are probabilities, clipped to [eps, 1 - eps] before the
    logs; the gradient is the derivative evaluated at the clipped value (not zeroed where the
    clip is active, so saturated wrong predictions still get a signal).
    ``from_logits=True``: ``y_pred`` are logits z; value
    ``max(z, 0) - z*t + log(1 + exp(-|z|))`` (stable), gradient (sigmoid(z) - t) / size.
    ``y_true`` in [0, 1], shape of ``y_pred`` ((N,) also accepted for (N, 1)).
    """
    name = "binary_cross_entropy"

    def __init__(self, from_logits=False, eps=1e-7):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be a bool, got {from_logits!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 0.5:
            raise ValueError(f"eps must be a number in (0, 0.5), got {eps!r}")
        self.from_logits = bool(from_logits)
        self.eps = float(eps)

    def get_config(self):
        return {"from_logits": self.from_logits, "eps": self.eps}

    def value_and_grad(self, y_pred, y_true):
        p, dtype = _pred(y_pred)
        t = _same_shape_target(y_true, p.shape)
        if t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError(f"y_true must be in [0, 1], got values in [{t.min()}, {t.max()}]")
        if self.from_logits:
            value = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
            e = np.exp(-np.abs(p))
            sig = np.where(p >= 0, 1 / (1 + e), e / (1 + e))
            grad = (sig - t) / p.size
        else:
            q = np.clip(p, self.eps, 1 - self.eps)
            value = -(t * np.log(q) + (1 - t) * np.log(1 - q))
            grad = (q - t) / (q * (1 - q)) / p.size
        return float(value.mean()), grad.astype(dtype)


_LOSSES = {"cross_entropy": CrossEntropy, "mse": MSE, "binary_cross_entropy": BinaryCrossEntropy}
_ALIASES = {"crossentropy": "cross_entropy", "categorical_crossentropy": "cross_entropy",
            "sparse_categorical_crossentropy": "cross_entropy", "mean_squared_error": "mse",
            "bce": "binary_cross_entropy", "binary_crossentropy": "binary_cross_entropy"}


def get(name_or_loss):
    """A loss instance from a name ('cross_entropy', 'mse', 'binary_cross_entropy'), a Loss
    instance (returned as is), a Loss class, or ``{'class_name': ..., 'config': ...}``."""
    obj = name_or_loss
    if isinstance(obj, Loss):
        return obj
    if isinstance(obj, type) and issubclass(obj, Loss):
        return obj()
    if isinstance(obj, str):
        key = _ALIASES.get(obj.lower(), obj.lower())
        if key in _LOSSES:
            return _LOSSES[key]()
    if isinstance(obj, dict) and set(obj) == {"class_name", "config"}:
        for cls in _LOSSES.values():
            if cls.__name__ == obj["class_name"]:
                return cls.from_config(obj["config"])
    raise ValueError(f"unknown loss {name_or_loss!r}; expected a Loss or one of {sorted(_LOSSES)}")


def serialize(loss):
    """``{'class_name': ..., 'config': ...}`` for :func:`get`."""
    loss = get(loss)
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
