"""Shared pieces of the float32 convolution kernel tests (test_conv_igemm, test_conv_direct,
test_conv_dw, test_conv_winograd): the SIMD paths this CPU can run, one random case per
geometry, the float32 error bound against a float64 oracle, the fixture that puts every switch
back and the one that keeps Winograd off (for the tests of the other kernels)."""
import numpy as np
import pytest

import cycnn
from cycnn._kernels import conv

SUPPORTED = [p for p in ("generic", "avx2", "avx512") if conv.simd_supported(p)]


def case(geom, seed=0):
    """x, w, b (float32 unit normals) and the conv keywords of a geometry
    (N, C, H, W, K, R, S, stride, padding, dilation)."""
    n, c, h, w, k, r, s, stride, padding, dilation = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    return x, wt, b, dict(stride=stride, padding=padding, dilation=dilation)


def close(got, want, what, rtol=2e-6):
    """float32 sums of n products of unit normals: error ~ eps * sqrt(n) * scale."""
    assert got.dtype == np.float32 and got.shape == want.shape, (what, got.shape, want.shape)
    scale = np.abs(want).max(initial=0.0) + 1.0
    err = np.abs(got.astype(np.float64) - want).max(initial=0.0)
    assert err <= rtol * scale, f"{what}: max error {err} (scale {scale}) shape {want.shape}"


@pytest.fixture(autouse=True)
def restore_switches():
    """Every test leaves the GEMM path, the kernel switches and the thread count as it found
    them (automatic)."""
    yield
    conv.simd_select("auto")
    conv.set_implicit_gemm(True)
    conv.set_direct_mode(1)
    conv.set_winograd_mode(1)
    cycnn.set_num_threads(None)


@pytest.fixture
def no_winograd():
    """The float32 forward pass, stride-1 dx and weight gradient stay on the kernels
    set_direct_mode picks (the broadcast kernel, the implicit GEMM, sconv_dw), never Winograd:
    for the tests of those kernels, whose 3x3 / 5x5 cases the default rule would otherwise send
    to Winograd."""
    old = conv.set_winograd_mode(0)
    yield
    conv.set_winograd_mode(old)


NAN_CASE = (2, 3, 14, 14, 20, 5, 5, 1, 2, 1)   # 5x5 'same'; x[1, 2, 6, 9] is set to NaN


def assert_nan_stays_local(y):
    """y = conv of NAN_CASE with x[1, 2, 6, 9] = NaN: exactly the outputs whose 5x5 window
    reads that pixel (rows 4..8, columns 7..11 of image 1, every filter) are NaN."""
    bad = np.isnan(y)
    assert not bad[0].any()
    rows, cols = np.nonzero(bad[1].any(axis=0))
    assert set(rows) == set(range(4, 9)) and set(cols) == set(range(7, 12))
    assert bad[1][:, 4:9, 7:12].all()
