"""float32 convolution by the broadcast kernel (csrc/conv/sconv_direct.c): forward (bias, ReLU)
and the stride-1 dx (the flipped-filter convolution, negative padding included) against
cycnn.reference (float64), every SIMD path against the portable one, the kernel against the
implicit GEMM it replaces, images split between 2 threads, NaN locality."""
import numpy as np
import pytest

import cycnn
from cycnn import _threads, ops, reference
from cycnn._kernels import conv

from _conv_cases import (NAN_CASE, SUPPORTED, assert_nan_stays_local, case, close,
                         no_winograd, restore_switches)  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("no_winograd")   # these test the other kernels

# (N, C, H, W, K, R, S, stride, padding, dilation): pixel counts not a multiple of the 6-pixel
# tile, tiles across output rows (Wo < 6), K <= 8, 8 < K < 16, K past 16; more taps than one
# chunk (128) and more pixels than one block (240); stride, dilation, padding past the filter's
# reach (negative padding in the dx convolution), asymmetric 'same'.
GEOMETRIES = [
    (2, 1, 28, 28, 32, 5, 5, 1, 2, 1),          # first layer: C = 1, L 784 (4 blocks)
    (2, 3, 13, 11, 17, 3, 3, 1, 1, 1),
    (1, 4, 5, 1, 6, 3, 1, 1, (1, 0), 1),        # Wo = 1: every tile spans 6 rows
    (2, 7, 9, 4, 9, 5, 3, 1, (2, 1), 1),        # Wo = 4 < 6
    (2, 20, 7, 7, 12, 3, 3, 1, 0, 1),           # CRS 180: two tap chunks
    (2, 16, 9, 10, 18, 4, 4, 1, "same", 1),     # even filter: asymmetric padding
    (2, 5, 12, 12, 9, 3, 3, 1, 3, 1),           # padding 3 > reach 2: dx padding -1
    (2, 6, 10, 9, 7, 3, 3, 1, "same", 2),       # dilation 2
    (2, 5, 11, 13, 20, 3, 3, 2, 1, 1),          # stride 2 (forward only; dx by col2im)
    (1, 3, 9, 20, 4, 3, 3, (1, 2), "same", 1),  # rectangular stride
    (2, 17, 8, 8, 33, 2, 2, 1, 0, 1),           # C >= 16: dx by the kernel too
]


def _run(x, wt, b, kw, dy):
    y = ops.conv2d(x, wt, b, **kw)
    dx, _, _ = ops.conv2d_backward(dy, x, wt, **kw)
    return y, dx


def _want(x, wt, b, kw, dy):
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, wt, b, dy))
    return (reference.conv2d(x64, w64, b64, **kw),
            reference.conv2d_backward(dy64, x64, w64, **kw)[0])


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: "x".join(map(str, g[:7])))
def test_matches_reference_and_generic(path, geom):
    x, wt, b, kw = case(geom)
    dy = np.random.default_rng(1).standard_normal(
        ops.conv2d(x, wt, **kw).shape).astype(np.float32)
    want = _want(x, wt, b, kw, dy)
    conv.set_direct_mode(2)
    conv.simd_select("generic")
    generic = _run(x, wt, b, kw, dy)
    conv.simd_select(path)
    got = _run(x, wt, b, kw, dy)
    for name, g, gen, exp in zip(("y", "dx"), got, generic, want):
        close(g, exp, f"{name} via {path}")
        close(g, gen.astype(np.float64), f"{name}: {path} vs generic")


@pytest.mark.parametrize("geom", GEOMETRIES[::2], ids=lambda g: "x".join(map(str, g[:7])))
def test_equals_implicit_gemm(geom):
    x, wt, b, kw = case(geom, seed=2)
    dy = np.random.default_rng(3).standard_normal(
        ops.conv2d(x, wt, **kw).shape).astype(np.float32)
    conv.set_direct_mode(0)
    old = _run(x, wt, b, kw, dy)
    conv.set_direct_mode(2)
    new = _run(x, wt, b, kw, dy)
    for name, a, e in zip(("y", "dx"), new, old):
        close(a, e.astype(np.float64), f"{name}: broadcast kernel vs implicit GEMM")


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("has_bias", [True, False])
def test_fused_relu(path, has_bias):
    x, wt, b, kw = case((2, 3, 13, 11, 17, 3, 3, 1, 1, 1), seed=4)
    conv.set_direct_mode(2)
    conv.simd_select(path)
    y = np.empty((2, 17, 13, 11), dtype=np.float32)
    conv.conv2d_forward(x, wt, b if has_bias else np.zeros(0, np.float32), has_bias, y,
                        1, 1, 1, 1, 1, 1, 1, relu=True)
    want = np.maximum(reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                                       b.astype(np.float64) if has_bias else None, 1, 1), 0)
    assert (y >= 0).all() and (y == 0).sum() > y.size // 4
    close(y, want, f"relu via {path}")


@pytest.mark.parametrize("padding", [1, 0], ids=["padded", "x-in-place"])
@pytest.mark.parametrize("n", [1, 3])
def test_two_threads_equal_one(n, padding):
    """2 threads (one image each, or the pixels of one image split between them; the image
    padded, or read in place when nothing is padded): the same bits as 1 thread, since every
    output's sum is formed the same way. (cycnn.ops gives the backward
    pass at most one thread per image: one image's dx runs on 1 thread.)"""
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    x, wt, b, kw = case((n, 18, 11, 13, 21, 3, 3, 1, padding, 1), seed=5)
    dy = np.random.default_rng(6).standard_normal(
        (n, 21, 9 + 2 * padding, 11 + 2 * padding)).astype(np.float32)
    conv.set_direct_mode(2)
    with _threads.force_parallel():
        cycnn.set_num_threads(2)
        ops.conv2d(x, wt, b, **kw)
        assert conv.last_parallel_region() == (
            "conv2d_forward" if n > 1 else "conv2d_forward_split", 2)
        two = _run(x, wt, b, kw, dy)
        cycnn.set_num_threads(1)
        one = _run(x, wt, b, kw, dy)
    for a, e in zip(two, one):
        np.testing.assert_array_equal(a, e)
    for name, a, e in zip(("y", "dx"), two, _want(x, wt, b, kw, dy)):
        close(a, e, f"{name} 2 threads")


def test_nan_stays_in_its_receptive_field():
    x, wt, b, kw = case(NAN_CASE, seed=7)
    x[1, 2, 6, 9] = np.nan
    conv.set_direct_mode(2)
    y = ops.conv2d(x, wt, b, **kw)
    assert_nan_stays_local(y)
