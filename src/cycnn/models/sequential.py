"""Sequential models: a list of layers applied one after the other. It feels like Keras::

    model = cycnn.Sequential([...layers...], input_shape=(1, 28, 28))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=10, batch_size=64,
                        validation_data=(x_test, y_test))
    model.save("mnist_cnn.cyc")
    model = cycnn.load_model("mnist_cnn.cyc")
"""
from .. import layers as _layers
from ._util import as_shape, describe
from .base import Model, _class_config

__all__ = ["Sequential"]


class Sequential(Model):
    """A stack of layers, each feeding the next.

    Parameters
    ----------
    layers : list of Layer, optional
        The layers, first to last (more can be added with :meth:`add`).
    input_shape : tuple of int, optional
        Shape of one sample without the batch axis, e.g. ``(1, 28, 28)``. Given here (or to
        :meth:`build`), the layers are built at once; otherwise on the first batch seen.
    name : str, optional
    """

    def __init__(self, layers=None, input_shape=None, name=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {describe(name)}")
        self.name = name or "sequential"
        self.layers = []
        self.input_shape = None
        self.output_shape = None
        self.built = False
        self._init_training_state()
        if layers is not None:
            if not isinstance(layers, (list, tuple)):
                raise TypeError(f"layers must be a list of layers, got {describe(layers)}")
            for layer in layers:
                self.add(layer)
        if input_shape is not None:
            self.build(input_shape)

    # ------------------------------------------------------------------ structure
    def add(self, layer):
        """Append a layer (built at once when the model already is)."""
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"add() expects a cycnn layer, got {describe(layer)}")
        if self.built:
            self._build_layer(layer, self.output_shape)
            self.output_shape = tuple(layer.output_shape)
        self.layers.append(layer)
        return self

    @staticmethod
    def _build_layer(layer, shape):
        if layer.built:
            if tuple(layer.input_shape) != tuple(shape):
                raise ValueError(f"layer {layer.name!r} was built for input shape "
                                 f"{tuple(layer.input_shape)}, but receives {tuple(shape)}")
        else:
            layer.build(tuple(shape))

    def build(self, input_shape=None):
        """Build every layer in turn for samples of ``input_shape`` (no batch axis)."""
        if input_shape is None:
            input_shape = self.input_shape
        if input_shape is None:
            raise ValueError("build() needs input_shape (per sample, e.g. (1, 28, 28)): the model "
                             "was created without one")
        input_shape = as_shape(input_shape)
        if self.built and input_shape == self.input_shape:
            return
        if self.built:
            raise ValueError(f"model {self.name!r} is already built for input shape "
                             f"{self.input_shape}, got {input_shape}")
        shape = input_shape
        for layer in self.layers:
            self._build_layer(layer, shape)
            shape = tuple(layer.output_shape)
        self.input_shape = input_shape
        self.output_shape = shape
        self.built = True

    def _require_built(self, x=None):
        if not self.built:
            if self.input_shape is None and x is not None and x.ndim >= 2:
                self.build(x.shape[1:])
            else:
                self.build()

    def _output_layer(self):
        return self.layers[-1] if self.layers else None

    # ------------------------------------------------------------------ forward / backward
    def _forward(self, x, training, skip_softmax):
        for layer in self.layers[:len(self.layers) - 1] if skip_softmax else self.layers:
            x = layer.forward(x, training=training)
        return x

    def _backward(self, dy, skip_softmax):
        for layer in reversed(self.layers[:len(self.layers) - 1] if skip_softmax
                              else self.layers):
            dy = layer.backward(dy)
        return dy

    # ------------------------------------------------------------------ config
    def get_config(self):
        """JSON-able description of the architecture (not the weights)."""
        return {"name": self.name,
                "input_shape": list(self.input_shape) if self.input_shape is not None else None,
                "layers": [_class_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        """A new, freshly initialised model from :meth:`get_config` output."""
        layers = []
        for entry in config["layers"]:
            layer_cls = _layers.get(entry["class_name"])
            layers.append(layer_cls.from_config(entry["config"]))
        return cls(layers, input_shape=config.get("input_shape"), name=config.get("name"))

    def __repr__(self):
        return (f"Sequential(name={self.name!r}, layers={len(self.layers)}, "
                f"input_shape={self.input_shape})")
