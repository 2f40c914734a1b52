"""Functional graphs: ``Input``, symbolic tensors and the graph executor behind every Model.

Calling a layer on a :class:`SymbolicTensor` (what :func:`Input` returns) builds the layer for
that shape and returns a new symbolic tensor; no data flows. ``cycnn.Model(inputs, outputs)``
then collects the layer calls (nodes) between them into a :class:`Graph`::

    x = cycnn.Input((3, 32, 32))
    y = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    z = layers.Add()([layers.Conv2D(16, 3, padding="same")(y), y])
    model = cycnn.Model(inputs=x, outputs=layers.Dense(10)(layers.GlobalAvgPool2D()(z)))

Execution (:meth:`Graph.forward` / :meth:`Graph.backward`): nodes run in topological order.
After each forward the layer's per-call cache is moved out into the node
(``save_call_state``) and moved back in before that node's backward (``restore_call_state``), so
a layer object called at several nodes shares its weights while each call keeps its own cache;
the parameter gradients of such a shared layer are summed over its calls. A tensor read by
several nodes receives the sum of their gradients. Intermediate values are dropped as soon as
their last reader has run.

``layers.Layer.__call__`` recognises symbolic tensors by their ``_symbolic`` attribute and hands
them to :meth:`SymbolicTensor._apply`, so the layers never import this module.
"""
import itertools
import numbers

import numpy as np

from ._util import as_shape, describe

__all__ = ["Input", "SymbolicTensor", "Graph"]

_INPUT_NAMES = itertools.count(1)


class Node:
    """One call of a layer: ``layer`` applied to ``inputs`` (symbolic tensors) gave ``output``."""
    __slots__ = ("layer", "inputs", "output", "multi")

    def __init__(self, layer, inputs, multi):
        self.layer = layer
        self.inputs = tuple(inputs)
        self.multi = multi
        self.output = None


class SymbolicTensor:
    """A placeholder for the batches that will flow through a graph.

    ``shape`` is ``(None, *sample_shape)`` (None: the batch axis, as Keras); ``sample_shape`` is
    the per-sample shape; ``node`` is the layer call that produces it (None for an input).
    """
    _symbolic = True  # how Layer.__call__ recognises graph building

    def __init__(self, sample_shape, dtype, node=None, name=None):
        self.sample_shape = tuple(sample_shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.name = name

    @property
    def shape(self):
        return (None,) + self.sample_shape

    @property
    def ndim(self):
        return len(self.sample_shape) + 1

    def _apply(self, layer, x):
        return _call_layer(layer, x)

    def __repr__(self):
        return f"<SymbolicTensor {self.name!r} shape={self.shape} dtype={self.dtype.name}>"


def Input(shape, name=None, dtype="float32"):  # noqa: N802  (a constructor, as in Keras)
    """A graph input: per-sample ``shape`` (no batch axis, e.g. ``(3, 32, 32)`` for NCHW).

    Returns a :class:`SymbolicTensor`; call layers on it and pass it to ``cycnn.Model(inputs=
    ...)``. ``dtype`` is float32 or float64.
    """
    shape = as_shape(shape, "shape")
    if name is None:
        name = f"input_{next(_INPUT_NAMES)}"
    elif not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {describe(name)}")
    dt = np.dtype(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return SymbolicTensor(shape, dt, None, name)


def _is_symbolic(value):
    return getattr(value, "_symbolic", False) is True


def _call_layer(layer, x):
    """``layer(x)`` on symbolic input: build the layer, record a node, return its output."""
    what = f"{type(layer).__name__} '{layer.name}'"
    if getattr(layer, "multi_input", False):
        if not isinstance(x, (list, tuple)) or not all(_is_symbolic(t) for t in x):
            raise TypeError(f"{what} takes a list of symbolic tensors, got {describe(x)}")
        inputs = list(x)
        shapes = [t.sample_shape for t in inputs]
    else:
        if isinstance(x, (list, tuple)):
            if len(x) != 1:
                raise TypeError(f"{what} takes one input, got a list of {len(x)}")
            x = x[0]
        if not _is_symbolic(x):
            raise TypeError(f"{what} was called on a mix of symbolic tensors and data: "
                            f"got {describe(x)}")
        inputs = [x]
        shapes = x.sample_shape
    first_call = not layer.built
    layer.build(shapes)  # checks the shape when the layer is already built
    out_shape = layer.output_shape if first_call else layer.compute_output_shape(shapes)
    node = Node(layer, inputs, bool(getattr(layer, "multi_input", False)))
    node.output = SymbolicTensor(out_shape, layer.dtype, node, layer.name)
    return node.output


def _as_tensor_list(value, name):
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"{name} must hold at least one symbolic tensor, got {describe(value)}")
    for t in items:
        if not _is_symbolic(t):
            raise TypeError(f"{name} must be symbolic tensors (from cycnn.Input and layer calls),"
                            f" got {describe(t)}")
    return items


class Graph:
    """The layer calls between ``inputs`` and ``outputs`` (lists of symbolic tensors), in an
    order where every node comes after the nodes it reads."""

    def __init__(self, inputs, outputs):
        inputs = _as_tensor_list(inputs, "inputs")
        outputs = _as_tensor_list(outputs, "outputs")
        for t in inputs:
            if t.node is not None:
                raise ValueError(f"inputs must come from cycnn.Input(), got {t!r}, the output of "
                                 f"layer {t.node.layer.name!r}")
        if len({id(t) for t in inputs}) != len(inputs):
            raise ValueError("inputs lists the same Input twice")
        self.inputs = inputs
        self.outputs = outputs
        # depth-first post-order from the outputs: every node after the nodes it reads
        order, state = [], {}
        input_ids = {id(t) for t in inputs}
        for out in outputs:
            stack = [(out, False)]
            while stack:
                tensor, expanded = stack.pop()
                if tensor.node is None:
                    if id(tensor) not in input_ids:
                        raise ValueError(f"the graph is disconnected: {tensor!r} is used but is "
                                         f"not among the model's inputs")
                    continue
                node = tensor.node
                if expanded:
                    if state.get(id(node)) != "done":
                        state[id(node)] = "done"
                        order.append(node)
                    continue
                if state.get(id(node)) == "done":
                    continue
                state[id(node)] = "open"
                stack.append((tensor, True))
                for t in reversed(node.inputs):
                    stack.append((t, False))
        self.nodes = order
        self.layers = list({id(n.layer): n.layer for n in order}.values())
        names = {}
        for layer in self.layers:
            if names.setdefault(layer.name, layer) is not layer:
                raise ValueError(f"two different layers are named {layer.name!r}; layer names "
                                 f"must be unique in a model")
        uses = {}
        for n in order:
            uses[id(n.layer)] = uses.get(id(n.layer), 0) + 1
        self._shared = {lid for lid, count in uses.items() if count > 1}
        # readers per tensor, to drop values once the last reader has run
        self._slot = {id(t): i for i, t in enumerate(inputs)}
        for n in order:
            self._slot[id(n.output)] = len(self._slot)
        self._out_slots = [self._slot[id(t)] for t in outputs]
        self._node_in = [[self._slot[id(t)] for t in n.inputs] for n in order]
        self._node_out = [self._slot[id(n.output)] for n in order]
        last = {}
        for i, slots in enumerate(self._node_in):
            for s in slots:
                last[s] = i
        keep = set(self._out_slots)
        self._free_after = [[s for s in set(slots) if last[s] == i and s not in keep]
                            for i, slots in enumerate(self._node_in)]
        # layers that only ever read graph inputs: their dx is not needed in training
        input_slots = set(range(len(inputs)))
        reads_other = {id(n.layer) for n, slots in zip(order, self._node_in)
                       if n.multi or not set(slots) <= input_slots}
        self._input_only = {id(n.layer) for n in order} - reads_other
        self._states = [None] * len(order)
        self._skip = ()
        self._ran = False

    # ------------------------------------------------------------------ shapes
    @property
    def input_shapes(self):
        return [t.sample_shape for t in self.inputs]

    @property
    def output_shapes(self):
        return [t.sample_shape for t in self.outputs]

    def output_layer(self, i):
        """The layer producing output ``i`` (None when that output is an input)."""
        node = self.outputs[i].node
        return None if node is None else node.layer

    # ------------------------------------------------------------------ execution
    def _effective_outputs(self, skip):
        """Output slots, with output i read before its (Softmax) layer when skip[i]."""
        slots = list(self._out_slots)
        for i, flag in enumerate(skip):
            if flag:
                node = self.outputs[i].node
                slots[i] = self._slot[id(node.inputs[0])]
        return slots

    def forward(self, xs, training=False, skip=()):
        """Run the graph on ``xs`` (one array per input); returns one array per output.

        ``skip[i]`` true: output i is taken before its last layer (a Softmax fused into the
        loss). Each node's call state is kept for :meth:`backward`.
        """
        values = [None] * len(self._slot)
        values[:len(xs)] = xs
        skip = tuple(bool(s) for s in skip)
        out_slots = self._effective_outputs(skip)
        skipped = {id(self.outputs[i].node) for i, flag in enumerate(skip) if flag}
        keep = set(out_slots)
        states = self._states
        for i, node in enumerate(self.nodes):
            if id(node) in skipped:
                states[i] = None
                continue
            args = [values[s] for s in self._node_in[i]]
            layer = node.layer
            values[self._node_out[i]] = layer.forward(args if node.multi else args[0],
                                                      training=training)
            states[i] = layer.save_call_state()
            for s in self._free_after[i]:
                if s not in keep:
                    values[s] = None
        self._skip = skip
        self._ran = True
        return [values[s] for s in out_slots]

    def backward(self, dys, need_input_grads=True):
        """Back-propagate ``dys`` (dL/d output, one per output, None for an output that does not
        reach the loss) through the last :meth:`forward`; fills every layer's ``grads`` (summed
        over the calls of a shared layer) and returns dL/d input per input (None where no
        gradient reaches an input, or when ``need_input_grads`` is false: then the layers that
        read only graph inputs skip computing their dx, through ``Layer.needs_input_grad``)."""
        if not self._ran:
            raise RuntimeError("call forward before backward (each forward allows one backward)")
        self._ran = False
        grads = [None] * len(self._slot)
        for s, dy in zip(self._effective_outputs(self._skip), dys):
            if dy is not None:
                grads[s] = dy if grads[s] is None else grads[s] + dy
        skipped = {id(self.outputs[i].node) for i, flag in enumerate(self._skip) if flag}
        summed, ran = {}, set()
        for i in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[i]
            dy = grads[self._node_out[i]]
            if id(node) in skipped or self._states[i] is None:
                continue
            layer = node.layer
            state, self._states[i] = self._states[i], None
            if dy is None:  # this call does not reach the loss
                continue
            grads[self._node_out[i]] = None
            layer.restore_call_state(state)
            if not need_input_grads and id(layer) in self._input_only:
                before = layer.needs_input_grad   # skip the first layers' dx (conv: col2im)
                layer.needs_input_grad = False
                try:
                    dx = layer.backward(dy)
                finally:
                    layer.needs_input_grad = before
            else:
                dx = layer.backward(dy)
            ran.add(id(layer))
            if id(layer) in self._shared:
                acc = summed.get(id(layer))
                if acc is None:
                    summed[id(layer)] = {k: np.array(g, copy=True) for k, g in layer.grads.items()}
                else:
                    for k, g in layer.grads.items():
                        acc[k] += g
            dxs = dx if node.multi else [dx]
            for s, g in zip(self._node_in[i], dxs):
                if g is None:
                    continue
                grads[s] = g if grads[s] is None else grads[s] + g
        for layer in self.layers:
            if id(layer) in summed:
                layer.grads = summed[id(layer)]
            elif id(layer) not in ran and layer.params:  # no gradient reached it: zero
                layer.grads = {k: np.zeros_like(p) for k, p in layer.params.items()}
        if not need_input_grads:
            return [None] * len(self.inputs)
        return [grads[i] for i in range(len(self.inputs))]

    # ------------------------------------------------------------------ config
    def get_config(self):
        """JSON-able wiring: inputs, the node list (layer index + input references) and outputs;
        the layers themselves are described by the model, in :attr:`layers` order."""
        index = {id(layer): i for i, layer in enumerate(self.layers)}
        ref = {id(t): ["input", i] for i, t in enumerate(self.inputs)}
        for j, n in enumerate(self.nodes):
            ref[id(n.output)] = ["node", j]
        return {"inputs": [{"name": t.name, "shape": list(t.sample_shape),
                            "dtype": t.dtype.name} for t in self.inputs],
                "nodes": [{"layer": index[id(n.layer)], "inputs": [ref[id(t)] for t in n.inputs]}
                          for n in self.nodes],
                "outputs": [ref[id(t)] for t in self.outputs]}

    @staticmethod
    def rebuild(config, layers):
        """(inputs, outputs) symbolic tensors re-created from :meth:`get_config` output by
        calling ``layers`` (a list, in the saved order) again; ValueError on bad wiring."""
        if not isinstance(config, dict):
            raise ValueError(f"graph config must be a dict, got {describe(config)}")
        inputs = [Input(entry["shape"], name=entry.get("name"), dtype=entry.get("dtype",
                                                                                "float32"))
                  for entry in _list(config.get("inputs"), "inputs")]
        made = []

        def resolve(ref):
            if (not isinstance(ref, list) or len(ref) != 2 or ref[0] not in ("input", "node")
                    or isinstance(ref[1], bool) or not isinstance(ref[1], numbers.Integral)):
                raise ValueError(f"bad tensor reference {describe(ref)}")
            pool = inputs if ref[0] == "input" else made
            if not 0 <= ref[1] < len(pool):
                raise ValueError(f"tensor reference {ref} points to nothing (nodes must come "
                                 f"after what they read)")
            return pool[ref[1]]

        for entry in _list(config.get("nodes"), "nodes"):
            i = entry.get("layer") if isinstance(entry, dict) else None
            if isinstance(i, bool) or not isinstance(i, numbers.Integral) \
                    or not 0 <= i < len(layers):
                raise ValueError(f"node {describe(entry)} names no layer")
            args = [resolve(r) for r in _list(entry.get("inputs"), "node inputs")]
            layer = layers[i]
            made.append(_call_layer(layer, args if getattr(layer, "multi_input", False)
                                    else args))
        outputs = [resolve(r) for r in _list(config.get("outputs"), "outputs")]
        return inputs, outputs


def _list(value, name):
    if not isinstance(value, list) or not value:
        raise ValueError(f"graph config: {name} must be a non-empty list, got {describe(value)}")
    return value

