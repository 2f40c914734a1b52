"""Functional kernels: conv2d and pooling, forward and backward, on NumPy arrays.

Layout NCHW; convolution weights (K, C, R, S), as in PyTorch. float32 and float64 (output dtype =
input dtype; integer input is converted to float; mixed float32/float64 gives float64).
``stride``, ``dilation`` and ``kernel_size`` take an int or an (h, w) pair; ``padding`` an int, a
pair, ``'valid'`` or ``'same'`` (TensorFlow's: output ceil(in / stride), the odd extra pixel of
padding at the bottom/right). Output size per axis::

    out = floor((in + pad_begin + pad_end - dilation * (k - 1) - 1) / stride) + 1

This module validates and normalises arguments, allocates outputs and calls the compiled kernels
(``cycnn._kernels``) on the threads ``cycnn._threads.threads_for`` gives them (at most
:func:`cycnn.get_num_threads`). Any array-like works: non-contiguous, Fortran-ordered or
broadcast arrays are copied once into C order, read-only arrays are read in place. :mod:`cycnn.reference` holds the same functions in plain NumPy.
"""
import numpy as np

from . import _args
from ._kernels import conv as _conv
from ._kernels import pool as _pool
from ._threads import threads_for

__all__ = [
    "conv2d", "conv2d_backward",
    "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward",
    "matmul",
]

_INT_MAX = _args._INT_MAX


def _conv_setup(x, w, stride, padding, dilation):
    """Validated geometry for a convolution of x (N, C, H, W) with w (K, C, R, S)."""
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    _args.check_ndim(w, "w", 4, "(K, C, R, S)")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w has {w.shape[1]} input channels but x has {x.shape[1]} "
            f"(x shape {x.shape}, w shape {w.shape})")
    stride_hw, dilation_hw, pads, out_hw = _args.conv_padding(
        padding, x.shape[2:], w.shape[2:], stride, dilation)
    crs = w.shape[1] * w.shape[2] * w.shape[3]
    if crs * out_hw[0] * out_hw[1] > _INT_MAX or max(x.shape + w.shape) > _INT_MAX:
        raise ValueError(f"conv2d on x {x.shape} with w {w.shape} is too large for one image "
                         f"(C*R*S*Ho*Wo must stay below 2**31; output {out_hw[0]}x{out_hw[1]} "
                         f"with stride {stride_hw}, padding {pads}, dilation {dilation_hw})")
    geometry = (stride_hw[0], stride_hw[1], pads[0][0], pads[1][0], dilation_hw[0], dilation_hw[1])
    work = x.shape[0] * w.shape[0] * crs * out_hw[0] * out_hw[1]
    return geometry, out_hw, work


def _check_conv_alloc(x, w, out_hw, n_threads, extra_bytes, what):
    """Output/gradient bytes (extra_bytes) plus the im2col scratch, C*R*S*Ho*Wo per thread."""
    crs, n = w.shape[1] * w.shape[2] * w.shape[3], x.shape[0]
    scratch = max(1, min(n_threads, n)) * crs * out_hw[0] * out_hw[1] * x.itemsize
    _args.check_alloc(extra_bytes + scratch, f"{what} of x {x.shape} with w {w.shape} "
                                             f"(output {out_hw[0]}x{out_hw[1]})")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as in PyTorch and TensorFlow).

    Shape:
        x (N, C, H, W), w (K, C, R, S), b (K,) or None -> y (N, K, Ho, Wo) with
        Ho = floor((H + pad_top + pad_bottom - dilation*(R-1) - 1) / stride) + 1 (Wo alike).
    """
    dtype, (x, w, b) = _args.float_arrays((x, "x"), (w, "w"), (b, "b"))
    geometry, (ho, wo), work = _conv_setup(x, w, stride, padding, dilation)
    n, k = x.shape[0], w.shape[0]
    if b is not None and b.shape != (k,):
        raise ValueError(f"b must have shape ({k},) to match the {k} filters of w, "
                         f"got shape {b.shape}")
    # images in parallel, or (fewer images than threads) bands of output rows of each image
    n_threads = threads_for(work, max(n, ho))
    _check_conv_alloc(x, w, (ho, wo), n_threads, n * k * ho * wo * x.itemsize, "conv2d")
    y = np.empty((n, k, ho, wo), dtype=dtype)
    bias = b if b is not None else np.zeros(0, dtype=dtype)
    _conv.conv2d_forward(x, w, bias, b is not None, y, *geometry, n_threads)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, compute_dx=True):
    """Gradients of :func:`conv2d` with respect to x, w and b.

    ``compute_dx=False`` skips dx (returned as None), e.g. for a network's first layer, whose
    input gradient nothing needs.

    Shape:
        dy (N, K, Ho, Wo), x (N, C, H, W), w (K, C, R, S) ->
        dx (N, C, H, W), dw (K, C, R, S), db (K,) (dy summed over N, Ho, Wo).
    """
    dtype, (dy, x, w) = _args.float_arrays((dy, "dy"), (x, "x"), (w, "w"))
    geometry, (ho, wo), work = _conv_setup(x, w, stride, padding, dilation)
    _args.check_ndim(dy, "dy", 4, "(N, K, Ho, Wo)")
    _args.check_shape(dy, "dy", (x.shape[0], w.shape[0], ho, wo), "conv2d's output for x and w")
    # (the thread count does not depend on compute_dx: dw is then the same bits either way)
    n_threads = threads_for(2 * work, x.shape[0])
    _check_conv_alloc(x, w, (ho, wo), n_threads, (x.size + (n_threads + 1) * w.size) * x.itemsize,
                      "conv2d_backward")
    dx = np.empty(x.shape, dtype=dtype) if compute_dx else None
    dw = np.empty(w.shape, dtype=dtype)
    db = np.empty(w.shape[0], dtype=dtype)
    _conv.conv2d_backward(dy, x, w, dx, dw, db, *geometry, n_threads)
    return dx, dw, db


def _check_dx_alloc(input_shape, dtype, what):
    """input_shape comes from the caller, not from an array: bound dx before allocating it."""
    if max(input_shape) > _INT_MAX:
        raise ValueError(f"input_shape must hold values < 2**31, got {input_shape}")
    _args.check_alloc(int(np.prod(input_shape, dtype=object)) * dtype.itemsize,
                      f"{what} for input_shape {input_shape}")


def _pool_setup(in_hw, kernel_size, stride, padding):
    kernel_hw, stride_hw, pads, out_hw = _args.pool_padding(kernel_size, stride, padding, in_hw)
    geometry = (kernel_hw[0], kernel_hw[1], stride_hw[0], stride_hw[1], pads[0][0], pads[1][0])
    return geometry, out_hw


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D max pooling; padding counts as -inf. Returns (y, indices).

    ``indices`` (int64) holds, per output element, the flat index h*W + w of the chosen input
    element within its (n, c) plane (PyTorch's ``return_indices``); ties go to the first maximum
    in row-major window order; a NaN in the window is chosen (NaN propagates).

    Shape:
        x (N, C, H, W) -> y, indices (N, C, Ho, Wo), Ho = floor((H + pads - kh) / sh) + 1.
        stride None means the kernel size; padding is at most half the kernel.
    """
    dtype, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    geometry, (ho, wo) = _pool_setup(x.shape[2:], kernel_size, stride, padding)
    _args.check_alloc(x.shape[0] * x.shape[1] * ho * wo * (x.itemsize + 8),
                      f"max_pool2d of x {x.shape} (output {ho}x{wo})")
    y = np.empty(x.shape[:2] + (ho, wo), dtype=dtype)
    indices = np.empty(y.shape, dtype=np.int64)
    planes = x.shape[0] * x.shape[1]
    _pool.max_pool2d_forward(x, y, indices, *geometry, threads_for(y.size * 4, planes))
    return y, indices


def max_pool2d_backward(dy, indices, input_shape):
    """Gradient of :func:`max_pool2d`: dy scattered (added) to the positions in ``indices``.

    Shape:
        dy, indices (N, C, Ho, Wo); input_shape (N, C, H, W) -> dx (N, C, H, W).
    """
    dtype, (dy,) = _args.float_arrays((dy, "dy"))
    input_shape = _args.shape4(input_shape, "input_shape")
    _args.check_ndim(dy, "dy", 4, "(N, C, Ho, Wo)")
    idx = np.asarray(indices)
    if idx.dtype == np.bool_ or idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array (from max_pool2d), got dtype {idx.dtype}")
    _args.check_shape(idx, "indices", dy.shape, "the shape of dy")
    if dy.shape[:2] != input_shape[:2]:
        raise ValueError(f"dy has batch and channels {dy.shape[:2]} but input_shape has "
                         f"{input_shape[:2]} (dy shape {dy.shape}, input_shape {input_shape})")
    plane = input_shape[2] * input_shape[3]
    _check_dx_alloc(input_shape, dtype, "max_pool2d_backward")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    dx = np.empty(input_shape, dtype=dtype)
    bad = _pool.max_pool2d_backward(dy, idx, dx, threads_for(dx.size, dy.shape[0] * dy.shape[1]))
    if bad:
        raise ValueError(f"indices must lie in [0, {plane}) (H*W of input_shape {input_shape}); "
                         f"got values from {idx.min()} to {idx.max()}")
    return dx


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D average pooling; zero padding is counted in the average (PyTorch's default).

    Shape:
        x (N, C, H, W) -> y (N, C, Ho, Wo), Ho = floor((H + pads - kh) / sh) + 1.
    """
    dtype, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    geometry, (ho, wo) = _pool_setup(x.shape[2:], kernel_size, stride, padding)
    _args.check_alloc(x.shape[0] * x.shape[1] * ho * wo * x.itemsize,
                      f"avg_pool2d of x {x.shape} (output {ho}x{wo})")
    y = np.empty(x.shape[:2] + (ho, wo), dtype=dtype)
    work, planes = y.size * geometry[0] * geometry[1], x.shape[0] * x.shape[1]
    _pool.avg_pool2d_forward(x, y, *geometry, threads_for(work, planes))
    return y


def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0):
    """Gradient of :func:`avg_pool2d`.

    Shape:
        dy (N, C, Ho, Wo); input_shape (N, C, H, W) -> dx (N, C, H, W).
    """
    dtype, (dy,) = _args.float_arrays((dy, "dy"))
    input_shape = _args.shape4(input_shape, "input_shape")
    _args.check_ndim(dy, "dy", 4, "(N, C, Ho, Wo)")
    geometry, (ho, wo) = _pool_setup(input_shape[2:], kernel_size, stride, padding)
    _args.check_shape(dy, "dy", input_shape[:2] + (ho, wo), "avg_pool2d's output for input_shape")
    _check_dx_alloc(input_shape, dtype, "avg_pool2d_backward")
    dx = np.empty(input_shape, dtype=dtype)
    work, planes = dx.size * geometry[0], dx.shape[0] * dx.shape[1]
    _pool.avg_pool2d_backward(dy, dx, *geometry, threads_for(work, planes))
    return dx


def matmul(a, b):
    """Matrix product a @ b on cycnn's GEMM, on up to :func:`cycnn.get_num_threads` threads.

    Transposed, strided and broadcast operands are read in place (no copy); the Dense layer
    uses it for ``x @ kernel.T`` and its gradients.

    Shape:
        a (M, K), b (K, N) -> (M, N).
    """
    a, b = _args.numeric_array(a, "a"), _args.numeric_array(b, "b")
    dtype = _args.result_dtype(a, b)
    a, b = _args.strided_float_array(a, dtype), _args.strided_float_array(b, dtype)
    _args.check_ndim(a, "a", 2, "(M, K)")
    _args.check_ndim(b, "b", 2, "(K, N)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a has {a.shape[1]} columns but b has {b.shape[0]} rows "
                         f"(a shape {a.shape}, b shape {b.shape})")
    if max(a.shape + b.shape) > _INT_MAX:
        raise ValueError(f"matmul of {a.shape} by {b.shape} is too large (dimensions < 2**31)")
    c = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    # one column block per thread, at least 64 columns wide
    n_threads = threads_for(a.shape[0] * a.shape[1] * b.shape[1], (b.shape[1] + 63) // 64)
    _conv.gemm(a, b, c, 1.0, 0.0, n_threads)
    return c
