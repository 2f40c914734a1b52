"""The float32 weight gradient on the Winograd kernel (cycnn_swino_dw, csrc/conv/swino.c) in
cycnn.ops.conv2d_backward: dw and db against cycnn.reference (float64) on the Winograd
geometries of test_conv_winograd, every SIMD path against the portable one, 1, 2 and 3 threads
(deterministic at a fixed count), which kernel each call takes (the forward pass's rule, output
pixels included), and mode 0 keeping the direct weight gradient.

Tolerance: dw sums N * tiles transform-domain products, and the output transform multiplies by
the points' powers (up to 2^4 for 5x5), so its rounding is larger than the forward pass's:
measured (NumPy prototype and these kernels) up to 4.7e-6 of the largest |dw| on lenet-c2's
shape, where the direct kernel gives 3e-7. DW_RTOL = 2e-5 keeps 4x over that; a wrong tap,
tile, transform or padding errs by O(1) of the scale.
"""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv

from _conv_cases import SUPPORTED, case, close, restore_switches  # noqa: F401 (fixture)
from test_conv_winograd import GEOMETRIES, _ids

DW_RTOL = 2e-5


def _grads(x, wt, kw, dy):
    _, dw, db = ops.conv2d_backward(dy, x, wt, compute_dx=False, **kw)
    return dw, db


def _want(x, wt, kw, dy):
    _, dw, db = reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                          wt.astype(np.float64), **kw)
    return dw, db


def _dy(x, wt, kw, seed):
    shape = ops.conv2d(x, wt, **kw).shape
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("geom", GEOMETRIES, ids=_ids)
def test_matches_reference_and_generic(path, geom):
    x, wt, _, kw = case(geom)
    dy = _dy(x, wt, kw, 1)
    want = _want(x, wt, kw, dy)
    cycnn.set_num_threads(1)
    conv.set_winograd_mode(2)        # any size (the default rule wants 768 output pixels)
    conv.simd_select("generic")
    generic = _grads(x, wt, kw, dy)
    assert conv.last_dw_winograd()
    conv.simd_select(path)
    got = _grads(x, wt, kw, dy)
    assert conv.last_dw_winograd()
    for name, g, gen, exp in zip(("dw", "db"), got, generic, want):
        close(g, exp, f"{name} via {path}", DW_RTOL)
        close(g, gen.astype(np.float64), f"{name}: {path} vs generic", DW_RTOL)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_and_determinism(threads):
    geom = (6, 20, 11, 9, 24, 5, 5, 1, 2, 1)
    x, wt, _, kw = case(geom, seed=7)
    dy = _dy(x, wt, kw, 8)
    want = _want(x, wt, kw, dy)
    cycnn.set_num_threads(threads)
    conv.set_winograd_mode(2)
    first = _grads(x, wt, kw, dy)
    assert conv.last_dw_winograd()                  # 6 images: at least one per thread
    again = _grads(x, wt, kw, dy)
    for name, g, g2, exp in zip(("dw", "db"), first, again, want):
        close(g, exp, f"{name} on {threads} threads", DW_RTOL)
        assert np.array_equal(g, g2), f"{name}: two calls on {threads} threads differ"


def test_the_default_rule_and_mode_0():
    x, wt, _, kw = case((2, 16, 9, 9, 12, 3, 3, 1, 1, 1), seed=9)
    dy = _dy(x, wt, kw, 10)
    want = _want(x, wt, kw, dy)
    dw = np.empty_like(wt)
    db = np.empty(wt.shape[0], np.float32)
    # the kernel entry with 3 threads for 2 images (cycnn.ops gives at most one per image):
    # the direct gradient's split over taps
    conv.conv2d_backward(dy, x, wt, None, dw, db, 1, 1, 1, 1, 1, 1, 3)
    assert not conv.last_dw_winograd()
    got = (dw, db)
    cycnn.set_num_threads(1)
    conv.set_winograd_mode(0)
    got0 = _grads(x, wt, kw, dy)
    assert not conv.last_dw_winograd()
    for name, g, g0, exp in zip(("dw", "db"), got, got0, want):
        close(g, exp, f"{name} split over taps")
        close(g0, exp, f"{name} mode 0")
    conv.set_winograd_mode(1)
    x, wt, _, kw = case((4, 16, 14, 14, 8, 5, 5, 1, 2, 1))   # 784 output pixels: Winograd
    _grads(x, wt, kw, _dy(x, wt, kw, 2))
    assert conv.last_dw_winograd()
    for geom in [(3, 16, 14, 14, 8, 5, 5, 1, 2, 1),     # 588 output pixels < 768
                 (48, 64, 4, 4, 512, 3, 3, 1, 1, 1),    # sums 36 x 64 x 512 > what ops checked
                 (2, 16, 9, 9, 8, 3, 3, 2, 1, 1),       # stride 2
                 (2, 16, 9, 9, 8, 3, 3, 1, 2, 2),       # dilation 2
                 (2, 8, 9, 9, 8, 5, 5, 1, 2, 1)]:       # 5x5 below 16 channels
        x, wt, _, kw = case(geom)
        _grads(x, wt, kw, _dy(x, wt, kw, 2))
        assert not conv.last_dw_winograd(), geom
