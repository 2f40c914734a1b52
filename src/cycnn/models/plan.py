"""The inference plan behind ``Model.predict``: a model's layer chain compiled once for float32
inference.

What it does, once per weights version:

* resolves every layer's geometry (padding, output sizes) and validates nothing per call
  afterwards -- ``predict`` validates the input once;
* packs the weights of Conv2D and Dense once into the layout of the kernel that runs them
  (``cycnn._kernels.infer.PackedWeights``: the implicit-GEMM or the direct convolution, chosen
  per layer by :func:`conv_kernel`; the GEMM's pre-packed B for Dense), with BatchNorm
  (inference statistics) that follows a Conv2D/Dense without activation folded into its weights
  and bias;
* fuses each Conv2D/Dense with its bias and activation (ReLU / leaky ReLU, from the layer's
  ``activation=`` or a following ReLU/LeakyReLU layer) in the kernels' epilogue, and a Conv2D
  with a following non-overlapping MaxPool2D/AvgPool2D (window == stride, no padding);
* Flatten and Dropout become views; any other layer (Sigmoid/Tanh/Softmax, Conv1D, merge or
  custom layers, float64 layers) runs its ordinary ``forward(x, training=False)``.

Running: the steps write into an *arena* of preallocated buffers for one (batch size, thread
count): two ping-pong activation buffers as large as the largest native step output for that
batch, per-thread scratch (the zero-padded copy of one image or band, the conv output of one
image or band when a pool is fused, max-pool indices) and one GEMM workspace per thread. The
plan keeps at most one idle arena for each of the last ``MAX_ARENAS`` (batch size, threads)
pairs (``predict`` needs two: its batch size and the last, partial batch); concurrent calls that
find their arena in use get a private one for that call, so several Python threads may call
``predict`` on one model at once. :meth:`InferencePlan.memory` says what is held.

Staleness: a plan records each layer's ``weights_version`` (cycnn.layers.Layer); a training step,
``load_model``, assigning to ``params``/``buffers``, changing a dtype or
``Layer.mark_weights_changed()`` change it, and :func:`plan_for` builds a new plan on the next
call. A plan obtained from :meth:`Model.compile_predictor` is a snapshot of the weights at that
time.
"""
import collections
import threading
import weakref

import numpy as np

from .. import layers as _layers
from .._args import conv_padding, pool_padding
from .._kernels import conv as _conv_kernels
from .._kernels import infer as _infer
from .._threads import get_num_threads, threads_for

__all__ = ["InferencePlan", "plan_for", "MAX_ARENAS"]

MAX_ARENAS = 2
_F32 = np.dtype(np.float32)


WINOGRAD = True    # 5x5 / 3x3 stride-1 convolutions on the Winograd kernel (use_winograd)
# fewest input channels for which Winograd beat the direct kernel, by filter size: the rule
# lives in the conv kernels module (winograd_applies), shared with training's convolutions
WINOGRAD_MIN_CHANNELS = _conv_kernels.WINOGRAD_MIN_CHANNELS


def use_winograd(flag=True):
    """Let plans built from now on run 5x5 and 3x3 stride-1 convolutions with at least
    WINOGRAD_MIN_CHANNELS input channels (16 and 8) on the Winograd kernel (csrc/conv/swino.c; the
    default), or keep them on the direct kernels (flag False). Plans built before are rebuilt
    on their next use. Winograd adds rounding error: about 5e-6 on outputs of size 4 where
    direct float32 convolution gives 1e-6 (swino.c's note)."""
    global WINOGRAD
    WINOGRAD = bool(flag)


def conv_kernel(kernel_shape, stride=(1, 1), dilation=(1, 1)):
    """The kernel a Conv2D with filters of ``kernel_shape`` (K, C, R, S) runs on: 'winograd'
    (csrc/conv/swino.c: F(2x2, 5x5) / F(4x4, 3x3)) for 5x5 and 3x3 filters at stride 1 with
    no dilation and at least WINOGRAD_MIN_CHANNELS[R] input channels (the rule training's
    convolutions follow too: cycnn._kernels.conv.winograd_applies), when WINOGRAD is on; else
    :func:`direct_kernel`. (use_winograd switches plans only; training's convolutions have
    cycnn._kernels.conv.set_winograd_mode.)"""
    _, c, r, s = kernel_shape
    if WINOGRAD and _conv_kernels.winograd_applies(c, r, s, *stride, *dilation):
        return "winograd"
    return direct_kernel((r, s), c * r * s)


def direct_kernel(kernel_hw, taps):
    """'direct' (the broadcast convolution, csrc/conv/sconv_direct.c: 6-pixel x 16-filter
    tiles, inputs broadcast from the padded image, nothing packed per image) or 'conv' (the
    implicit GEMM, csrc/conv/sconv_igemm.c: B panels packed from the padded image) for a Conv2D
    with a ``kernel_hw`` window and ``taps`` = C*R*S. The rule of training's forward pass
    (conv.pyx _use_direct): the broadcast kernel except for 1x1 filters, where every tap is
    another channel plane and the implicit GEMM measured faster. In the plan, one core, batch
    256 / 64: reference network 1.10x overall (conv1 1.27x, conv2 1.1x), VGG stack 1.09x
    (32-filter layers 1.12-1.25x, 64/128 filters 1.0-1.08x)."""
    if kernel_hw[0] * kernel_hw[1] == 1 or not _infer.direct_fits(taps):
        return "conv"
    return "direct"


def _act_code(act):
    """(code, slope) for an activation layer the GEMM epilogue can apply, else None."""
    if act is None:
        return (None, 0.0)
    if type(act) is _layers.ReLU:
        return ("relu", 0.0)
    if type(act) is _layers.LeakyReLU:
        return ("leaky_relu", float(np.float32(act.alpha)))
    return None


def _bn_affine(layer):
    """(scale, shift) in float64 with bn(x) = x * scale + shift per channel (inference)."""
    gamma = layer.params["gamma"].astype(np.float64)
    beta = layer.params["beta"].astype(np.float64)
    mean = layer.buffers["running_mean"].astype(np.float64)
    var = layer.buffers["running_var"].astype(np.float64)
    inv_std = 1.0 / np.sqrt(var + layer.eps)
    return gamma * inv_std, beta - mean * gamma * inv_std


class _Native:
    """A Conv2D/Dense (+ folded BatchNorm, activation, pool) before its weights are packed."""

    def __init__(self, layer, kind):
        self.layers = [layer]
        self.kind = kind             # "conv" or "dense"
        self.layer = layer
        self.kernel = layer.params["kernel"].astype(np.float64)
        bias = layer.params.get("bias")
        self.bias = None if bias is None else bias.astype(np.float64)
        self.act = None              # (name, slope) once set
        self.pool = None             # (kind, (ph, pw)) once set
        self.out_shape = tuple(layer.output_shape)

    def can_take_affine(self):
        return self.act is None and self.pool is None

    def fold_bn(self, bn):
        scale, shift = _bn_affine(bn)
        shape = (-1,) + (1,) * (self.kernel.ndim - 1)
        self.kernel = self.kernel * scale.reshape(shape)
        self.bias = shift if self.bias is None else self.bias * scale + shift
        self.layers.append(bn)

    def build(self, path):
        layer = self.layer
        bias = None if self.bias is None else self.bias.astype(np.float32)
        name, slope = self.act if self.act is not None else (None, 0.0)
        if self.kind == "dense":
            packed = _infer.PackedWeights(self.kernel.astype(np.float32), bias, "b", path)
            return _infer.DenseStep(packed, name, slope), packed
        c, h, w = layer.input_shape
        (sh, sw), (dh, dw), pads, out_hw = conv_padding(layer.padding, (h, w), layer.kernel_size,
                                                        layer.stride, layer.dilation)
        kind = conv_kernel(self.kernel.shape, (sh, sw), (dh, dw))
        packed = _infer.PackedWeights(self.kernel.astype(np.float32), bias, kind, path)
        r, s = layer.kernel_size
        geometry = (r, s, sh, sw, pads[0][0], pads[1][0], dh, dw)
        pool, window = self.pool if self.pool is not None else (None, (1, 1))
        step = _infer.ConvStep(packed, (c, h, w), geometry, tuple(out_hw), name, slope, pool,
                               window)
        return step, packed


def _native_kind(layer, in_shape):
    """'conv' / 'dense' when a native step computes exactly what ``layer`` does, else None
    (subclasses, grouped convolutions and other variants run their own forward)."""
    kernel = layer.params.get("kernel") if isinstance(layer, _layers.Layer) else None
    if kernel is None or kernel.dtype != _F32:
        return None
    if (type(layer) is _layers.Conv2D and getattr(layer, "groups", 1) == 1 and kernel.ndim == 4
            and len(in_shape) == 3 and kernel.shape[1] == in_shape[0]):
        return "conv"
    if (type(layer) is _layers.Dense and kernel.ndim == 2 and len(in_shape) == 1
            and kernel.shape[1] == in_shape[0]):
        return "dense"
    return None


def _fusable_pool(layer, in_shape):
    """(kind, window) when ``layer`` is a pool a conv step can do in its store, else None."""
    if type(layer) not in (_layers.MaxPool2D, _layers.AvgPool2D) or layer.dtype != _F32:
        return None
    window, stride, pads, _ = pool_padding(layer.pool_size, layer.stride, layer.padding,
                                           tuple(in_shape[1:]))
    if tuple(window) != tuple(stride) or any(p for pair in pads for p in pair):
        return None
    return ("max" if type(layer) is _layers.MaxPool2D else "avg", tuple(window))


def _pool_step(layer, in_shape):
    window, stride, pads, out_hw = pool_padding(layer.pool_size, layer.stride, layer.padding,
                                                tuple(in_shape[1:]))
    return _infer.PoolStep("max" if type(layer) is _layers.MaxPool2D else "avg",
                           tuple(in_shape), tuple(window), tuple(stride),
                           (pads[0][0], pads[1][0]), tuple(out_hw))


def _forward_of(layer):
    def run(x):
        return layer.forward(x, training=False)
    return run


def _flatten(x):
    return x.reshape(len(x), -1)


def _identity(x):
    return x


class InferencePlan:
    """A compiled float32 forward pass of a chain of built layers (see the module note).

    Call it with a float32 batch ``(N, *input_shape)`` to get the output (a new array).
    """

    def __init__(self, layers, input_shape):
        self.layers = tuple(layers)
        self.key = tuple((layer, layer.weights_version) for layer in self.layers)
        self.input_shape = tuple(input_shape)
        self.path = _conv_kernels.simd_name()
        self.winograd = WINOGRAD
        self.steps = []          # (kind, obj, out_shape, layers); kind: native / view / layer
        self.packed_bytes = 0
        self._build()
        self.steps = [(kind, obj, tuple(out_shape), layers)
                      for kind, obj, out_shape, layers in self.steps]
        self._sizes = [int(np.prod(out_shape)) for _, _, out_shape, _ in self.steps]
        self.output_shape = self.steps[-1][2] if self.steps else self.input_shape
        self.graph = None
        self._lock = threading.Lock()
        self._arenas = collections.OrderedDict()   # (N, nt) -> idle arena

    # ---------------------------------------------------------------- building
    def _build(self):
        pending = []     # list of _Native or ready steps, in order
        shape = self.input_shape
        for layer in self.layers:
            prev = pending[-1] if pending and isinstance(pending[-1], _Native) else None
            float32 = layer.dtype == _F32
            kind = type(layer)
            out_shape = tuple(layer.output_shape)
            if float32 and _native_kind(layer, shape) is not None:
                native = _Native(layer, _native_kind(layer, shape))
                pending.append(native)
                act = getattr(layer, "activation", None)
                if act is not None and _act_code(act) is not None:
                    native.act = _act_code(act)
                elif act is not None:   # sigmoid, tanh, softmax: the activation layer itself
                    pending.append(("layer", _forward_of(act), out_shape, [act]))
            elif (prev is not None and kind in (_layers.BatchNorm2D, _layers.BatchNorm1D)
                  and float32 and prev.can_take_affine() and
                  len(prev.out_shape) == (3 if kind is _layers.BatchNorm2D else 1)):
                prev.fold_bn(layer)
            elif (prev is not None and kind in (_layers.ReLU, _layers.LeakyReLU) and float32
                  and prev.act is None and prev.pool is None):
                prev.act = _act_code(layer)
                prev.layers.append(layer)
            elif (prev is not None and prev.kind == "conv" and prev.pool is None
                  and _fusable_pool(layer, shape) is not None):
                prev.pool = _fusable_pool(layer, shape)
                prev.layers.append(layer)
                prev.out_shape = out_shape
            elif float32 and kind in (_layers.MaxPool2D, _layers.AvgPool2D):
                pending.append(("native", _pool_step(layer, shape), out_shape, [layer]))
            elif kind is _layers.Flatten and layer.data_format == "channels_first":
                pending.append(("view", _flatten, out_shape, [layer]))
            elif kind is _layers.Dropout:
                pending.append(("view", _identity, out_shape, [layer]))
            else:
                pending.append(("layer", _forward_of(layer), out_shape, [layer]))
            shape = out_shape
        for item in pending:
            if isinstance(item, _Native):
                step, packed = item.build(self.path)
                if tuple(step.out_shape) != tuple(item.out_shape):
                    raise AssertionError(f"plan step for {item.layer.name} gives "
                                         f"{step.out_shape}, the layers {item.out_shape}")
                self.packed_bytes += packed.nbytes
                self.steps.append(("native", step, item.out_shape, item.layers))
            else:
                self.steps.append(item)

    def describe(self):
        """One line per step: what it runs and which layers it replaces."""
        lines = []
        for kind, obj, out_shape, layers in self.steps:
            what = type(obj).__name__ if kind == "native" else kind
            how = f" ({obj.kernel})" if hasattr(obj, "kernel") else ""
            lines.append(f"{what:10s} {' + '.join(l.name for l in layers)} -> {out_shape}{how}")
        return lines

    # ---------------------------------------------------------------- arenas
    def _new_arena(self, n, nt):
        """Buffers for a batch of n on nt threads (see the module note)."""
        floats, indices, act = 1, 1, 1
        for kind, obj, out_shape, _ in self.steps:
            if kind == "native":
                f, i = obj.scratch(n, nt)
                floats, indices = max(floats, f), max(indices, i)
                act = max(act, n * int(np.prod(out_shape)))
        return {
            "key": (n, nt),
            "work": [(obj.work(n), obj.parallel_units(n)) if kind == "native" else (0, None)
                     for kind, obj, _, _ in self.steps],
            "bufs": (np.empty(act, np.float32), np.empty(act, np.float32)),
            "scratch": np.empty((nt, floats), np.float32),
            "idx": np.empty((nt, indices), np.int64),
            "ws": np.empty(nt * _infer.workspace_bytes() + 64, np.uint8),
        }

    def _acquire(self, n, nt):
        with self._lock:
            arena = self._arenas.pop((n, nt), None)
        return arena if arena is not None else self._new_arena(n, nt)

    def _release(self, arena):
        with self._lock:
            key = arena["key"]
            if key not in self._arenas:
                self._arenas[key] = arena
            self._arenas.move_to_end(key)
            while len(self._arenas) > MAX_ARENAS:
                self._arenas.popitem(last=False)

    def memory(self):
        """Bytes held: {'packed_weights': ..., 'arenas': {(N, threads): bytes}}."""
        with self._lock:
            arenas = {key: sum(a[k].nbytes for k in ("scratch", "idx", "ws")) +
                      sum(b.nbytes for b in a["bufs"]) for key, a in self._arenas.items()}
        return {"packed_weights": self.packed_bytes, "arenas": arenas}

    # ---------------------------------------------------------------- running
    def fresh(self):
        """True while no layer's weights changed and the GEMM path and the Winograd switch are
        the ones it was built with."""
        return (self.path == _conv_kernels.simd_name() and self.winograd == WINOGRAD and
                all(layer.weights_version == version for layer, version in self.key))

    def run(self, x, out=None):
        """Forward pass of the float32 batch x (N, *input_shape) (shape checked by the
        caller). Writes into ``out`` when given (else returns a new array)."""
        n = len(x)
        nt = get_num_threads()
        arena = self._acquire(n, nt)
        try:
            bufs, scratch, idx, ws = arena["bufs"], arena["scratch"], arena["idx"], arena["ws"]
            if x.dtype != _F32 or not x.flags.c_contiguous:
                x = np.ascontiguousarray(x, dtype=np.float32)
            held = -1            # which ping-pong buffer holds x (-1: none, None: unknown)
            for (kind, obj, out_shape, layers), size, (work, units) in zip(
                    self.steps, self._sizes, arena["work"]):
                if kind == "native":
                    if x.dtype != _F32:        # a fallback layer changed the dtype
                        for layer in layers:
                            x = layer.forward(x, training=False)
                        held = None
                        continue
                    if not x.flags.c_contiguous:
                        x = np.ascontiguousarray(x)
                        held = -1
                    if held is None:
                        held = 0 if np.may_share_memory(x, bufs[0]) else -1
                    held = 1 if held == 0 else 0
                    y = bufs[held][:n * size].reshape((n,) + out_shape)
                    obj.run(x, y, scratch, idx, ws, min(nt, threads_for(work, units)))
                    x = y
                elif kind == "view":
                    x = obj(x)
                else:
                    x = obj(x)
                    held = None
            if out is None:
                return np.array(x, copy=True)
            out[...] = x
            return out
        finally:
            self._release(arena)

    __call__ = run


_PLANS = weakref.WeakKeyDictionary()
_PLANS_LOCK = threading.Lock()


def plan_for(model):
    """The current plan of ``model`` (built, or rebuilt when its graph, a layer's weights
    version or the GEMM path changed), or None when the model is no chain of float32 layers
    (``model._inference_chain()``)."""
    graph = getattr(model, "_graph", None)
    plan = _PLANS.get(model)
    if plan is not None and plan.graph is graph and plan.fresh():
        return plan
    with _PLANS_LOCK:
        plan = _PLANS.get(model)
        if plan is None or plan.graph is not graph or not plan.fresh():
            chain = model._inference_chain()
            if chain is None:
                _PLANS.pop(model, None)
                return None
            plan = InferencePlan(chain, graph.input_shapes[0])
            plan.graph = graph
            _PLANS[model] = plan
    return plan
