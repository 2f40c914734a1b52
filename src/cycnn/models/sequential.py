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
from .functional import Graph, Input

__all__ = ["Sequential"]


class Sequential(Model):
    """A stack of layers, each feeding the next: a :class:`~cycnn.models.base.Model` whose graph
    is the chain of its layers (built as soon as the input shape is known).

    Parameters
    ----------
    layers : list of Layer, optional
        The layers, first to last (more can be added with :meth:`add`).
    input_shape : tuple of int, optional
        Shape of one sample without the batch axis, e.g. ``(1, 28, 28)``. Given here (or to
        :meth:`build`), the layers are built at once; otherwise on the first batch seen.
    name : str, optional
    """

    _summary_links = False

    def __init__(self, layers=None, input_shape=None, name=None):
        self._set_name(name, "sequential")
        self._layers = []
        self._input_shape = None
        self._graph = None
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
    @property
    def layers(self):
        return self._layers

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        return self._graph.output_shapes[0] if self.built else None

    def add(self, layer):
        """Append a layer (built at once when the model already is)."""
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"add() expects a cycnn layer, got {describe(layer)}")
        if getattr(layer, "multi_input", False):
            raise TypeError(f"{type(layer).__name__} takes several inputs: use the functional "
                            f"API (cycnn.Model(inputs, outputs)) for merges")
        if self.built:
            self._build_layer(layer, self.output_shape)
        self._layers.append(layer)
        if self.built:
            self._chain()
        return self

    @staticmethod
    def _build_layer(layer, shape):
        if layer.built:
            if tuple(layer.input_shape) != tuple(shape):
                raise ValueError(f"layer {layer.name!r} was built for input shape "
                                 f"{tuple(layer.input_shape)}, but receives {tuple(shape)}")
        else:
            layer.build(tuple(shape))

    def _chain(self):
        """The graph: Input -> every layer in turn."""
        x = inp = Input(self._input_shape, name=f"{self.name}_input")
        for layer in self._layers:
            self._build_layer(layer, x.sample_shape)
            x = layer(x)
        self._graph = Graph(inp, x)

    def build(self, input_shape=None):
        """Build every layer in turn for samples of ``input_shape`` (no batch axis)."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError("build() needs input_shape (per sample, e.g. (1, 28, 28)): the model "
                             "was created without one")
        input_shape = as_shape(input_shape)
        if self.built and input_shape == self._input_shape:
            return
        if self.built:
            raise ValueError(f"model {self.name!r} is already built for input shape "
                             f"{self._input_shape}, got {input_shape}")
        self._input_shape = input_shape
        try:
            self._chain()
        except BaseException:
            self._input_shape = None
            raise
        self.built = True

    def _require_built(self, x=None):
        if not self.built:
            if self._input_shape is None and x is not None and getattr(x, "ndim", 0) >= 2:
                self.build(x.shape[1:])
            else:
                self.build()

    # ------------------------------------------------------------------ config
    def get_config(self):
        """JSON-able description of the architecture (not the weights)."""
        return {"name": self.name,
                "input_shape": list(self._input_shape) if self._input_shape is not None
                else None,
                "layers": [_class_config(layer) for layer in self._layers]}

    @classmethod
    def from_config(cls, config, layers=None):
        """A new model from :meth:`get_config` output (``layers``: the layer objects, already
        made from config['layers'], when the caller wants to supply them)."""
        if layers is None:
            layers = cls._layers_from_config(config)
        return cls(layers, input_shape=config.get("input_shape"), name=config.get("name"))

    def __repr__(self):
        return (f"Sequential(name={self.name!r}, layers={len(self._layers)}, "
                f"input_shape={self._input_shape})")
