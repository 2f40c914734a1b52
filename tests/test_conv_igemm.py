"""float32 convolution through the implicit GEMM (csrc/conv/sconv_igemm.c): forward, dx by the
flipped-filter convolution, fused bias/ReLU, every SIMD path against the portable one and against
the im2col + GEMM path, NaN locality, determinism at a fixed thread count."""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv

from _conv_cases import (NAN_CASE, SUPPORTED, assert_nan_stays_local, case,
                         no_winograd, restore_switches)  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("no_winograd")   # these test the other kernels

# (N, C, H, W, K, R, S, stride, padding, dilation): odd sizes, Wo < tile, Wo = 1, C = 1,
# padding larger than the reach of the filter (negative padding in the dx convolution),
# asymmetric 'same' padding, dilation, rectangular stride.
GEOMETRIES = [
    (2, 3, 13, 11, 17, 3, 3, 1, 1, 1),
    (3, 1, 28, 28, 8, 5, 5, 1, 2, 1),
    (2, 7, 9, 6, 5, 5, 3, 1, (2, 1), 1),
    (1, 4, 5, 1, 6, 3, 1, 1, (1, 0), 1),
    (2, 5, 12, 12, 9, 1, 1, 1, 1, 1),          # 1x1 with padding 1 > reach 0
    (2, 6, 10, 9, 7, 3, 3, 1, "same", 2),      # dilation 2
    (2, 4, 12, 10, 13, 4, 4, 1, "same", 1),    # even filter: asymmetric padding
    (2, 5, 11, 13, 6, 3, 3, 2, 1, 1),          # stride 2 (dx by col2im)
    (1, 3, 9, 20, 4, 3, 3, (1, 2), "same", 1),
    (2, 33, 7, 7, 40, 2, 2, 1, 0, 1),          # depth and rows past one register tile
]


def _run(x, wt, b, kw, dy=None):
    y = ops.conv2d(x, wt, b, **kw)
    if dy is None:
        dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    return (y,) + tuple(ops.conv2d_backward(dy, x, wt, **kw)), dy


def _close(got, want, what, rtol=2e-5):
    scale = 1.0 + np.abs(want).max() if want.size else 1.0
    err = np.abs(got.astype(np.float64) - want).max() if want.size else 0.0
    assert err <= rtol * scale * np.sqrt(want.size + 1) ** 0.25 * 4, \
        f"{what}: max error {err} (scale {scale}) shape {want.shape}"


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: "x".join(map(str, g[:7])))
def test_matches_reference_and_generic(path, geom):
    x, wt, b, kw = case(geom)
    conv.simd_select("generic")
    generic, dy = _run(x, wt, b, kw)
    conv.simd_select(path)
    got, _ = _run(x, wt, b, kw, dy)
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, wt, b, dy))
    want = (reference.conv2d(x64, w64, b64, **kw),) + tuple(
        reference.conv2d_backward(dy64, x64, w64, **kw))
    for name, g, gen, exp in zip(("y", "dx", "dw", "db"), got, generic, want):
        assert g.dtype == np.float32 and g.shape == exp.shape
        _close(g, exp, f"{name} via {path}")
        _close(g, gen.astype(np.float64), f"{name}: {path} vs generic")


@pytest.mark.parametrize("geom", GEOMETRIES[:4] + GEOMETRIES[6:8],
                         ids=lambda g: "x".join(map(str, g[:7])))
def test_implicit_equals_im2col_path(geom):
    x, wt, b, kw = case(geom, seed=3)
    conv.set_implicit_gemm(False)
    old, dy = _run(x, wt, b, kw)
    conv.set_implicit_gemm(True)
    new, _ = _run(x, wt, b, kw, dy)
    for name, a, e in zip(("y", "dx", "dw", "db"), new, old):
        _close(a, e.astype(np.float64), f"{name}: implicit vs im2col")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("has_bias", [True, False])
def test_fused_relu(dtype, has_bias):
    x, wt, b, kw = case(GEOMETRIES[0])
    x, wt, b = x.astype(dtype), wt.astype(dtype), b.astype(dtype)
    y = np.empty((2, 17, 13, 11), dtype=dtype)
    conv.conv2d_forward(x, wt, b if has_bias else np.zeros(0, dtype), has_bias, y,
                        1, 1, 1, 1, 1, 1, 1, relu=True)
    want = np.maximum(reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                                       b.astype(np.float64) if has_bias else None, 1, 1), 0)
    assert (y >= 0).all() and (y == 0).sum() > y.size // 4
    _close(y, want, f"relu {dtype.__name__}")


def test_nan_stays_in_its_receptive_field():
    """The padded copy, over-reading panel copies and zeroed panel edges must not carry a NaN
    (or anything) to outputs that do not read it."""
    x, wt, b, kw = case(NAN_CASE)
    x[1, 2, 6, 9] = np.nan
    y = ops.conv2d(x, wt, b, **kw)
    assert_nan_stays_local(y)


def test_two_threads_deterministic_and_equal_to_one():
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    x, wt, b, kw = case((5, 16, 14, 14, 24, 5, 5, 1, 2, 1))
    cycnn.set_num_threads(2)
    first, dy = _run(x, wt, b, kw)
    again, _ = _run(x, wt, b, kw, dy)
    for a, e in zip(first, again):
        np.testing.assert_array_equal(a, e)
    cycnn.set_num_threads(1)
    one, _ = _run(x, wt, b, kw, dy)
    # y and dx are per-image: the same sums in the same order on any thread count
    np.testing.assert_array_equal(first[0], one[0])
    np.testing.assert_array_equal(first[1], one[1])
    _close(first[2], one[2].astype(np.float64), "dw 2 threads vs 1")
