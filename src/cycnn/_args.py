"""Argument normalisation and validation shared by ``cycnn.ops`` and ``cycnn.reference``.

Pure Python and NumPy: the reference imports it too, so it never touches compiled code.
Every error names the argument and echoes what was received.
"""
import functools
import numbers
import operator
import os

import numpy as np

__all__ = [
    "as_float_array", "result_dtype", "pair", "positive_pair", "conv_padding", "pool_padding",
    "out_size", "check_ndim", "check_shape", "check_alloc", "MAX_ALLOC_BYTES",
]


_INT_MAX = 2**31 - 1   # geometry reaches the kernels as C ints


def _max_alloc_bytes(default=2**32):
    text = os.environ.get("CYCNN_MAX_ALLOC_BYTES", "").strip()
    if not text:
        return default
    try:
        value = int(float(text)) if "e" in text.lower() else int(text, 0)
    except ValueError:
        value = -1
    if value < 1:
        raise ValueError(f"CYCNN_MAX_ALLOC_BYTES must be a positive number of bytes, got {text!r}")
    return value


# Largest number of bytes one op may allocate for its outputs and scratch (4 GiB unless the
# CYCNN_MAX_ALLOC_BYTES environment variable, read at import, says otherwise). Geometry that
# would need more -- e.g. a huge padding around a tiny image -- is a ValueError, not an attempt
# to allocate (and fill) terabytes.
MAX_ALLOC_BYTES = _max_alloc_bytes()


def check_alloc(nbytes, what):
    """ValueError when ``what`` would allocate more than MAX_ALLOC_BYTES (``nbytes``)."""
    if nbytes > MAX_ALLOC_BYTES:
        raise ValueError(
            f"{what} would allocate {nbytes} bytes ({nbytes / 2**30:.3g} GiB), more than the "
            f"limit of {MAX_ALLOC_BYTES} bytes (set by the CYCNN_MAX_ALLOC_BYTES environment "
            f"variable)")


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _to_array(value, name):
    """ndarray view of an array-like (no copy when it already is one); rejects non-numbers."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and friends
        raise TypeError(f"{name} must be a numeric array, got {_describe(value)} ({exc})") from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array, got {_describe(value)}")
    return arr


def result_dtype(*arrays):
    """float32 or float64 for a set of input arrays.

    Floating inputs decide (float16 counts as float32; mixed float32/float64 gives float64);
    integer inputs are converted to the floating type of the others, float64 when all are integer.
    """
    floats = [a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    if not floats:
        return np.dtype(np.float64)
    if any(dt.itemsize > 4 for dt in floats):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def as_float_array(value, name, dtype):
    """C-contiguous array of ``dtype`` holding ``value``; copies only when needed.

    Read-only, non-contiguous, Fortran-ordered and broadcast inputs come out as a fresh
    C-contiguous copy (or as themselves when already C-contiguous with the right dtype, which
    kernels only read through const memoryviews).
    """
    arr = _to_array(value, name)
    _check_broadcast_copy(arr, name, dtype)
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_broadcast_copy(arr, name, dtype):
    """A broadcast view (a zero stride) holds few bytes but its C-ordered copy holds them all:
    refuse that copy when it would exceed MAX_ALLOC_BYTES."""
    if arr.size > 1 and 0 in arr.strides:
        check_alloc(arr.size * np.dtype(dtype).itemsize,
                    f"copying {name} (a broadcast view of shape {arr.shape}) into C order")


def check_ndim(arr, name, ndim, layout):
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D {layout}, got an array of shape {arr.shape} ({arr.ndim}-D)")


def check_shape(arr, name, shape, what="the forward output"):
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} ({what}), got shape {tuple(arr.shape)}")


def _as_int(value, name, received):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        try:
            # accept integral-valued NumPy scalars and objects with __index__
            return operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair of ints, got {_describe(received)}") from None
    return int(value)


def pair(value, name):
    """(h, w) ints from an int or an (h, w) pair."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {_describe(value)}")
        return (_as_int(items[0], name, value), _as_int(items[1], name, value))
    v = _as_int(value, name, value)
    return (v, v)


def positive_pair(value, name):
    """Like :func:`pair`, but both entries must be >= 1 (strides, dilations, kernel sizes)."""
    p = pair(value, name)
    if p[0] < 1 or p[1] < 1:
        raise ValueError(f"{name} must be >= 1, got {_describe(value)}")
    if max(p) > _INT_MAX:
        raise ValueError(f"{name} must be < 2**31, got {_describe(value)}")
    return p


def out_size(size, kernel, stride, dilation, pad_total):
    """floor((size + pad_total - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _same_padding(size, kernel, stride, dilation):
    """TensorFlow 'same': output ceil(size/stride); the odd extra pixel goes bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _padding(padding, in_hw, kernel_hw, stride_hw, dilation_hw, name):
    """((top, bottom), (left, right)) from an int, a pair, 'same' or 'valid'."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            pads = tuple(_same_padding(i, k, s, d)
                         for i, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw))
            if max(max(p) for p in pads) > _INT_MAX:
                raise ValueError(f"{name} 'same' needs padding {pads} here (input {tuple(in_hw)}, "
                                 f"kernel {tuple(kernel_hw)}, stride {tuple(stride_hw)}, dilation "
                                 f"{tuple(dilation_hw)}); it must be < 2**31")
            return pads
        raise ValueError(f"{name} must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = pair(padding, name)
    if ph < 0 or pw < 0:
        raise ValueError(f"{name} must be >= 0, got {_describe(padding)}")
    if max(ph, pw) > _INT_MAX:
        raise ValueError(f"{name} must be < 2**31, got {_describe(padding)}")
    return (ph, ph), (pw, pw)


def _output_hw(in_hw, kernel_hw, stride_hw, dilation_hw, pads, what):
    out = []
    for axis, (i, k, s, d, (lo, hi)) in enumerate(zip(in_hw, kernel_hw, stride_hw, dilation_hw, pads)):
        span = d * (k - 1) + 1
        dim = "height" if axis == 0 else "width"
        if i + lo + hi > _INT_MAX:
            # every input and output coordinate then fits in a C int (the kernels' geometry
            # arguments); sums the kernels form from them are 64-bit
            raise ValueError(
                f"padding {lo}+{hi} makes the padded input {dim} {i + lo + hi} (input {i}); "
                f"it must be < 2**31")
        if span > i + lo + hi:
            raise ValueError(
                f"{what} {dim} {span} (kernel {k}, dilation {d}) is larger than the padded input "
                f"{dim} {i + lo + hi} (input {i}, padding {lo}+{hi})")
        out.append(out_size(i, k, s, d, lo + hi))
    return tuple(out)


def _plain(value):
    """An int, a str or a pair of ints, of exactly those types (cacheable: no float, bool or
    NumPy scalar that compares equal to an int and must still be checked as itself)."""
    t = type(value)
    return t is int or t is str or (t is tuple and len(value) == 2
                                    and type(value[0]) is int and type(value[1]) is int)


def conv_padding(padding, in_hw, kernel_hw, stride, dilation):
    """Normalise convolution geometry.

    Returns (stride_hw, dilation_hw, pads, out_hw) with pads = ((top, bottom), (left, right)).
    Calls with plain ints / strings / int pairs (a training loop's every call) are answered from
    a small cache; errors are raised afresh every time.
    """
    if _plain(padding) and _plain(stride) and _plain(dilation):
        return _conv_padding_cached(padding, tuple(in_hw), tuple(kernel_hw), stride, dilation)
    return _conv_padding(padding, in_hw, kernel_hw, stride, dilation)


def _conv_padding(padding, in_hw, kernel_hw, stride, dilation):
    if min(kernel_hw) < 1:
        raise ValueError(f"w must have a kernel (R, S) of at least 1x1, got {tuple(kernel_hw)}")
    stride_hw = positive_pair(stride, "stride")
    dilation_hw = positive_pair(dilation, "dilation")
    pads = _padding(padding, in_hw, kernel_hw, stride_hw, dilation_hw, "padding")
    out_hw = _output_hw(in_hw, kernel_hw, stride_hw, dilation_hw, pads, "kernel")
    return stride_hw, dilation_hw, pads, out_hw


_conv_padding_cached = functools.lru_cache(maxsize=256)(_conv_padding)


def pool_padding(kernel_size, stride, padding, in_hw):
    """Normalise pooling geometry.

    Returns (kernel_hw, stride_hw, pads, out_hw); stride None means the kernel size; padding is
    at most half the kernel on each side.
    """
    kernel_hw = positive_pair(kernel_size, "kernel_size")
    stride_hw = kernel_hw if stride is None else positive_pair(stride, "stride")
    if min(in_hw) < 1:
        raise ValueError(f"pooling needs an input of at least 1x1 pixels, got height x width "
                         f"{in_hw[0]}x{in_hw[1]}")
    pads = _padding(padding, in_hw, kernel_hw, stride_hw, (1, 1), "padding")
    for (lo, hi), k in zip(pads, kernel_hw):
        if max(lo, hi) * 2 > k:
            raise ValueError(
                f"padding must be at most half of kernel_size, got padding {_describe(padding)} "
                f"with kernel_size {_describe(kernel_size)}")
    out_hw = _output_hw(in_hw, kernel_hw, stride_hw, (1, 1), pads, "kernel_size")
    return kernel_hw, stride_hw, pads, out_hw


def numeric_array(value, name):
    """ndarray view of an array-like (no copy); rejects non-numeric input."""
    return _to_array(value, name)


def strided_float_array(arr, dtype):
    """``arr`` as ``dtype``, aligned, with strides that are whole elements: transposed, strided
    and broadcast views pass as they are; anything else is copied into C order."""
    arr = arr.astype(dtype, copy=False)
    if not arr.flags.aligned or any(s % arr.itemsize for s in arr.strides):
        arr = np.require(arr, dtype, ["C", "A"])
    return arr


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _ready_dtype(named):
    """The dtype when every non-None value of (value, name) pairs already is an aligned,
    C-contiguous ndarray (not a subclass) of one native float32 or float64 dtype: nothing to
    convert or copy (the common case, checked first). Else None."""
    dtype = None
    for value, _ in named:
        if value is None:
            continue
        if type(value) is not np.ndarray:
            return None
        if dtype is None:
            dtype = value.dtype
            if dtype not in _FLOAT_DTYPES:
                return None
        elif value.dtype != dtype:
            return None
        flags = value.flags
        if not (flags.c_contiguous and flags.aligned):
            return None
    return dtype


def float_arrays(*named):
    """Common float dtype and C-contiguous arrays of it for (value, name) pairs.

    ``None`` values pass through as ``None``. Copies only what is not already C-contiguous
    in the common dtype (read-only arrays are not copied: kernels read them through const views).
    """
    dtype = _ready_dtype(named)
    if dtype is not None:
        return dtype, [value for value, _ in named]
    arrays = [None if value is None else _to_array(value, name) for value, name in named]
    dtype = result_dtype(*arrays)
    for a, (_, name) in zip(arrays, named):
        if a is not None:
            _check_broadcast_copy(a, name, dtype)
    return dtype, [None if a is None else np.require(a, dtype, ["C", "A"]) for a in arrays]


def shape4(value, name):
    """A 4-tuple of non-negative ints (an NCHW shape)."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple (N, C, H, W), got {_describe(value)}") from None
    if len(items) != 4:
        raise ValueError(f"{name} must be a tuple (N, C, H, W), got {_describe(value)}")
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (numbers.Integral, np.integer)):
            raise TypeError(f"{name} must hold ints, got {_describe(value)}")
        if item < 0:
            raise ValueError(f"{name} must hold non-negative ints, got {_describe(value)}")
        out.append(int(item))
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# grouped and transposed convolution, upsampling, zero padding
# ----------------------------------------------------------------------------------------------

def positive_int(value, name):
    """An int >= 1 (and < 2**31): TypeError for non-ints, ValueError for the rest."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {_describe(value)}")
    if not 1 <= value <= _INT_MAX:
        raise ValueError(f"{name} must be a positive int below 2**31, got {_describe(value)}")
    return int(value)


def conv_groups(groups, x_channels, w_shape, x_shape):
    """Validate ``groups`` for a convolution of x (shape ``x_shape``, ``x_channels`` channels)
    by w (K, C/groups, R, S) of ``w_shape``: groups divides C and K; returns groups."""
    groups = positive_int(groups, "groups")
    if x_channels % groups:
        raise ValueError(f"groups must divide the {x_channels} channels of x, got groups="
                         f"{groups} (x shape {tuple(x_shape)})")
    if w_shape[1] * groups != x_channels:
        raise ValueError(f"w must be (K, C/groups, R, S) with {x_channels // groups} input "
                         f"channels per group for x of shape {tuple(x_shape)} and groups="
                         f"{groups}, got w of shape {tuple(w_shape)}")
    if w_shape[0] % groups:
        raise ValueError(f"groups must divide the {w_shape[0]} filters of w, got groups="
                         f"{groups} (w shape {tuple(w_shape)})")
    return groups


def conv_transpose_groups(groups, x_shape, w_shape):
    """Validate x (N, C_in, H, W), w (C_in, K/groups, R, S) and ``groups`` (which must divide
    C_in) for a transposed convolution; returns groups."""
    if w_shape[0] != x_shape[1]:
        raise ValueError(f"w must be (C_in, K/groups, R, S) with C_in = {x_shape[1]} (the "
                         f"channels of x, shape {tuple(x_shape)}), got w of shape "
                         f"{tuple(w_shape)}")
    groups = positive_int(groups, "groups")
    if x_shape[1] % groups:
        raise ValueError(f"groups must divide the {x_shape[1]} channels of x, got groups="
                         f"{groups} (x shape {tuple(x_shape)})")
    return groups


def conv_transpose_padding(padding, output_padding, in_hw, kernel_hw, stride, dilation):
    """Normalise transposed-convolution geometry.

    The transposed convolution is the adjoint (the input gradient) of a convolution with the
    same kernel, stride and dilation whose input is the transposed convolution's output and
    whose padding is ``padding``. Returns (stride_hw, dilation_hw, pads, out_hw) where pads are
    that convolution's ((top, bottom), (left, right)) and per axis::

        out = (in - 1) * stride - pad_top - pad_bottom + dilation * (k - 1) + output_padding + 1

    ``padding``: int or pair (both sides), ``'valid'`` (0) or ``'same'`` (TensorFlow's
    ``conv2d_transpose``: out = in * stride; the odd pixel of padding goes bottom/right, and a
    kernel span below the stride leaves ``stride - span`` zero rows at the bottom, as
    output_padding). ``output_padding`` (int or pair, >= 0, smaller than the stride or the
    dilation, as PyTorch) adds rows/columns at the bottom/right; only with int/pair padding.
    """
    if min(kernel_hw) < 1:
        raise ValueError(f"w must have a kernel (R, S) of at least 1x1, got {tuple(kernel_hw)}")
    stride_hw = positive_pair(stride, "stride")
    dilation_hw = positive_pair(dilation, "dilation")
    extra = pair(output_padding, "output_padding")
    for e, s, d in zip(extra, stride_hw, dilation_hw):
        if e < 0 or (e >= s and e >= d):
            raise ValueError(f"output_padding must be >= 0 and smaller than the stride or the "
                             f"dilation, got {_describe(output_padding)} with stride "
                             f"{_describe(stride)} and dilation {_describe(dilation)}")
    spans = [d * (k - 1) + 1 for k, d in zip(kernel_hw, dilation_hw)]
    if isinstance(padding, str) and padding.lower() == "same":
        if any(extra):
            raise ValueError(f"output_padding must be 0 with padding='same', got "
                             f"{_describe(output_padding)}")
        pads, extra = [], list(extra)
        for axis, (span, s) in enumerate(zip(spans, stride_hw)):
            total = span - s
            pads.append((max(total, 0) // 2, max(total, 0) - max(total, 0) // 2))
            extra[axis] = max(-total, 0)
        pads = tuple(pads)
    else:
        pads = _padding(padding, in_hw, kernel_hw, stride_hw, dilation_hw, "padding")
    out_hw = []
    for axis, (i, s, span, (lo, hi), e) in enumerate(zip(in_hw, stride_hw, spans, pads, extra)):
        out = (i - 1) * s + span - lo - hi + e
        if out < 1 and i > 0:
            dim = "height" if axis == 0 else "width"
            raise ValueError(f"padding {_describe(padding)} leaves no output {dim}: "
                             f"(in {i} - 1) * stride {s} + kernel span {span} - padding "
                             f"{lo}+{hi} + output_padding {e} = {out}")
        if out + lo + hi > _INT_MAX:   # the padded input of the adjoint convolution
            dim = "height" if axis == 0 else "width"
            raise ValueError(f"padding {lo}+{hi} makes the padded output {dim} {out + lo + hi} "
                             f"(output {out}); it must be < 2**31")
        out_hw.append(max(out, 0))
    if max(out_hw) > _INT_MAX:
        raise ValueError(f"conv_transpose2d output {tuple(out_hw)} is too large (< 2**31)")
    return stride_hw, dilation_hw, pads, tuple(out_hw)


def pad4(value, name):
    """((top, bottom), (left, right)) from an int, a pair (h, w) or a pair of pairs; >= 0."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (list, tuple)) for v in value):
        pads = (pair(value[0], name), pair(value[1], name))
    else:
        ph, pw = pair(value, name)
        pads = ((ph, ph), (pw, pw))
    flat = pads[0] + pads[1]
    if min(flat) < 0:
        raise ValueError(f"{name} must be >= 0, got {_describe(value)}")
    if max(flat) > _INT_MAX:
        raise ValueError(f"{name} must be < 2**31, got {_describe(value)}")
    return pads


def interpolation_mode(value):
    if not isinstance(value, str) or value.lower() not in ("nearest", "bilinear"):
        raise ValueError(f"interpolation must be 'nearest' or 'bilinear', got {_describe(value)}")
    return value.lower()
