"""Utilities: finite-difference gradient checking."""
import contextlib

import numpy as np

from ._random import get_rng

__all__ = ["gradient_check"]


def _all_layers(layers):
    """Layers and their sub-layers (fused activations), depth first."""
    out = []
    for layer in layers:
        out.append(layer)
        out.extend(_all_layers(layer._children()) if hasattr(layer, "_children") else [])
    return out


@contextlib.contextmanager
def _float64(layers):
    """Run the layers in float64 on copies of their params and buffers; restore the original
    arrays (same objects), dtype, grads and the shared random generator state afterwards."""
    everything = _all_layers(layers)
    saved = [(layer, layer.dtype, dict(layer.params), dict(layer.buffers), dict(layer.grads))
             for layer in everything]
    rng_state = get_rng().bit_generator.state
    try:
        for layer in everything:
            layer._dtype = np.dtype(np.float64)
            for store in (layer.params, layer.buffers):
                for key in list(store):
                    store[key] = np.array(store[key], dtype=np.float64)  # always a copy
        yield
    finally:
        for layer, dtype, params, buffers, grads in saved:
            layer._dtype = np.dtype(dtype)
            layer.params.clear()
            layer.params.update(params)
            layer.buffers.clear()
            layer.buffers.update(buffers)
            layer.grads = grads
        get_rng().bit_generator.state = rng_state


def _rel_error(analytic, numeric):
    """max |a - n| over the checked entries / the largest |a| or |n| (0 when both are 0)."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def _numeric(objective, arr, positions, eps):
    """Central differences of objective() w.r.t. arr.flat[positions] (arr is perturbed in place)."""
    flat = arr.reshape(-1)  # a view: arr is contiguous
    out = np.empty(len(positions))
    for k, i in enumerate(positions):
        old = flat[i]
        flat[i] = old + eps
        plus = objective()
        flat[i] = old - eps
        minus = objective()
        flat[i] = old
        out[k] = (plus - minus) / (2 * eps)
    return out


def gradient_check(layer_or_model, x, y=None, loss=None, eps=1e-6, n_checks=None, training=True,
                   seed=0):
    """Compare analytic gradients with float64 central finite differences.

    For a layer, the objective is ``sum(forward(x) * r)`` with ``r`` = ``y`` when given, else a
    fixed random array (from a private generator seeded by ``seed``); ``dx`` (key ``'x'``) and
    every parameter gradient (keys = param names) are checked. For a model (anything with a
    ``.layers`` list) the objective is ``loss(output, y)`` with ``loss`` or the model's ``.loss``
    (a name or a ``cycnn.losses`` object); every parameter gradient is checked, keys
    ``'<layer name>/<param name>'``. A cycnn model runs through its own ``forward``/``backward``
    (its graph: branches, merges, a layer used twice); anything else with ``.layers`` has its
    layers run one after another through their forward/backward.

    Everything runs in float64 on copies: the layer params, buffers (e.g. BatchNorm running
    statistics), grads, dtype and the shared random generator are restored afterwards, and the
    generator state is reset before every forward so Dropout masks are identical across
    evaluations. ``training`` is passed to every forward. ``n_checks`` limits the number of
    (randomly chosen) entries checked per array; None checks all of them.

    Returns ``{name: relative error}`` where relative error =
    max |analytic - numeric| / max(max |analytic|, max |numeric|) over the checked entries.
    Nothing is raised on mismatch.
    """
    is_model = isinstance(getattr(layer_or_model, "layers", None), (list, tuple))
    layers = list(layer_or_model.layers) if is_model else [layer_or_model]
    picker = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)

    if is_model:
        from . import losses
        loss_fn = losses.get(loss if loss is not None else layer_or_model.loss)
        if y is None:
            raise ValueError("y is required to gradient-check a model")
    if not all(layer.built for layer in layers):  # build in the layers' own dtype
        out = x.astype(layers[0].dtype)
        for layer in layers:
            out = layer.forward(out, training=False)
    rng_state = get_rng().bit_generator.state

    # a cycnn Model runs its own graph (branches, merges, shared layers); anything else with
    # .layers is run as a chain
    graph_model = is_model and callable(getattr(layer_or_model, "backward", None))

    def run_forward(inp):
        get_rng().bit_generator.state = rng_state
        if graph_model:
            return layer_or_model.forward(inp, training=training)
        out = inp
        for layer in layers:
            out = layer.forward(out, training=training)
        return out

    results = {}
    with _float64(layers):
        out = run_forward(x)
        if is_model:
            def objective():
                return loss_fn(run_forward(x), y)
            _, dy = loss_fn.value_and_grad(out, y)
        else:
            r = picker.standard_normal(out.shape) if y is None else np.array(y, dtype=np.float64)

            def objective():
                return float(np.sum(run_forward(x) * r))
            dy = r
        if graph_model:
            dx = layer_or_model.backward(dy)
        else:
            dx = dy
            for layer in reversed(layers):
                dx = layer.backward(dx)

        targets = [] if is_model else [("x", x, dx)]
        for layer in layers:
            for pname, arr in layer.params.items():
                key = f"{layer.name}/{pname}" if is_model else pname
                targets.append((key, arr, layer.grads[pname]))
        for key, arr, grad in targets:
            size = arr.size
            if n_checks is None or n_checks >= size:
                positions = np.arange(size)
            else:
                positions = picker.choice(size, size=n_checks, replace=False)
            numeric = _numeric(objective, arr, positions, eps)
            analytic = np.asarray(grad, dtype=np.float64).reshape(-1)[positions]
            results[key] = _rel_error(analytic, numeric)
    return results
