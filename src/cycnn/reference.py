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
    "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward",
    "matmul",
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

def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as in every deep-learning framework).

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


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, compute_dx=True):
    """Gradients of :func:`conv2d` with respect to x, w and the bias.

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
