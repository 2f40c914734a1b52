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
from ._kernels import depthwise as _depthwise
from ._kernels import eltwise as _eltwise
from ._kernels import pool as _pool
from ._threads import threads_for

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

_INT_MAX = _args._INT_MAX


def _conv_setup(x, w, stride, padding, dilation, groups=1):
    """Validated geometry for a convolution of x (N, C, H, W) with w (K, C/groups, R, S)."""
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    _args.check_ndim(w, "w", 4, "(K, C, R, S)")
    _args.conv_groups(groups, x.shape[1], w.shape, x.shape)
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


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in PyTorch and TensorFlow).

    ``groups`` splits the C input channels and the K filters into that many groups, group g's
    filters seeing only group g's channels (PyTorch's meaning): w is (K, C/groups, R, S);
    ``groups=C`` is the depthwise convolution (K = C * depth multiplier), which runs on its own
    direct kernel (cycnn._kernels.depthwise); other groups run the GEMM kernel once per group.

    Shape:
        x (N, C, H, W), w (K, C/groups, R, S), b (K,) or None -> y (N, K, Ho, Wo) with
        Ho = floor((H + pad_top + pad_bottom - dilation*(R-1) - 1) / stride) + 1 (Wo alike).
    """
    dtype, (x, w, b) = _args.float_arrays((x, "x"), (w, "w"), (b, "b"))
    geometry, (ho, wo), work = _conv_setup(x, w, stride, padding, dilation, groups)
    n, k = x.shape[0], w.shape[0]
    if b is not None and b.shape != (k,):
        raise ValueError(f"b must have shape ({k},) to match the {k} filters of w, "
                         f"got shape {b.shape}")
    # images in parallel, or (fewer images than threads) bands of output rows of each image
    n_threads = threads_for(work // groups, max(n, ho))
    out_bytes = n * k * ho * wo * x.itemsize
    bias = b if b is not None else np.zeros(0, dtype=dtype)
    if groups > 1 and w.shape[1] == 1:
        threads = threads_for(work, n * k)
        _args.check_alloc(out_bytes + threads * _dw_plane(x, w, ho, wo, geometry) * x.itemsize,
                          f"conv2d of x {x.shape} with w {w.shape}")
        y = np.empty((n, k, ho, wo), dtype=dtype)
        _depthwise.forward(x, w, bias, b is not None, y, *geometry, threads)
        return y
    _check_conv_alloc(x, w, (ho, wo), n_threads, out_bytes * (1 if groups == 1 else 2), "conv2d")
    if groups == 1:
        y = np.empty((n, k, ho, wo), dtype=dtype)
        _conv.conv2d_forward(x, w, bias, b is not None, y, *geometry, n_threads)
        return y
    xg, kg = _group_split(x, groups), k // groups
    yg = np.empty((groups, n, kg, ho, wo), dtype=dtype)
    for g in range(groups):
        part = slice(g * kg, (g + 1) * kg)
        _conv.conv2d_forward(xg[g], w[part], bias[part] if b is not None else bias,
                             b is not None, yg[g], *geometry, n_threads)
    return _group_merge(yg)


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, compute_dx=True, groups=1):
    """Gradients of :func:`conv2d` with respect to x, w and b.

    ``compute_dx=False`` skips dx (returned as None), e.g. for a network's first layer, whose
    input gradient nothing needs.

    Shape:
        dy (N, K, Ho, Wo), x (N, C, H, W), w (K, C/groups, R, S) ->
        dx (N, C, H, W), dw (K, C/groups, R, S), db (K,) (dy summed over N, Ho, Wo).
    """
    dtype, (dy, x, w) = _args.float_arrays((dy, "dy"), (x, "x"), (w, "w"))
    geometry, (ho, wo), work = _conv_setup(x, w, stride, padding, dilation, groups)
    _args.check_ndim(dy, "dy", 4, "(N, K, Ho, Wo)")
    _args.check_shape(dy, "dy", (x.shape[0], w.shape[0], ho, wo), "conv2d's output for x and w")
    # (the thread count does not depend on compute_dx: dw is then the same bits either way)
    n_threads = threads_for(2 * work // groups, x.shape[0])
    grad_bytes = (x.size + (n_threads + 1) * w.size) * x.itemsize
    dw = np.empty(w.shape, dtype=dtype)
    db = np.empty(w.shape[0], dtype=dtype)
    if groups > 1 and w.shape[1] == 1:
        n_planes = min(x.shape[0] * x.shape[1], w.shape[0])  # dx per plane, dw per filter
        _args.check_alloc(grad_bytes + n_threads * _dw_plane(x, w, ho, wo, geometry)
                          * x.itemsize, f"conv2d_backward of x {x.shape} with w {w.shape}")
        dx = np.empty(x.shape, dtype=dtype)   # (the depthwise kernel always computes it)
        _depthwise.backward(dy, x, w, dx, dw, db, *geometry,
                            threads_for(2 * work, n_planes))
        return (dx if compute_dx else None), dw, db
    if groups == 1:
        _check_conv_alloc(x, w, (ho, wo), n_threads, grad_bytes, "conv2d_backward")
        dx = np.empty(x.shape, dtype=dtype) if compute_dx else None
        _conv.conv2d_backward(dy, x, w, dx, dw, db, *geometry, n_threads)
        return dx, dw, db
    _check_conv_alloc(x, w, (ho, wo), n_threads, grad_bytes + (x.size + dy.size) * x.itemsize,
                      "conv2d_backward")
    xg, dyg, kg = _group_split(x, groups), _group_split(dy, groups), w.shape[0] // groups
    dxg = np.empty(xg.shape, dtype=dtype) if compute_dx else None
    for g in range(groups):
        part = slice(g * kg, (g + 1) * kg)
        _conv.conv2d_backward(dyg[g], xg[g], w[part], None if dxg is None else dxg[g], dw[part],
                              db[part], *geometry, n_threads)
    return (None if dxg is None else _group_merge(dxg)), dw, db


def _dw_plane(x, w, ho, wo, geometry):
    """Floats of the depthwise AVX2 kernels' per-thread workspace at most: a padded plane of
    the larger of x's and y's planes (the forward pads x, dx pads dy)."""
    sh, sw, _, _, dh, _ = geometry
    r, s = w.shape[2:]
    rows = max(x.shape[2], (ho - 1) * sh + (r - 1) * dh + 1) + r
    cols = (max(x.shape[3], wo) + 15) // 16 * 16 * sw + s
    return rows * cols


def _group_split(a, groups):
    """(N, G*Cg, H, W) -> C-contiguous (G, N, Cg, H, W): each group's channels in one block."""
    n, c = a.shape[:2]
    return np.ascontiguousarray(
        a.reshape((n, groups, c // groups) + a.shape[2:]).transpose(1, 0, 2, 3, 4))


def _group_merge(parts):
    """Inverse of :func:`_group_split`: (G, N, Cg, H, W) -> (N, G*Cg, H, W)."""
    g, n, cg = parts.shape[:3]
    return np.ascontiguousarray(parts.transpose(1, 0, 2, 3, 4)).reshape((n, g * cg)
                                                                        + parts.shape[3:])


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
    uses it for ``x @ kernel.T`` and its gradients. ``x @ kernel.T`` on a float32 batch of at
    most 128 rows runs on the broadcast GEMM, which reads the weight matrix where it lies instead
    of packing it (see :func:`_matmul_reads_b_in_place`).

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
    # one column block per thread, at least 64 columns wide
    n_threads = threads_for(a.shape[0] * a.shape[1] * b.shape[1], (b.shape[1] + 63) // 64)
    if _matmul_reads_b_in_place(a, b):
        ct = np.empty((b.shape[1], a.shape[0]), dtype=dtype)
        _conv.gemm_bcast(a if a.strides[1] == a.itemsize else np.ascontiguousarray(a), b, ct,
                         n_threads)
        return np.ascontiguousarray(ct.T)
    c = np.empty((a.shape[0], b.shape[1]), dtype=dtype)
    _conv.gemm(a, b, c, 1.0, 0.0, n_threads)
    return c


_BCAST_MAX_M, _BCAST_MIN_K, _BCAST_K_PER_ROW = 128, 384, 8


def _matmul_reads_b_in_place(a, b):
    """Whether a @ b runs on the broadcast GEMM (csrc/gemm/sgemm_bcast.c: (a @ b)^T = b^T a^T
    with b read in place, a packed) instead of the packed GEMM. Chosen where it measured faster
    (1 thread, Zen 3, y = x @ kernel.T of Dense; medians, alternating): float32, b
    column-contiguous (a transposed weight matrix, which the packed GEMM would transpose into its
    panels on every call), a batch of M <= 128 rows and a depth K >= max(384, 8 M): 1.04-1.4x at
    batch 1..64 (reference 3136 -> 1000 at batch 64: 1.15x; 1000 -> 10: 2.6x), 1.09x at batch
    128 with K = 3136, but 0.96-1.01x at K = 256 (batch 64) and 0.97x at K = 512 (batch 128).
    With b row-contiguous (dx = dy @ kernel) the packed GEMM already reads b in place and the
    broadcast one, whose 6 values per step then lie in one row of b, measured 0.75-0.98x: not
    used."""
    m, k = a.shape
    return (a.dtype == np.float32 and m <= _BCAST_MAX_M and k >= max(_BCAST_MIN_K,
            _BCAST_K_PER_ROW * m) and b.shape[1] > 1 and b.strides[0] == b.itemsize)


# ----------------------------------------------------------------------------------------------
# transposed convolution
# ----------------------------------------------------------------------------------------------

def _conv_transpose_setup(x, w, stride, padding, output_padding, dilation, groups):
    """Validated geometry of a transposed convolution of x (N, C_in, H, W) with
    w (C_in, K/groups, R, S): (geometry of the adjoint convolution, out_hw, work)."""
    _args.check_ndim(x, "x", 4, "(N, C_in, H, W)")
    _args.check_ndim(w, "w", 4, "(C_in, K/groups, R, S)")
    groups = _args.conv_transpose_groups(groups, x.shape, w.shape)
    stride_hw, dilation_hw, pads, out_hw = _args.conv_transpose_padding(
        padding, output_padding, x.shape[2:], w.shape[2:], stride, dilation)
    rs = w.shape[2] * w.shape[3]
    if w.shape[1] * rs * x.shape[2] * x.shape[3] > _INT_MAX or max(x.shape + w.shape) > _INT_MAX:
        raise ValueError(f"conv_transpose2d of x {x.shape} with w {w.shape} is too large for "
                         f"one image (K/groups*R*S*H*W must stay below 2**31)")
    geometry = (stride_hw[0], stride_hw[1], pads[0][0], pads[1][0], dilation_hw[0], dilation_hw[1])
    work = x.shape[0] * x.shape[1] * w.shape[1] * rs * x.shape[2] * x.shape[3]
    return geometry, out_hw, work, groups


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """2-D transposed convolution (PyTorch's ``conv_transpose2d``, TensorFlow's
    ``conv2d_transpose``): the input gradient of :func:`conv2d` with the same w, stride,
    padding and dilation, run on the convolution backward kernel (one GEMM and a col2im per
    image, no weight gradient).

    ``padding`` is an int or a pair (rows/columns cropped from both sides of the full output),
    ``'valid'`` (0) or ``'same'`` (output = input * stride, as TensorFlow); ``output_padding``
    (smaller than the stride or the dilation) adds rows/columns at the bottom/right.

    Shape:
        x (N, C_in, H, W), w (C_in, K/groups, R, S), b (K,) or None -> y (N, K, Ho, Wo) with
        Ho = (H - 1) * stride - pad_top - pad_bottom + dilation * (R - 1) + output_padding + 1
        (Wo alike; 'same': Ho = H * stride).
    """
    dtype, (x, w, b) = _args.float_arrays((x, "x"), (w, "w"), (b, "b"))
    geometry, (ho, wo), work, groups = _conv_transpose_setup(x, w, stride, padding,
                                                             output_padding, dilation, groups)
    n, cg, kg = x.shape[0], x.shape[1] // groups, w.shape[1]
    k = kg * groups
    if b is not None and b.shape != (k,):
        raise ValueError(f"b must have shape ({k},) to match the {k} output channels of w, "
                         f"got shape {b.shape}")
    threads = threads_for(work // groups, x.shape[0])
    _check_conv_alloc(x, w, x.shape[2:], threads, n * k * ho * wo * x.itemsize * 2,
                      "conv_transpose2d")
    xg = x[None] if groups == 1 else _group_split(x, groups)
    yg = np.empty((groups, n, kg, ho, wo), dtype=dtype)
    for g in range(groups):
        wg = w[g * cg:(g + 1) * cg]
        # y is the dx of conv2d(y, wg) for dy = x: only the dx half of the backward kernel
        _conv.conv2d_backward(xg[g], yg[g], wg, yg[g], np.empty((1, 1, 1, 1), dtype),
                              np.empty(1, dtype), *geometry, threads, need_dw=False)
    y = yg[0] if groups == 1 else _group_merge(yg)
    if b is not None:
        y += b[:, None, None]
    return y


def conv_transpose2d_backward(dy, x, w, stride=1, padding=0, output_padding=0, dilation=1,
                              groups=1, compute_dx=True):
    """Gradients of :func:`conv_transpose2d` with respect to x, w and b: dx is a convolution of
    dy with w (the forward conv2d kernel), dw the weight-gradient half of the conv2d backward
    kernel with the roles of x and dy swapped, db the sum of dy over N, Ho, Wo.
    ``compute_dx=False`` skips dx (returned as None), as for :func:`conv2d_backward`.

    Shape:
        dy (N, K, Ho, Wo), x (N, C_in, H, W), w (C_in, K/groups, R, S) ->
        dx (N, C_in, H, W), dw (C_in, K/groups, R, S), db (K,).
    """
    dtype, (dy, x, w) = _args.float_arrays((dy, "dy"), (x, "x"), (w, "w"))
    geometry, (ho, wo), work, groups = _conv_transpose_setup(x, w, stride, padding,
                                                             output_padding, dilation, groups)
    _args.check_ndim(dy, "dy", 4, "(N, K, Ho, Wo)")
    n, cg, kg = x.shape[0], x.shape[1] // groups, w.shape[1]
    _args.check_shape(dy, "dy", (n, kg * groups, ho, wo), "conv_transpose2d's output for x and w")
    threads = threads_for(work // groups, x.shape[0])
    _check_conv_alloc(x, w, x.shape[2:], threads,
                      (2 * x.size + dy.size + (threads + 1) * w.size) * x.itemsize,
                      "conv_transpose2d_backward")
    xg = x[None] if groups == 1 else _group_split(x, groups)
    dyg = dy[None] if groups == 1 else _group_split(dy, groups)
    dxg = np.empty(xg.shape, dtype=dtype) if compute_dx else None
    dw = np.empty(w.shape, dtype=dtype)
    for g in range(groups):
        part = slice(g * cg, (g + 1) * cg)
        # x = conv2d(dy, w) is the adjoint's forward; dw = conv2d's dw with x as its dy
        if compute_dx:
            _conv.conv2d_forward(dyg[g], w[part], np.zeros(0, dtype), False, dxg[g], *geometry,
                                 threads)
        _conv.conv2d_backward(xg[g], dyg[g], w[part], None, dw[part], np.empty(cg, dtype),
                              *geometry, threads)
    dx = None if not compute_dx else dxg[0] if groups == 1 else _group_merge(dxg)
    return dx, dw, dy.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------------------------
# upsampling, zero padding, global max pooling
# ----------------------------------------------------------------------------------------------

def _bilinear_matrix(n_in, scale, dtype):
    """(n_in * scale, n_in) interpolation weights along one axis: output i samples input
    coordinate (i + 0.5) / scale - 0.5 (half-pixel centres, clamped at 0; PyTorch's
    align_corners=False and TensorFlow's resize)."""
    n_out = n_in * scale
    src = np.maximum((np.arange(n_out) + 0.5) / scale - 0.5, 0.0)
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in), dtype=dtype)
    np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def _separable(x, mh, mw):
    """mh @ x[n, c] @ mw.T for every plane, on cycnn's GEMM: (N, C, H, W) -> (N, C, Ho, Wo)."""
    n, c, h, w = x.shape
    t = matmul(x.reshape(n * c * h, w), mw.T).reshape(n * c, h, -1)        # (NC, H, Wo)
    t = np.ascontiguousarray(t.transpose(1, 0, 2)).reshape(h, -1)           # (H, NC*Wo)
    out = matmul(mh, t).reshape(mh.shape[0], n, c, -1)                      # (Ho, N, C, Wo)
    return np.ascontiguousarray(out.transpose(1, 2, 0, 3))


def upsample2d(x, size, interpolation="nearest"):
    """Upsample the two spatial axes by the integer factors ``size`` (int or (sh, sw)).

    ``'nearest'`` repeats every pixel sh x sw times; ``'bilinear'`` interpolates with
    half-pixel centres (PyTorch ``align_corners=False``, Keras ``UpSampling2D``), the border
    pixels clamped.

    Shape:
        x (N, C, H, W) -> y (N, C, H * sh, W * sw).
    """
    dtype, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    sh, sw = _args.positive_pair(size, "size")
    mode = _args.interpolation_mode(interpolation)
    n, c, h, w = x.shape
    if max(h * sh, w * sw) > _INT_MAX:
        raise ValueError(f"upsample2d output {h * sh}x{w * sw} is too large (< 2**31)")
    _args.check_alloc(n * c * h * sh * w * sw * x.itemsize * (2 if mode == "bilinear" else 1),
                      f"upsample2d of x {x.shape} by {(sh, sw)}")
    if mode == "bilinear":
        if x.size == 0:
            return np.zeros((n, c, h * sh, w * sw), dtype=dtype)
        return _separable(x, _bilinear_matrix(h, sh, dtype), _bilinear_matrix(w, sw, dtype))
    y = np.empty((n, c, h, sh, w, sw), dtype=dtype)
    y[...] = x[:, :, :, None, :, None]
    return y.reshape(n, c, h * sh, w * sw)


def upsample2d_backward(dy, size, interpolation="nearest"):
    """Gradient of :func:`upsample2d`: each input pixel receives the sum of the output pixels
    it fed, weighted by its interpolation weights.

    Shape:
        dy (N, C, H * sh, W * sw) -> dx (N, C, H, W).
    """
    dtype, (dy,) = _args.float_arrays((dy, "dy"))
    _args.check_ndim(dy, "dy", 4, "(N, C, H*sh, W*sw)")
    sh, sw = _args.positive_pair(size, "size")
    mode = _args.interpolation_mode(interpolation)
    n, c, ho, wo = dy.shape
    if ho % sh or wo % sw:
        raise ValueError(f"dy must have a height and width that are multiples of size "
                         f"{(sh, sw)}, got shape {dy.shape}")
    h, w = ho // sh, wo // sw
    if mode == "bilinear":
        if dy.size == 0:
            return np.zeros((n, c, h, w), dtype=dtype)
        return _separable(dy, _bilinear_matrix(h, sh, dtype).T, _bilinear_matrix(w, sw, dtype).T)
    # one strided add per (i, j) offset: NumPy's sum over the two inner axes is several times
    # slower (it reduces along short, strided axes)
    taps = dy.reshape(n, c, h, sh, w, sw)
    dx = np.array(taps[:, :, :, 0, :, 0], dtype=dtype)
    for i in range(sh):
        for j in range(sw):
            if i or j:
                dx += taps[:, :, :, i, :, j]
    return dx


def zero_pad2d(x, padding):
    """Pad the two spatial axes with zeros: ``padding`` is an int, a pair (ph, pw) for both
    sides, or ((top, bottom), (left, right)) (Keras ``ZeroPadding2D``).

    Shape:
        x (N, C, H, W) -> y (N, C, top + H + bottom, left + W + right).
    """
    dtype, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    (top, bottom), (left, right) = _args.pad4(padding, "padding")
    n, c, h, w = x.shape
    ho, wo = top + h + bottom, left + w + right
    if max(ho, wo) > _INT_MAX:
        raise ValueError(f"zero_pad2d output {ho}x{wo} is too large (< 2**31)")
    _args.check_alloc(n * c * ho * wo * x.itemsize, f"zero_pad2d of x {x.shape} by {padding!r}")
    y = np.zeros((n, c, ho, wo), dtype=dtype)
    y[:, :, top:top + h, left:left + w] = x
    return y


def zero_pad2d_backward(dy, padding):
    """Gradient of :func:`zero_pad2d`: dy with the padding cropped off.

    Shape:
        dy (N, C, Ho, Wo) -> dx (N, C, Ho - top - bottom, Wo - left - right).
    """
    dtype, (dy,) = _args.float_arrays((dy, "dy"))
    _args.check_ndim(dy, "dy", 4, "(N, C, Ho, Wo)")
    (top, bottom), (left, right) = _args.pad4(padding, "padding")
    n, c, ho, wo = dy.shape
    if top + bottom > ho or left + right > wo:
        raise ValueError(f"padding {padding!r} is larger than dy of shape {dy.shape}")
    return np.ascontiguousarray(dy[:, :, top:ho - bottom, left:wo - right])


def global_max_pool2d(x):
    """Maximum over the whole H x W plane of every channel, with the index of the element
    chosen (the rules of :func:`max_pool2d`: first maximum wins ties, NaN propagates).

    Shape:
        x (N, C, H, W) -> y, indices (N, C); indices hold h * W + w.
    """
    dtype, (x,) = _args.float_arrays((x, "x"))
    _args.check_ndim(x, "x", 4, "(N, C, H, W)")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"x must have images of at least 1x1 pixels, got shape {x.shape}")
    y, indices = max_pool2d(x, x.shape[2:])
    return y.reshape(x.shape[:2]), indices.reshape(x.shape[:2])


def global_max_pool2d_backward(dy, indices, input_shape):
    """Gradient of :func:`global_max_pool2d`: each dy[n, c] goes to the chosen element.

    Shape:
        dy, indices (N, C); input_shape (N, C, H, W) -> dx (N, C, H, W).
    """
    dtype, (dy,) = _args.float_arrays((dy, "dy"))
    _args.check_ndim(dy, "dy", 2, "(N, C)")
    idx = np.asarray(indices)
    _args.check_ndim(idx, "indices", 2, "(N, C)")
    _args.check_shape(idx, "indices", dy.shape, "the shape of dy")
    return max_pool2d_backward(dy[:, :, None, None], idx[:, :, None, None], input_shape)


def _out_array(out, shape, dtype, name="out"):
    """``out`` checked as a writable C-contiguous array of ``shape`` and ``dtype`` (or a new one)."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous {np.dtype(dtype).name} array of "
                         f"shape {shape}, got {_args._describe(out)}")
    return out


def relu(x, out=None):
    """max(x, 0) element-wise (NaN stays NaN), in one parallel pass.

    ``out`` (optional): where to write, a C-contiguous array of x's shape and float dtype; it may
    be ``x`` itself (in place).

    Shape:
        x (any) -> y (same shape).
    """
    dtype, (x,) = _args.float_arrays((x, "x"))
    y = _out_array(out, x.shape, dtype)
    _eltwise.relu_forward(x.reshape(-1), y.reshape(-1), threads_for(x.size, (x.size + 15) // 16))
    return y


def relu_backward(dy, y, out=None):
    """Gradient of :func:`relu` from its output y: dy where y > 0, else 0 (also where dy is
    NaN or infinite, as torch's threshold_backward). ``out`` may be ``dy`` itself.

    Shape:
        dy, y (same shape) -> dx (same shape).
    """
    dtype, (dy, y) = _args.float_arrays((dy, "dy"), (y, "y"))
    _args.check_shape(y, "y", dy.shape, "the shape of dy")
    dx = _out_array(out, dy.shape, dtype)
    _eltwise.relu_backward(dy.reshape(-1), y.reshape(-1), dx.reshape(-1),
                           threads_for(dy.size, (dy.size + 15) // 16))
    return dx
