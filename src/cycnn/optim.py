"""Optimisers and learning-rate schedules.

``opt.step(params, grads)`` updates the arrays in ``params`` in place; pass them in the same
order every call (per-position state is created lazily on the first step). The update formulas
are those of ``torch.optim`` (SGD, Adam without amsgrad, RMSprop without centering);
``weight_decay`` is the L2 kind in all three: ``grad += weight_decay * param`` before the update
(as in torch.optim.Adam, not AdamW's decoupled decay).

``state_dict()`` returns flat ``name -> ndarray`` (``'step'`` plus ``'<slot>.<position>'``) and
``load_state_dict(d)`` restores it, so a saved model can carry its optimiser state.
"""
import math
import numbers

import numpy as np

from ._kernels import optim as _optim_kernels
from ._threads import threads_for

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "StepLR", "CosineLR", "get", "serialize"]


def _number(value, name, low=0.0, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if (v != v or (v <= low if low_open else v < low)
            or (high is not None and (v >= high if high_open else v > high))):
        rng = f"{'(' if low_open else '['}{low}, {'inf' if high is None else high}" \
              f"{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must be in {rng}, got {value!r}")
    return v


class Optimizer:
    """Base class. Subclasses define ``_slots`` (names of per-parameter state arrays), ``_kind``
    (the update in ``cycnn._kernels.optim``) and ``_hyper()`` (its coefficients).

    A step is one native call that updates every parameter array in one parallel pass (see the
    design note of ``cycnn/_kernels/optim.pyx``); gradients are read in place when they already
    are C-contiguous arrays of the parameter's dtype, otherwise converted once.
    """
    _slots = ()
    _kind = None

    def __init__(self, lr, weight_decay):
        self.lr = lr
        self.weight_decay = _number(weight_decay, "weight_decay")
        self.iterations = 0
        self.state = {slot: [] for slot in self._slots}

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _number(value, "lr")

    def step(self, params, grads):
        """One update of every array in ``params`` (in place) from the matching ``grads``."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"params and grads must have the same length, got {len(params)} "
                             f"and {len(grads)}")
        for slot in self._slots:
            known = self.state[slot]
            if known and len(known) != len(params):
                raise ValueError(f"{type(self).__name__} has state for {len(known)} params, "
                                 f"got {len(params)}; pass the same params every step")
        work, writeback = [], []
        for i, (p, g) in enumerate(zip(params, grads)):
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(f"params[{i}] must be a floating ndarray, got {type(p).__name__}")
            if not isinstance(g, np.ndarray) or g.dtype != p.dtype \
                    or not g.flags.c_contiguous:
                g = np.ascontiguousarray(g, dtype=p.dtype)
            if g.shape != p.shape:
                raise ValueError(f"grads[{i}] must have the shape of params[{i}] {p.shape}, "
                                 f"got {g.shape}")
            if p.dtype not in (np.float32, np.float64):
                raise TypeError(f"params[{i}] must be float32 or float64, got {p.dtype}")
            if not p.flags.writeable:
                raise ValueError(f"params[{i}] is read-only")
            for slot in self._slots:
                known = self.state[slot]
                if len(known) <= i:
                    known.append(np.zeros_like(p, order="C"))
                elif known[i].shape != p.shape:
                    raise ValueError(f"state '{slot}.{i}' has shape {known[i].shape}, params[{i}] "
                                     f"has shape {p.shape}")
                elif known[i].dtype != p.dtype or not known[i].flags.c_contiguous \
                        or not known[i].flags.writeable:
                    known[i] = np.array(known[i], dtype=p.dtype, order="C")  # e.g. after a cast
            if not p.flags.c_contiguous:
                writeback.append((p, i))
                p = np.ascontiguousarray(p)
            work.append((p, g, i))
        self.iterations += 1
        kind, coefficients = self._kind, self._hyper()
        for dtype in dict.fromkeys(p.dtype for p, _, _ in work):  # usually a single dtype
            group = [item for item in work if item[0].dtype == dtype]
            state = [[self.state[slot][i] for _, _, i in group] for slot in self._slots]
            state += [[]] * (2 - len(state))
            n_threads = threads_for(8 * sum(p.size for p, _, _ in group))
            _optim_kernels.update(kind, [p for p, _, _ in group], [g for _, g, _ in group],
                                  state[0], state[1], *coefficients, self.weight_decay,
                                  *self._momentum(), n_threads)
        for original, i in writeback:
            original[...] = work[i][0]

    def _hyper(self):
        """(lr, a, b, eps, c) of the kernel's formula for this step."""
        raise NotImplementedError

    def _momentum(self):
        return 0.0, False


    # -- configuration and state -------------------------------------------------------------
    def get_config(self):
        """JSON-able constructor kwargs (``lr`` is the current learning rate)."""
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def state_dict(self):
        """Flat ``{'step': array(iterations), '<slot>.<i>': array, ...}`` (copies)."""
        d = {"step": np.array(self.iterations, dtype=np.int64)}
        for slot, arrays in self.state.items():
            for i, arr in enumerate(arrays):
                d[f"{slot}.{i}"] = arr.copy()
        return d

    def load_state_dict(self, d):
        """Restore what :meth:`state_dict` returned (arrays are copied)."""
        if "step" not in d:
            raise ValueError("state dict has no 'step' entry")
        state = {slot: {} for slot in self._slots}
        for key, value in d.items():
            if key == "step":
                continue
            slot, _, index = key.rpartition(".")
            if slot not in state or not index.isdigit():
                raise ValueError(f"unexpected key {key!r} in {type(self).__name__} state dict")
            state[slot][int(index)] = np.array(value, copy=True)
        for slot, entries in state.items():
            if sorted(entries) != list(range(len(entries))):
                raise ValueError(f"state dict entries for '{slot}' are not numbered 0..n-1")
        sizes = {len(entries) for entries in state.values()}
        if len(sizes) > 1:
            raise ValueError("state dict slots have different numbers of entries")
        step = np.asarray(d["step"])
        if step.ndim != 0 or step.dtype.kind not in "iu" or int(step) < 0:
            raise ValueError(f"state dict 'step' must be a non-negative integer, got {step!r}")
        self.iterations = int(step)
        self.state = {slot: [entries[i] for i in range(len(entries))]
                      for slot, entries in state.items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as torch.optim.SGD
    (dampening 0)::

        g = grad + weight_decay * p
        buf = g (first step) or momentum * buf + g
        p -= lr * (g + momentum * buf if nesterov else buf)     (p -= lr * g without momentum)
    """
    _slots = ("momentum_buffer",)
    _kind = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.momentum = _number(momentum, "momentum", high=1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0.0")
        self.nesterov = bool(nesterov)
        if self.momentum == 0:
            self._slots = ()
        super().__init__(lr, weight_decay)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _hyper(self):
        return self.lr, 0.0, 0.0, 0.0, 0.0

    def _momentum(self):
        return self.momentum, self.nesterov


class Adam(Optimizer):
    """Adam as torch.optim.Adam (amsgrad off)::

        g = grad + weight_decay * p          (L2 penalty folded into the gradient, not AdamW)
        m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g**2
        p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)
    """
    _slots = ("exp_avg", "exp_avg_sq")
    _kind = "adam"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_number(betas[0], "betas[0]", high=1.0, high_open=True),
                      _number(betas[1], "betas[1]", high=1.0, high_open=True))
        self.eps = _number(eps, "eps")
        super().__init__(lr, weight_decay)

    def get_config(self):
        return {**super().get_config(), "betas": list(self.betas), "eps": self.eps}

    def _hyper(self):
        b1, b2 = self.betas
        t = self.iterations
        return self.lr / (1 - b1 ** t), b1, b2, self.eps, math.sqrt(1 - b2 ** t)


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop (``rho`` is torch's ``alpha``, centered off)::

        g = grad + weight_decay * p
        s = rho * s + (1 - rho) * g**2
        without momentum: p -= lr * g / (sqrt(s) + eps)
        with momentum:    buf = momentum * buf + g / (sqrt(s) + eps); p -= lr * buf
    """
    _slots = ("square_avg", "momentum_buffer")
    _kind = "rmsprop"

    def __init__(self, lr=1e-3, rho=0.9, eps=1e-8, momentum=0.0, weight_decay=0.0):
        self.rho = _number(rho, "rho", high=1.0, high_open=True)
        self.eps = _number(eps, "eps")
        self.momentum = _number(momentum, "momentum", high=1.0)
        if self.momentum == 0:
            self._slots = ("square_avg",)
        super().__init__(lr, weight_decay)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "eps": self.eps, "momentum": self.momentum}

    def _hyper(self):
        return self.lr, self.rho, 0.0, self.eps, 0.0

    def _momentum(self):
        return self.momentum, False


# ----------------------------------------------------------------------------- schedules
class StepLR:
    """``lr = base_lr * gamma ** (epoch // step_size)`` (epoch counted from 0)."""

    def __init__(self, step_size, gamma=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) \
                or step_size < 1:
            raise ValueError(f"step_size must be a positive int, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = _number(gamma, "gamma")

    def __call__(self, epoch, base_lr):
        return base_lr * self.gamma ** (int(epoch) // self.step_size)

    def get_config(self):
        return {"step_size": self.step_size, "gamma": self.gamma}

    def __repr__(self):
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"


class CosineLR:
    """Cosine annealing from ``base_lr`` at epoch 0 to ``min_lr`` at epoch ``total_epochs``
    (and after): ``lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2``
    (torch's CosineAnnealingLR closed form with T_max = total_epochs)."""

    def __init__(self, total_epochs, min_lr=0.0):
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, numbers.Integral) \
                or total_epochs < 1:
            raise ValueError(f"total_epochs must be a positive int, got {total_epochs!r}")
        self.total_epochs = int(total_epochs)
        self.min_lr = _number(min_lr, "min_lr")

    def __call__(self, epoch, base_lr):
        progress = min(int(epoch), self.total_epochs) / self.total_epochs
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2

    def get_config(self):
        return {"total_epochs": self.total_epochs, "min_lr": self.min_lr}

    def __repr__(self):
        return f"CosineLR(total_epochs={self.total_epochs}, min_lr={self.min_lr})"


_CLASSES = {cls.__name__: cls for cls in (SGD, Adam, RMSprop, StepLR, CosineLR)}


def get(identifier):
    """An optimiser from a name ('sgd', 'adam', 'rmsprop', default hyper-parameters), an
    instance (returned as is) or ``{'class_name': ..., 'config': ...}`` (also for schedules)."""
    if isinstance(identifier, (Optimizer, StepLR, CosineLR)):
        return identifier
    if isinstance(identifier, str):
        for name in ("SGD", "Adam", "RMSprop"):
            if identifier.lower() == name.lower():
                return _CLASSES[name]()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"} \
            and identifier["class_name"] in _CLASSES:
        return _CLASSES[identifier["class_name"]](**identifier["config"])
    raise ValueError(f"unknown optimizer {identifier!r}; expected 'sgd', 'adam', 'rmsprop', an "
                     f"instance or a {{'class_name', 'config'}} dict")


def serialize(obj):
    """``{'class_name': ..., 'config': ...}`` for an optimiser or schedule (see :func:`get`)."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}
