"""Keras optimizer names and arguments (``learning_rate``, ``beta_1``, ``epsilon``, ...) over
cycnn's optimizers, with Keras's defaults (Adam/RMSprop epsilon 1e-7, SGD lr 0.01)."""
from .. import optim as _optim

__all__ = ["Adam", "SGD", "RMSprop", "get"]


class _LearningRate:
    @property
    def learning_rate(self):
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.lr = value


class Adam(_LearningRate, _optim.Adam):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None):
        super().__init__(lr=learning_rate, betas=(beta_1, beta_2), eps=epsilon,
                         weight_decay=weight_decay or 0.0)

    def get_config(self):   # saved models reload as cycnn's Adam with the same numbers
        return _optim.Adam.get_config(self)


class SGD(_LearningRate, _optim.SGD):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None):
        super().__init__(lr=learning_rate, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay or 0.0)


class RMSprop(_LearningRate, _optim.RMSprop):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 weight_decay=None):
        super().__init__(lr=learning_rate, rho=rho, eps=epsilon, momentum=momentum,
                         weight_decay=weight_decay or 0.0)


_NAMES = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop}


def get(spec):
    """An optimizer from a Keras name ('adam', 'sgd', 'rmsprop', Keras defaults) or object."""
    if isinstance(spec, _optim.Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in _NAMES:
        return _NAMES[spec.lower()]()
    raise ValueError(f"optimizer must be 'adam', 'sgd', 'rmsprop' or an optimizer object, "
                     f"got {spec!r}")
