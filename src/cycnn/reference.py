"""Pure-NumPy reference implementations (the test oracle) of cycnn's operators.

Everything here is written for clarity, not speed, and never imports compiled code: the
compiled kernels in :mod:`cycnn.ops` are tested against these functions.  Argument
normalisation and validation go through :mod:`cycnn._args`, shared with :mod:`cycnn.ops`, so
both raise the same errors for the same bad input.

Conventions (identical to :mod:`cycnn.ops`)
-------------------------------------------
* Layout is NCHW: ``x`` is (N, C, H, W), conv weights ``w`` are (K, C, R, S).
* ``stride``, ``dilation``, ``kernel_size`` take an int or an ``(h, w)`` pair, all >= 1.
* ``padding`` takes an int, an ``(h, w)`` pair (symmetric, >= 0), ``'valid'`` (no padding) or
  ``'same'`` (TensorFlow: output ``ceil(in / stride)``, the odd extra pixel at bottom/right).
* Output size per axis: ``floor((H + pad_top + pad_bottom - dilation*(R-1) - 1) / stride) + 1``.
* Computation dtype: float32 or float64 as :func:`cycnn._args.result_dtype` decides (integer
  input becomes floating, mixed float32/float64 gives float64); outputs have that dtype.
* Array-likes are accepted; N = 0 gives empty outputs of the right shape.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _args

__all__ = [
    "conv2d", "conv2d_backward",
    "conv_transpose2d", "conv_transpose2d_backward",
    "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward",
    "matmul",
    "upsample2d", "upsample2d_backward",
    "zero_pad2d", "zero_pad2d_backward",
    "global_max_pool2d", "global_max_pool2d_backward",
    "relu", "relu_backward",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def _pad(x, pads, value):
    """Pad the two spatial axes of an NCHW array by pads = ((top, bottom), (left, right))."""
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), mode="constant", constant_values=value)


def _windows(xp, kernel_hw, stride_hw, dilation_hw, out_hw):
    """Strided read-only view of every receptive field of a padded NCHW array.

    Shape: (N, C, Ho, Wo, R, S); element [n, c, i, j, r, s] is
    ``xp[n, c, i*sh + r*dh, j*sw + s*dw]``.
    """
    (R, S), (sh, sw), (dh, dw), (Ho, Wo) = kernel_hw, stride_hw, dilation_hw, out_hw
    span = (dh * (R - 1) + 1, dw * (S - 1) + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))
    return win[:, :, : (Ho - 1) * sh + 1 : sh, : (Wo - 1) * sw + 1 : sw, ::dh, ::dw]


def _scatter_windows(cols, padded_hw, stride_hw, dilation_hw):
    """Adjoint of :func:`_windows`: sum window contributions back into a padded array.

    cols: (N, C, Ho, Wo, R, S) -> (N, C, Hp, Wp); overlapping windows accumulate.
    """
    N, C, Ho, Wo, R, S = cols.shape
    (sh, sw), (dh, dw) = stride_hw, dilation_hw
    out = np.zeros((N, C) + tuple(padded_hw), dtype=cols.dtype)
    for r in range(R):          # one strided slice per kernel tap: vectorised over N, C, Ho, Wo
        for s in range(S):
            out[:, :, r * dh : r * dh + (Ho - 1) * sh + 1 : sh,
                      s * dw : s * dw + (Wo - 1) * sw + 1 : sw] += cols[:, :, :, :, r, s]
    return out


def _crop(xp, pads):
    (top, bottom), (left, right) = pads
    return xp[:, :, top : xp.shape[2] - bottom, left : xp.shape[3] - right]


def _conv_geometry(x, w, stride, padding, dilation):
    """Validate conv operands; returns (stride_hw, dilation_hw, pads, out_hw)."""
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    _args.check_ndim(w, "w", 4, "(K, C, R, S)")
    C, (H, W) = x.shape[1], x.shape[2:]
    Cw, (R, S) = w.shape[1], w.shape[2:]
    if Cw != C:
        raise ValueError(f"w must have {C} input channels (w.shape[1]) to match x of shape "
                         f"{x.shape}, got w of shape {w.shape}")
    return _args.conv_padding(padding, (H, W), (R, S), stride, dilation)


# ----------------------------------------------------------------------------------------------
# convolution
# ----------------------------------------------------------------------------------------------

def _is_one(groups):
    return type(groups) is int and groups == 1


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in every deep-learning framework).

    ``groups`` != 1: see :func:`_conv2d_grouped` (w is then (K, C/groups, R, S)).

    ``y[n, k, i, j] = b[k] + sum_{c, r, s} w[k, c, r, s] * xp[n, c, i*sh + r*dh, j*sw + s*dw]``
    where ``xp`` is ``x`` zero-padded by ``padding``.

    Parameters
    ----------
    x : array_like, input images.
    w : array_like, filters.
    b : array_like or None, one bias per output channel.
    stride, dilation : int or (int, int), >= 1.
    padding : int, (int, int), 'same' or 'valid'.

    Shape
    -----
    x (N, C, H, W), w (K, C, R, S), b (K,) -> y (N, K, Ho, Wo) with
    ``Ho = (H + pad_top + pad_bottom - dh*(R-1) - 1) // sh + 1`` (same for Wo).

    Returns
    -------
    y : ndarray of the common floating dtype of the inputs.
    """
    if not _is_one(groups):
        return _conv2d_grouped(x, w, b, stride, padding, dilation, groups)
    _, (x, w, b) = _args.float_arrays((x, "x"), (w, "w"), (b, "b"))
    stride_hw, dilation_hw, pads, out_hw = _conv_geometry(x, w, stride, padding, dilation)
    K = w.shape[0]
    if b is not None:
        _args.check_shape(b, "b", (K,), "one bias per output channel of w")
    win = _windows(_pad(x, pads, 0), w.shape[2:], stride_hw, dilation_hw, out_hw)
    # (N, C, Ho, Wo, R, S) . (K, C, R, S) over C, R, S -> (N, Ho, Wo, K)
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y, dtype=x.dtype)


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, compute_dx=True, groups=1):
    """Gradients of :func:`conv2d` with respect to x, w and the bias.

    ``groups`` != 1: see :func:`_conv2d_grouped_backward`.

    Parameters
    ----------
    dy : array_like, gradient of the loss with respect to the conv2d output.
    x, w, stride, padding, dilation : as given to :func:`conv2d`.
    compute_dx : bool, False skips dx (returned as None).

    Shape
    -----
    dy (N, K, Ho, Wo), x (N, C, H, W), w (K, C, R, S)
    -> dx (N, C, H, W), dw (K, C, R, S), db (K,)  (db = dy summed over N, Ho, Wo).

    Returns
    -------
    (dx, dw, db) : ndarrays of the common floating dtype of dy, x and w.
    """
    if not _is_one(groups):
        dx, dw, db = _conv2d_grouped_backward(dy, x, w, stride, padding, dilation, groups)
        return (dx if compute_dx else None), dw, db
    _, (dy, x, w) = _args.float_arrays((dy, "dy"), (x, "x"), (w, "w"))
    stride_hw, dilation_hw, pads, out_hw = _conv_geometry(x, w, stride, padding, dilation)
    N, K, (R, S) = x.shape[0], w.shape[0], w.shape[2:]
    _args.check_ndim(dy, "dy", 4, "(N, K, Ho, Wo)")
    _args.check_shape(dy, "dy", (N, K) + out_hw, "the conv2d output for these x, w")

    xp = _pad(x, pads, 0)
    win = _windows(xp, (R, S), stride_hw, dilation_hw, out_hw)
    db = dy.sum(axis=(0, 2, 3))
    # dw[k, c, r, s] = sum_{n, i, j} dy[n, k, i, j] * win[n, c, i, j, r, s]
    dw = np.tensordot(dy, win, axes=([0, 2, 3], [0, 2, 3]))
    dt = x.dtype
    dx = None
    if compute_dx:
        # cols[n, c, i, j, r, s] = sum_k dy[n, k, i, j] * w[k, c, r, s], then scatter (col2im)
        cols = np.tensordot(dy, w, axes=([1], [0])).transpose(0, 3, 1, 2, 4, 5)
        dx = _crop(_scatter_windows(cols, xp.shape[2:], stride_hw, dilation_hw), pads)
        dx = np.ascontiguousarray(dx, dtype=dt)
    return dx, np.ascontiguousarray(dw, dtype=dt), np.ascontiguousarray(db, dtype=dt)


# ----------------------------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------------------------

def max_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D max pooling with PyTorch ``return_indices`` semantics.

    Padding is -inf (never chosen over a real element).  In each window the FIRST maximum in
    row-major scan order wins ties; a NaN in the window is propagated, as PyTorch does
    (its scan ``if (v > max || isnan(v))`` keeps the LAST NaN when there are several).  A window
    whose real elements are all -inf gives -inf and the index of its first real element.

    Parameters
    ----------
    x : array_like, input images.
    kernel_size : int or (int, int), >= 1.
    stride : int, (int, int) or None (= kernel_size).
    padding : int or (int, int), at most half the kernel; or 'same' / 'valid'.

    Shape
    -----
    x (N, C, H, W) -> y (N, C, Ho, Wo), indices (N, C, Ho, Wo) int64, where
    ``indices[n, c, i, j] = h * W + w`` locates the chosen element in plane ``x[n, c]``.
    """
    _, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    kernel_hw, stride_hw, pads, out_hw = _args.pool_padding(kernel_size, stride, padding, (H, W))
    (kh, kw), (top, _), (left, _) = kernel_hw, pads[0], pads[1]

    win = _windows(_pad(x, pads, -np.inf), kernel_hw, stride_hw, (1, 1), out_hw)
    win = win.reshape(win.shape[:4] + (kh * kw,))                  # (N, C, Ho, Wo, kh*kw)

    # Row/column (unpadded coordinates) of every window tap, and whether it is a real element.
    rows = (np.arange(out_hw[0]) * stride_hw[0] - top)[:, None, None, None] \
        + np.arange(kh)[None, None, :, None]                          # (Ho, 1, kh, 1)
    cols = (np.arange(out_hw[1]) * stride_hw[1] - left)[None, :, None, None] \
        + np.arange(kw)[None, None, None, :]                          # (1, Wo, 1, kw)
    real = ((rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)).reshape(
        out_hw + (kh * kw,))                                          # (Ho, Wo, kh*kw)
    flat = (rows * W + cols).reshape(out_hw + (kh * kw,))

    with np.errstate(invalid="ignore"):
        best = win.max(axis=-1, keepdims=True)                       # NaN if any NaN
    is_nan = np.isnan(win)
    first_max = np.argmax((win == best) & real, axis=-1)             # first real maximum
    last_nan = kh * kw - 1 - np.argmax(is_nan[..., ::-1], axis=-1)   # PyTorch: last NaN
    tap = np.where(is_nan.any(axis=-1), last_nan, first_max)
    y = np.take_along_axis(win, tap[..., None], axis=-1)[..., 0]
    indices = np.take_along_axis(
        np.broadcast_to(flat, win.shape), tap[..., None], axis=-1)[..., 0]
    return np.ascontiguousarray(y, dtype=x.dtype), np.ascontiguousarray(indices, dtype=np.int64)


def max_pool2d_backward(dy, indices, input_shape):
    """Gradient of :func:`max_pool2d` with respect to x.

    Each ``dy[n, c, i, j]`` is added to ``dx[n, c].flat[indices[n, c, i, j]]``; elements chosen
    by several (overlapping) windows accumulate.

    Parameters
    ----------
    dy : array_like, gradient of the loss with respect to the max_pool2d output.
    indices : integer array_like, the indices returned by :func:`max_pool2d`.
    input_shape : 4-tuple of non-negative ints, the shape of the forward input x.

    Shape
    -----
    dy (N, C, Ho, Wo), indices (N, C, Ho, Wo) with values in [0, H*W),
    input_shape (N, C, H, W) -> dx (N, C, H, W).
    """
    _, (dy,) = _args.float_arrays((dy, "dy"))
    N, C, H, W = _args.shape4(input_shape, "input_shape")
    _args.check_ndim(dy, "dy", 4, "(N, C, Ho, Wo)")
    idx = np.asarray(indices)
    if idx.dtype == np.bool_ or idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array (from max_pool2d), "
                        f"got dtype {idx.dtype}")
    _args.check_shape(idx, "indices", dy.shape, "the shape of dy")
    if dy.shape[:2] != (N, C):
        raise ValueError(f"dy must have N, C = {(N, C)} (from input_shape {(N, C, H, W)}), "
                         f"got dy of shape {dy.shape}")
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= H * W:
            raise ValueError(f"indices must lie in [0, H*W) = [0, {H * W}) for input_shape "
                             f"{(N, C, H, W)}, got values in [{lo}, {hi}]")
    planes = np.arange(N * C).reshape(N, C, 1, 1) * (H * W)
    dx = np.zeros(N * C * H * W, dtype=dy.dtype)
    np.add.at(dx, (planes + idx.astype(np.int64)).ravel(), dy.ravel())
    return dx.reshape(N, C, H, W)


# ----------------------------------------------------------------------------------------------
# average pooling
# ----------------------------------------------------------------------------------------------

def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D average pooling; zero padding counts, the divisor is always kh*kw.

    (PyTorch's default ``count_include_pad=True``.)

    Parameters
    ----------
    x : array_like, input images.
    kernel_size : int or (int, int), >= 1.
    stride : int, (int, int) or None (= kernel_size).
    padding : int or (int, int), at most half the kernel; or 'same' / 'valid'.

    Shape
    -----
    x (N, C, H, W) -> y (N, C, Ho, Wo).
    """
    _, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    kernel_hw, stride_hw, pads, out_hw = _args.pool_padding(
        kernel_size, stride, padding, x.shape[2:])
    win = _windows(_pad(x, pads, 0), kernel_hw, stride_hw, (1, 1), out_hw)
    y = win.sum(axis=(4, 5)) / (kernel_hw[0] * kernel_hw[1])
    return np.ascontiguousarray(y, dtype=x.dtype)


def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0):
    """Gradient of :func:`avg_pool2d` with respect to x.

    Every input element receives ``dy / (kh*kw)`` from each window that covers it.

    Parameters
    ----------
    dy : array_like, gradient of the loss with respect to the avg_pool2d output.
    input_shape : 4-tuple of non-negative ints, the shape of the forward input x.
    kernel_size, stride, padding : as given to :func:`avg_pool2d`.

    Shape
    -----
    dy (N, C, Ho, Wo), input_shape (N, C, H, W) -> dx (N, C, H, W).
    """
    _, (dy,) = _args.float_arrays((dy, "dy"))
    N, C, H, W = _args.shape4(input_shape, "input_shape")
    _args.check_ndim(dy, "dy", 4, "(N, C, Ho, Wo)")
    kernel_hw, stride_hw, pads, out_hw = _args.pool_padding(kernel_size, stride, padding, (H, W))
    _args.check_shape(dy, "dy", (N, C) + out_hw, "the avg_pool2d output for input_shape")
    share = dy / (kernel_hw[0] * kernel_hw[1])
    cols = np.broadcast_to(share[..., None, None], share.shape + kernel_hw)
    padded_hw = (H + sum(pads[0]), W + sum(pads[1]))
    dx = _crop(_scatter_windows(cols, padded_hw, stride_hw, (1, 1)), pads)
    return np.ascontiguousarray(dx, dtype=dy.dtype)


def matmul(a, b):
    """Matrix product a @ b (NumPy's), with the dtype and validation rules of the ops.

    Shape:
        a (M, K), b (K, N) -> (M, N).
    """
    dtype, (a, b) = _args.float_arrays((a, "a"), (b, "b"))
    _args.check_ndim(a, "a", 2, "(M, K)")
    _args.check_ndim(b, "b", 2, "(K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a has {a.shape[1]} columns but b has {b.shape[0]} rows "
                         f"(a shape {a.shape}, b shape {b.shape})")
    return a @ b


# ----------------------------------------------------------------------------------------------
# grouped convolution
# ----------------------------------------------------------------------------------------------

def _grouped_geometry(x, w, stride, padding, dilation, groups):
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    _args.check_ndim(w, "w", 4, "(K, C/groups, R, S)")
    groups = _args.conv_groups(groups, x.shape[1], w.shape, x.shape)
    return groups, _args.conv_padding(padding, x.shape[2:], w.shape[2:], stride, dilation)


def _conv2d_grouped(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Grouped 2-D convolution: the definition, one group after another.

    ``y[n, k, i, j] = b[k] + sum_{c', r, s} w[k, c', r, s] * xp[n, g*Cg + c', i*sh + r*dh,
    j*sw + s*dw]`` with g = k // (K / groups) the group of filter k, Cg = C / groups.

    Shape: x (N, C, H, W), w (K, C/groups, R, S), b (K,) -> y (N, K, Ho, Wo).
    """
    _, (x, w, b) = _args.float_arrays((x, "x"), (w, "w"), (b, "b"))
    groups, (stride_hw, dilation_hw, pads, out_hw) = _grouped_geometry(
        x, w, stride, padding, dilation, groups)
    K, cg = w.shape[0], w.shape[1]
    kg = K // groups
    if b is not None:
        _args.check_shape(b, "b", (K,), "one bias per output channel of w")
    win = _windows(_pad(x, pads, 0), w.shape[2:], stride_hw, dilation_hw, out_hw)
    y = np.zeros((x.shape[0], K) + out_hw, dtype=x.dtype)
    for g in range(groups):
        wg = w[g * kg:(g + 1) * kg]
        part = win[:, g * cg:(g + 1) * cg]
        y[:, g * kg:(g + 1) * kg] = np.tensordot(part, wg, axes=([1, 4, 5], [1, 2, 3])
                                                 ).transpose(0, 3, 1, 2)
    if b is not None:
        y += b[None, :, None, None]
    return np.ascontiguousarray(y, dtype=x.dtype)


def _conv2d_grouped_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of :func:`_conv2d_grouped`, group by group as :func:`conv2d_backward`.

    Shape: dy (N, K, Ho, Wo), x (N, C, H, W), w (K, C/groups, R, S)
    -> dx (N, C, H, W), dw (K, C/groups, R, S), db (K,).
    """
    _, (dy, x, w) = _args.float_arrays((dy, "dy"), (x, "x"), (w, "w"))
    groups, (stride_hw, dilation_hw, pads, out_hw) = _grouped_geometry(
        x, w, stride, padding, dilation, groups)
    K, cg = w.shape[0], w.shape[1]
    kg = K // groups
    _args.check_ndim(dy, "dy", 4, "(N, K, Ho, Wo)")
    _args.check_shape(dy, "dy", (x.shape[0], K) + out_hw, "the conv2d output for these x, w")
    xp = _pad(x, pads, 0)
    win = _windows(xp, w.shape[2:], stride_hw, dilation_hw, out_hw)
    dw = np.zeros(w.shape, dtype=x.dtype)
    cols = np.zeros(win.shape, dtype=x.dtype)
    for g in range(groups):
        dyg, wg = dy[:, g * kg:(g + 1) * kg], w[g * kg:(g + 1) * kg]
        dw[g * kg:(g + 1) * kg] = np.tensordot(dyg, win[:, g * cg:(g + 1) * cg],
                                               axes=([0, 2, 3], [0, 2, 3]))
        cols[:, g * cg:(g + 1) * cg] = np.tensordot(dyg, wg, axes=([1], [0])
                                                    ).transpose(0, 3, 1, 2, 4, 5)
    dx = _crop(_scatter_windows(cols, xp.shape[2:], stride_hw, dilation_hw), pads)
    dt = x.dtype
    return (np.ascontiguousarray(dx, dtype=dt), dw, np.ascontiguousarray(dy.sum(axis=(0, 2, 3)), dtype=dt))


# ----------------------------------------------------------------------------------------------
# transposed convolution
# ----------------------------------------------------------------------------------------------

def _transpose_geometry(x, w, stride, padding, output_padding, dilation, groups):
    _args.check_ndim(x, "x", 4, "(N, C_in, H, W)")
    _args.check_ndim(w, "w", 4, "(C_in, K/groups, R, S)")
    groups = _args.conv_transpose_groups(groups, x.shape, w.shape)
    return groups, _args.conv_transpose_padding(padding, output_padding, x.shape[2:],
                                                w.shape[2:], stride, dilation)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """2-D transposed convolution, from its definition: every input pixel scatters its
    kernel-weighted copy into the output.

    ``full[n, g*Kg + k, h*sh + r*dh, v*sw + s*dw] += x[n, g*Cg + c, h, v] * w[g*Cg + c, k, r, s]``
    over the full extent ((H-1)*sh + dh*(R-1) + 1 rows); the output is rows
    [pad_top, pad_top + Ho) of it (zeros where output_padding reaches past it), plus b.

    Shape: x (N, C_in, H, W), w (C_in, K/groups, R, S), b (K,)
    -> y (N, K, Ho, Wo), Ho = (H-1)*sh - pad_top - pad_bottom + dh*(R-1) + output_padding + 1.
    """
    _, (x, w, b) = _args.float_arrays((x, "x"), (w, "w"), (b, "b"))
    groups, (stride_hw, dilation_hw, pads, out_hw) = _transpose_geometry(
        x, w, stride, padding, output_padding, dilation, groups)
    N, C, H, W = x.shape
    cg, kg = C // groups, w.shape[1]
    R, S = w.shape[2:]
    if b is not None:
        _args.check_shape(b, "b", (kg * groups,), "one bias per output channel of w")
    full_hw = tuple((i - 1) * s + d * (k - 1) + 1
                    for i, s, d, k in zip((H, W), stride_hw, dilation_hw, (R, S)))
    cols = np.zeros((N, kg * groups, H, W, R, S), dtype=x.dtype)
    for g in range(groups):
        # cols[n, k, h, v, r, s] = sum_c x[n, c, h, v] * w[c, k, r, s]
        cols[:, g * kg:(g + 1) * kg] = np.tensordot(
            x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg], axes=([1], [0])
        ).transpose(0, 3, 1, 2, 4, 5)
    full = _scatter_windows(cols, full_hw, stride_hw, dilation_hw)
    (top, _), (left, _) = pads
    grown = np.zeros(full.shape[:2] + (max(full_hw[0], top + out_hw[0]),
                                       max(full_hw[1], left + out_hw[1])), dtype=x.dtype)
    grown[:, :, :full_hw[0], :full_hw[1]] = full
    y = grown[:, :, top:top + out_hw[0], left:left + out_hw[1]]
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y, dtype=x.dtype)


def conv_transpose2d_backward(dy, x, w, stride=1, padding=0, output_padding=0, dilation=1,
                              groups=1, compute_dx=True):
    """Gradients of :func:`conv_transpose2d`: each input pixel's gradient gathers dy over the
    window it scattered into. ``compute_dx=False`` skips dx (returned as None).

    Shape: dy (N, K, Ho, Wo), x (N, C_in, H, W), w (C_in, K/groups, R, S)
    -> dx (N, C_in, H, W), dw (C_in, K/groups, R, S), db (K,).
    """
    _, (dy, x, w) = _args.float_arrays((dy, "dy"), (x, "x"), (w, "w"))
    groups, (stride_hw, dilation_hw, pads, out_hw) = _transpose_geometry(
        x, w, stride, padding, output_padding, dilation, groups)
    N, C, H, W = x.shape
    cg, kg = C // groups, w.shape[1]
    R, S = w.shape[2:]
    _args.check_ndim(dy, "dy", 4, "(N, K, Ho, Wo)")
    _args.check_shape(dy, "dy", (N, kg * groups) + out_hw, "the conv_transpose2d output")
    full_hw = tuple((i - 1) * s + d * (k - 1) + 1
                    for i, s, d, k in zip((H, W), stride_hw, dilation_hw, (R, S)))
    (top, _), (left, _) = pads
    # dy placed back into the full extent (the cropped rows/columns get zero gradient)
    grown = np.zeros(dy.shape[:2] + (max(full_hw[0], top + out_hw[0]),
                                     max(full_hw[1], left + out_hw[1])), dtype=dy.dtype)
    grown[:, :, top:top + out_hw[0], left:left + out_hw[1]] = dy
    win = _windows(grown[:, :, :full_hw[0], :full_hw[1]], (R, S), stride_hw, dilation_hw, (H, W))
    dx = np.zeros(x.shape, dtype=x.dtype) if compute_dx else None
    dw = np.zeros(w.shape, dtype=x.dtype)
    for g in range(groups):
        wing = win[:, g * kg:(g + 1) * kg]                                # (N, Kg, H, W, R, S)
        if compute_dx:
            dx[:, g * cg:(g + 1) * cg] = np.tensordot(wing, w[g * cg:(g + 1) * cg],
                                                      axes=([1, 4, 5], [1, 2, 3])
                                                      ).transpose(0, 3, 1, 2)
        dw[g * cg:(g + 1) * cg] = np.tensordot(x[:, g * cg:(g + 1) * cg], wing,
                                               axes=([0, 2, 3], [0, 2, 3]))
    return dx, dw, np.ascontiguousarray(dy.sum(axis=(0, 2, 3)), dtype=x.dtype)


# ----------------------------------------------------------------------------------------------
# upsampling, zero padding, global max pooling
# ----------------------------------------------------------------------------------------------

def _bilinear_taps(n_in, scale):
    """Per output position along one axis: the two input positions read and their weights
    (half-pixel centres, clamped at the borders)."""
    out = np.arange(n_in * scale)
    src = np.maximum((out + 0.5) / scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    return lo, hi, frac


def upsample2d(x, size, interpolation="nearest"):
    """Upsampling by integer factors: nearest ``y[..., i, j] = x[..., i // sh, j // sw]``;
    bilinear: a weighted sum of the 4 nearest input pixels (half-pixel centres).

    Shape: x (N, C, H, W) -> y (N, C, H*sh, W*sw).
    """
    _, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    sh, sw = _args.positive_pair(size, "size")
    mode = _args.interpolation_mode(interpolation)
    H, W = x.shape[2:]
    if mode == "nearest":
        rows, cols = np.arange(H * sh) // sh, np.arange(W * sw) // sw
        return np.ascontiguousarray(x[:, :, rows][:, :, :, cols])
    (r0, r1, a), (c0, c1, b) = _bilinear_taps(H, sh), _bilinear_taps(W, sw)
    a, b = a[:, None], b[None, :]
    y = ((1 - a) * (1 - b) * x[:, :, r0][:, :, :, c0] + (1 - a) * b * x[:, :, r0][:, :, :, c1]
         + a * (1 - b) * x[:, :, r1][:, :, :, c0] + a * b * x[:, :, r1][:, :, :, c1])
    return np.ascontiguousarray(y, dtype=x.dtype)


def upsample2d_backward(dy, size, interpolation="nearest"):
    """Gradient of :func:`upsample2d`: every output pixel's gradient scattered (added) to the
    input pixels it read, times their weights.

    Shape: dy (N, C, H*sh, W*sw) -> dx (N, C, H, W).
    """
    _, (dy,) = _args.float_arrays((dy, "dy"))
    _args.check_ndim(dy, "dy", 4, "(N, C, H*sh, W*sw)")
    sh, sw = _args.positive_pair(size, "size")
    mode = _args.interpolation_mode(interpolation)
    N, C, Ho, Wo = dy.shape
    if Ho % sh or Wo % sw:
        raise ValueError(f"dy must have a height and width that are multiples of size "
                         f"{(sh, sw)}, got shape {dy.shape}")
    H, W = Ho // sh, Wo // sw
    dx = np.zeros((N, C, H, W), dtype=dy.dtype)
    if mode == "nearest":
        rows, cols = np.arange(Ho) // sh, np.arange(Wo) // sw
        np.add.at(dx, (slice(None), slice(None), rows[:, None], cols[None, :]), dy)
        return dx
    (r0, r1, a), (c0, c1, b) = _bilinear_taps(H, sh), _bilinear_taps(W, sw)
    a, b = a[:, None], b[None, :]
    for rows, cols, weight in ((r0, c0, (1 - a) * (1 - b)), (r0, c1, (1 - a) * b),
                               (r1, c0, a * (1 - b)), (r1, c1, a * b)):
        np.add.at(dx, (slice(None), slice(None), rows[:, None], cols[None, :]), dy * weight)
    return dx


def zero_pad2d(x, padding):
    """Zero padding of the spatial axes; ``padding`` an int, (ph, pw) or
    ((top, bottom), (left, right)).

    Shape: x (N, C, H, W) -> y (N, C, top + H + bottom, left + W + right).
    """
    _, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    return _pad(x, _args.pad4(padding, "padding"), 0)


def zero_pad2d_backward(dy, padding):
    """Gradient of :func:`zero_pad2d`: the padding cropped off dy.

    Shape: dy (N, C, Ho, Wo) -> dx (N, C, Ho - top - bottom, Wo - left - right).
    """
    _, (dy,) = _args.float_arrays((dy, "dy"))
    _args.check_ndim(dy, "dy", 4, "(N, C, Ho, Wo)")
    pads = _args.pad4(padding, "padding")
    if sum(pads[0]) > dy.shape[2] or sum(pads[1]) > dy.shape[3]:
        raise ValueError(f"padding {padding!r} is larger than dy of shape {dy.shape}")
    return np.ascontiguousarray(_crop(dy, pads))


def global_max_pool2d(x):
    """Maximum of every (n, c) plane and its flat index h*W + w (first maximum on ties; a NaN
    is chosen, the last one when there are several, as :func:`max_pool2d`).

    Shape: x (N, C, H, W) -> y, indices (N, C).
    """
    _, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    N, C, H, W = x.shape
    if min(H, W) < 1:
        raise ValueError(f"x must have images of at least 1x1 pixels, got shape {x.shape}")
    flat = x.reshape(N, C, H * W)
    is_nan = np.isnan(flat)
    first_max = np.argmax(flat == flat.max(axis=2, keepdims=True), axis=2)
    last_nan = H * W - 1 - np.argmax(is_nan[..., ::-1], axis=2)
    idx = np.where(is_nan.any(axis=2), last_nan, first_max).astype(np.int64)
    return np.take_along_axis(flat, idx[..., None], axis=2)[..., 0], idx


def global_max_pool2d_backward(dy, indices, input_shape):
    """Gradient of :func:`global_max_pool2d`: dy[n, c] placed at indices[n, c] of plane (n, c).

    Shape: dy, indices (N, C); input_shape (N, C, H, W) -> dx (N, C, H, W).
    """
    _, (dy,) = _args.float_arrays((dy, "dy"))
    _args.check_ndim(dy, "dy", 2, "(N, C)")
    idx = np.asarray(indices)
    _args.check_ndim(idx, "indices", 2, "(N, C)")
    _args.check_shape(idx, "indices", dy.shape, "the shape of dy")
    return max_pool2d_backward(dy[:, :, None, None], idx[:, :, None, None], input_shape)


# ----------------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------------

def relu(x):
    """max(x, 0) element-wise; NaN propagates. Shape: any -> the same."""
    _, (x,) = _args.float_arrays((x, "x"))
    return np.maximum(x, 0).astype(x.dtype)


def relu_backward(dy, y):
    """dy where the relu output y > 0, else 0. Shape: dy, y (same shape) -> dx."""
    _, (dy, y) = _args.float_arrays((dy, "dy"), (y, "y"))
    _args.check_shape(y, "y", dy.shape, "the shape of dy")
    return np.where(y > 0, dy, 0).astype(dy.dtype)
