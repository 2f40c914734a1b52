"""float32 convolution on the few-channel kernel (csrc/conv/sconv_fewc.c) in cycnn.ops: the
forward pass (with and without bias / fused ReLU), the weight gradient and db, and the dx of
layers with few filters, against cycnn.reference (float64), every SIMD path against the portable
one, 1/2/3 threads, determinism, where a NaN goes, and which calls the rule sends to it.

Tolerance: _conv_cases.close bounds the error by rtol * (max |exact| + 1), rtol 2e-6 as for the
other direct kernels: every output is a plain float32 sum of C*R*S products (at most 500 here,
unit normals; the weight gradient sums N*Ho*Wo products in 8 lanes, then the lanes), so the error
stays near eps * sqrt(depth) * scale, a few 1e-7; a wrong tap, shift, row or lane errs by O(1).
"""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv

from _conv_cases import (NAN_CASE, SUPPORTED, assert_nan_stays_local, case, close,  # noqa: F401
                         restore_switches)


@pytest.fixture(autouse=True)
def fewc_default():
    """The default rule (set_fewc_mode(1)) before and after every test; the dx of few input
    channels stays on the kernels it had before the dxfew kernel (set_dxfew_mode(0): the
    channels-last path tested here; tests/test_conv_dxfew.py tests the dxfew kernel)."""
    conv.set_fewc_mode(1)
    old = conv.set_dxfew_mode(0)
    yield
    conv.set_fewc_mode(1)
    conv.set_dxfew_mode(old)


# (N, C, H, W, K, R, S, stride, padding, dilation)
GEOMETRIES = [
    (3, 1, 28, 28, 32, 5, 5, 1, 2, 1),          # lenet-c1 ('same'), 98 vectors per plane
    (2, 3, 16, 16, 32, 3, 3, 1, 1, 1),          # RGB 3x3
    (2, 3, 12, 12, 18, 5, 5, 1, 2, 1),          # RGB 5x5, K 18: a block of 2 filters last
    (2, 2, 13, 11, 7, 3, 3, 1, 1, 1),           # 143 pixels: a 7-pixel last vector; K 7
    (2, 4, 9, 13, 5, 3, 5, 1, (1, 3), 1),       # padding differs per axis, R != S, C 4
    (3, 1, 7, 6, 3, 5, 5, 1, 0, 1),             # 'valid': a 3x2 output, 6 pixels, K 3
    (2, 2, 10, 10, 9, 3, 3, 1, 3, 1),           # padding 3 > reach 2: zero rows and columns
    (2, 20, 9, 11, 2, 3, 3, 1, 1, 1),           # 20 channels, 2 filters: channels-last
    (1, 24, 20, 28, 1, 5, 5, 1, 2, 1),          # 1 filter over 24 channels: channels-last
    (2, 6, 20, 28, 1, 5, 5, 1, 2, 1),           # 1 filter over 6 channels: the strided layout
                                                # (rows 32 apart), chunks of channels
    (2, 7, 16, 12, 3, 7, 7, 1, 3, 1),           # 7x7, 3 filters (dx: channels-last, S = 7)
    (1, 4, 8, 60, 3, 7, 7, 1, 3, 1),            # 4 x 7 shifted copies of 14 x 60: chunks of
                                                # 2 channels, the sums through y
]


def _ids(g):
    return "x".join(map(str, g[:7])) + f"-p{g[8]}"


def _dy(x, wt, kw, seed):
    shape = ops.conv2d(x, wt, **kw).shape
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _all(x, wt, b, kw, dy):
    """y, dx, dw, db through cycnn.ops, and the kernels that ran (forward, dx, dw on fewc)."""
    y = ops.conv2d(x, wt, b, **kw)
    fwd = conv.last_conv_kernel()
    dx, dw, db = ops.conv2d_backward(dy, x, wt, **kw)
    return (y, dx, dw, db), (fwd, conv.last_conv_kernel(), conv.last_dw_fewc())


def _want(x, wt, b, kw, dy):
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, wt, b, dy))
    y = reference.conv2d(x64, w64, b64, **kw)
    return (y,) + tuple(reference.conv2d_backward(dy64, x64, w64, **kw))


@pytest.mark.parametrize("geom", GEOMETRIES, ids=_ids)
def test_matches_reference_on_every_path(geom):
    x, wt, b, kw = case(geom, seed=1)
    dy = _dy(x, wt, kw, 2)
    want = _want(x, wt, b, kw, dy)
    results = {}
    for path in SUPPORTED:
        conv.simd_select(path)
        got, kernels = _all(x, wt, b, kw, dy)
        n, c, h, w_, k, r, s = geom[:7]
        pad = geom[8] if isinstance(geom[8], tuple) else (geom[8], geom[8])
        copies = c * s * (h + 2 * pad[0]) * (w_ + 2 * pad[1] - s + 1)   # C*S*(Ho+R-1)*Wo
        want_dw = k <= 4 or copies <= conv.FEWC_DW_MAX_COPIES
        assert kernels[0] == "fewc" and kernels[2] == want_dw, (path, kernels)
        # dx: a convolution of dy's few channels, or (3-4 channels) the channels-last path
        # (at least 8 filters: conv._fewc_dx)
        want_dx = ("fewc" if (geom[4] <= 4 and geom[1] >= 16)
                   or (3 <= geom[1] <= 4 and geom[4] >= 8) else None)
        assert want_dx is None or kernels[1] == want_dx, kernels
        for g, w_, name in zip(got, want, ("y", "dx", "dw", "db")):
            close(g, w_, f"{name} {path} {geom}")
        results[path] = got
    for path in SUPPORTED[1:]:                 # every SIMD path next to the portable one
        for g, r, name in zip(results[path], results["generic"], ("y", "dx", "dw", "db")):
            close(g, r.astype(np.float64), f"{name} {path} vs generic {geom}")


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("has_bias", [True, False])
def test_fused_bias_relu(path, has_bias):
    """The kernel entry with the fused epilogue (training's Conv2D+ReLU), asymmetric padding
    (top 2, left 1) given straight to the kernel; NaN stays NaN through the ReLU."""
    conv.simd_select(path)
    x, wt, b, _ = case((2, 3, 11, 13, 6, 5, 5, 1, 0, 1), seed=5)
    x[1, 0, 3, 4] = np.nan
    pt, pl = 2, 1
    ho, wo = 11 + 2 * pt - 5 + 1, 13 + 2 * pl - 5 + 1
    y = np.full((2, 6, ho, wo), -7.0, np.float32)
    conv.conv2d_forward(x, wt, b, has_bias, y, 1, 1, pt, pl, 1, 1, 1, True)
    assert conv.last_conv_kernel() == "fewc"
    want = reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                            b.astype(np.float64) if has_bias else None, padding=(pt, pl))
    assert np.array_equal(np.isnan(y), np.isnan(want))
    ok = ~np.isnan(want)
    close(np.where(ok, y, 0), np.where(ok, np.maximum(want, 0), 0), f"relu {path}")
    assert (y[ok] >= 0).all()


@pytest.mark.parametrize("n", [1, 5])
def test_threads(n):
    """1, 2 and 3 threads (really: the team size the parallel region reports): images split
    over the threads (n 5), or one image's pixels (forward) and filters (weight gradient) split
    (n 1). y never depends on the thread count; the weight gradient does not either when the
    filters are split; every count is deterministic and matches the reference."""
    x, wt, b, kw = case((n, 1, 28, 28, 32, 5, 5, 1, 2, 1), seed=7)
    dy = _dy(x, wt, kw, 8)
    want = _want(x, wt, b, kw, dy)
    got = {}
    for t in (1, 2, 3):
        cycnn.set_num_threads(t)
        y = ops.conv2d(x, wt, b, **kw)
        assert conv.last_conv_kernel() == "fewc"
        region = conv.last_parallel_region()
        assert region[1] == t, region
        # (the kernel entry: cycnn.ops gives a backward pass at most one thread per image)
        dw, db, dw2, db2 = (np.empty_like(a) for a in (wt, b, wt, b))
        conv.conv2d_backward(dy, x, wt, None, dw, db, 1, 1, 2, 2, 1, 1, t)
        assert conv.last_dw_fewc()
        region = conv.last_parallel_region()
        assert region == ("conv2d_backward" + ("_split" if n < t else ""), t), region
        conv.conv2d_backward(dy, x, wt, None, dw2, db2, 1, 1, 2, 2, 1, 1, t)
        assert np.array_equal(dw, dw2) and np.array_equal(db, db2), t   # deterministic
        close(y, want[0], f"y {t} threads")
        close(dw, want[2], f"dw {t} threads")
        close(db, want[3], f"db {t} threads")
        got[t] = (y, dw, db)
    assert np.array_equal(got[1][0], got[2][0]) and np.array_equal(got[1][0], got[3][0])
    if n == 1:
        for t in (2, 3):
            assert np.array_equal(got[1][1], got[t][1]) and np.array_equal(got[1][2], got[t][2])


@pytest.mark.parametrize("geom", [(1, 1, 150, 170, 4, 3, 3, 1, 1, 1),
                                  (1, 6, 140, 130, 2, 3, 3, 1, 1, 1)], ids=_ids)
def test_large_image_in_bands(geom):
    """Images whose copies exceed the per-chunk budget: the forward pass runs in bands of
    pixels (1 channel: shifted copies) or of rows (6 channels, 2 filters: the strided layout,
    rows 136 apart), the weight gradient sums band by band."""
    x, wt, b, kw = case(geom, seed=11)
    dy = _dy(x, wt, kw, 12)
    want = _want(x, wt, b, kw, dy)
    for path in SUPPORTED:
        conv.simd_select(path)
        got, kernels = _all(x, wt, b, kw, dy)
        assert kernels[0] == "fewc" and kernels[2]
        for g, w_, name in zip(got, want, ("y", "dx", "dw", "db")):
            close(g, w_, f"{name} {path}")


@pytest.mark.parametrize("path", SUPPORTED)
def test_nan_stays_local(path):
    conv.simd_select(path)
    x, wt, b, kw = case(NAN_CASE, seed=3)
    x[1, 2, 6, 9] = np.nan
    y = ops.conv2d(x, wt, b, **kw)
    assert conv.last_conv_kernel() == "fewc"
    assert_nan_stays_local(y)


def _at_offset(a, floats):
    """A copy of a whose data starts `floats` floats past a 64-byte boundary."""
    raw = np.empty(a.size + 32, np.float32)
    start = (-raw.ctypes.data % 64) // 4 + floats
    out = raw[start:start + a.size].reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == 4 * floats
    return out


@pytest.mark.parametrize("geom", [(3, 1, 28, 28, 32, 5, 5, 1, 2, 1),     # lenet-c1
                                  (1, 1, 128, 96, 4, 3, 3, 1, 1, 1),     # bands of rows
                                  (2, 2, 13, 11, 7, 3, 3, 1, 1, 1)],     # 143 pixels per plane
                         ids=_ids)
def test_dy_alignment_changes_no_bit(geom):
    """The AVX2 weight gradient starts its vectors 4 pixels early when dy sits 16 bytes past a
    32-byte boundary (its loads then aligned) and swaps the lane halves back: dw, db (and dx)
    must be bit for bit those of a 64-byte-aligned dy, at every offset, on every path, and
    match the reference."""
    x, wt, b, kw = case(geom, seed=21)
    dy = _dy(x, wt, kw, 22)
    want = _want(x, wt, b, kw, dy)
    for path in SUPPORTED:
        conv.simd_select(path)
        base = None
        for off in range(8):
            got = ops.conv2d_backward(_at_offset(dy, off), x, wt, **kw)
            assert conv.last_dw_fewc()
            if base is None:
                base = got
                for g, w_, name in zip(got, want[1:], ("dx", "dw", "db")):
                    close(g, w_, f"{name} {path} {geom}")
            for g, r, name in zip(got, base, ("dx", "dw", "db")):
                assert np.array_equal(g, r), (name, path, off)


def test_masked_last_vector_reads_no_infinity():
    """'valid' 3x3 on 13x11: 11x9 = 99 pixels, the last vector holds 3. Its 5 masked-off lanes
    would read, at taps (0, s), x's row 11, which only taps (1, .) and (2, .) of real pixels
    read: an infinity there must leave dw[:, :, 0, :] finite (0 * inf would be NaN) and reach
    the taps that do read it, as in the reference."""
    x, wt, b, kw = case((1, 1, 13, 11, 4, 3, 3, 1, 0, 1), seed=13)
    x[0, 0, 11, 2] = np.inf
    dy = _dy(x, wt, kw, 14)
    want = reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                     wt.astype(np.float64), **kw)[1]
    assert np.isfinite(want[:, :, 0, :]).all() and not np.isfinite(want).all()
    for path in SUPPORTED:
        conv.simd_select(path)
        _, dw, db = ops.conv2d_backward(dy, x, wt, compute_dx=False, **kw)
        assert conv.last_dw_fewc()
        assert np.array_equal(np.isfinite(dw), np.isfinite(want)), path
        ok = np.isfinite(want)
        close(np.where(ok, dw, 0), np.where(ok, want, 0), f"dw {path}")


def test_rule():
    """lenet-c1 (1 channel) and RGB first layers go to the few-channel kernel, lenet-c2 (32
    channels, 64 filters) does not; lenet-c1's dx stays col2im (measured faster there), an RGB
    layer's dx runs the few-channel kernel; set_fewc_mode(0) gives the previous kernels."""
    assert conv.fewc_applies(1, 32) and conv.fewc_applies(3, 64) and conv.fewc_applies(64, 1)
    assert not conv.fewc_applies(32, 64) and not conv.fewc_applies(8, 16)
    assert not conv.fewc_applies(1, 32, sh=2) and not conv.fewc_applies(1, 32, dh=2)
    for geom, fewc in [((2, 1, 28, 28, 32, 5, 5, 1, 2, 1), True),       # lenet-c1
                       ((2, 3, 16, 16, 32, 3, 3, 1, 1, 1), True),       # RGB 3x3
                       ((2, 32, 14, 14, 64, 5, 5, 1, 2, 1), False),     # lenet-c2
                       ((2, 3, 16, 16, 32, 3, 3, 2, 1, 1), False)]:     # stride 2
        x, wt, b, kw = case(geom)
        dy = _dy(x, wt, kw, 1)
        _, kernels = _all(x, wt, b, kw, dy)
        assert (kernels[0] == "fewc") == fewc and kernels[2] == fewc, (geom, kernels)
        if geom[1] < 16:
            assert kernels[1] == ("fewc" if fewc and geom[1] == 3 else "col2im"), kernels
        old = conv.set_fewc_mode(0)
        try:
            _, kernels = _all(x, wt, b, kw, dy)
            assert "fewc" not in kernels[:2] and not kernels[2], kernels
        finally:
            conv.set_fewc_mode(old)
    with pytest.raises(ValueError, match="mode must be 0 or 1, got 3"):
        conv.set_fewc_mode(3)
