"""float32 dx of layers with few input channels on the few-channel dx kernel
(csrc/conv/sconv_dxfew.c) in cycnn.ops: against cycnn.reference (float64) on the portable and
every SIMD path, fused into the few-channel weight gradient (dw, db checked too) and on its own,
1 and 2 threads (fewer images than threads included), determinism, where an infinity goes, the
rule, and the switch back to the kernels that ran before it.

Tolerance: _conv_cases.close bounds the error by rtol * (max |exact| + 1), rtol 2e-6: every dx
element is a float32 sum of at most K*R*S (here <= 16*49) products of unit normals, summed per
tap over k and then over the taps, so the error stays a few 1e-7 of the scale; a wrong tap,
shift, row, column mask or channel errs by O(1).
"""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv
from cycnn._threads import force_parallel

from _conv_cases import SUPPORTED, case, close, restore_switches  # noqa: F401

SIMD = [p for p in ("avx2", "avx512") if p in SUPPORTED]


@pytest.fixture(autouse=True)
def dxfew_default():
    """The default rule (set_dxfew_mode(1)) before and after every test."""
    old = conv.set_dxfew_mode(1)
    yield
    conv.set_dxfew_mode(old)


# (N, C, H, W, K, R, S, stride, padding, dilation): width-preserving padding (Wo == W)
GEOMETRIES = [
    (3, 1, 28, 28, 32, 5, 5, 1, 2, 1),          # lenet-c1: 784 pixels = 49 tiles of 16
    (2, 3, 16, 16, 16, 3, 3, 1, 1, 1),          # RGB 3x3; rows 1 KiB apart: tiles copied first
    (1, 2, 9, 13, 7, 7, 7, 1, 3, 1),            # 7x7 (taps 4 + 3), W 13, a partial last tile
    (2, 4, 11, 27, 9, 5, 3, 1, (2, 1), 1),      # C 4, R != S, W 27, H != W
    (2, 3, 7, 13, 5, 3, 5, 1, (0, 2), 1),       # 'valid' rows: Ho = H - 2 (rows by offset)
    (2, 1, 6, 4, 3, 3, 7, 1, (3, 3), 1),        # W 4 < S: most lanes of a tile masked
    (2, 2, 10, 9, 6, 4, 4, 1, "same", 1),       # even filter: padding (1, 2) each way
    (2, 3, 12, 10, 6, 3, 3, 1, (4, 1), 1),      # pt 4 > R - 1: Ho > H, rows dropped
    (2, 4, 28, 28, 16, 5, 5, 1, 2, 1),          # dw not on the few-channel kernel: dx alone
]


def _ids(g):
    return "x".join(map(str, g[:7])) + f"-p{g[8]}"


def _dy(x, wt, kw, seed):
    shape = ops.conv2d(x, wt, **kw).shape
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _want(x, wt, kw, dy):
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, wt, dy))
    return reference.conv2d_backward(dy64, x64, w64, **kw)


def _backward(x, wt, kw, dy):
    """dx, dw, db through cycnn.ops and the dx kernel that ran."""
    got = ops.conv2d_backward(dy, x, wt, **kw)
    return got, conv.last_conv_kernel()


@pytest.mark.parametrize("geom", GEOMETRIES, ids=_ids)
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_reference_on_every_path(geom, threads):
    """dx, dw and db against the float64 reference on the portable path and every SIMD path,
    each SIMD result next to the portable one. threads 2 runs 2 threads (cycnn.ops gives a
    call at most one thread per image: 1 for the single-image geometry)."""
    x, wt, b, kw = case(geom, seed=1)
    dy = _dy(x, wt, kw, 2)
    want = _want(x, wt, kw, dy)
    cycnn.set_num_threads(threads)
    results = {}
    for path in SUPPORTED:
        conv.simd_select(path)
        with force_parallel():
            got, kernel = _backward(x, wt, kw, dy)
        assert conv.last_parallel_region()[1] == min(threads, geom[0])
        assert kernel == "dxfew", (path, geom, kernel)
        for g, w_, name in zip(got, want, ("dx", "dw", "db")):
            close(g, w_, f"{name} {path} {geom} threads {threads}")
        results[path] = got
    for path in SUPPORTED[1:]:
        for g, r, name in zip(results[path], results["generic"], ("dx", "dw", "db")):
            close(g, r.astype(np.float64), f"{name} {path} vs generic {geom}")


@pytest.mark.parametrize("path", SIMD or [pytest.param(
    "avx2", marks=pytest.mark.skip(reason="this CPU has no AVX2: only the portable path runs"))])
def test_simd_path_against_generic_lenet(path):
    """The AVX2 tile loop (lenet-c1's 5 taps x 16 pixels) against the portable twin and the
    reference, on 5 images."""
    x, wt, b, kw = case((5, 1, 28, 28, 32, 5, 5, 1, 2, 1), seed=3)
    dy = _dy(x, wt, kw, 4)
    want = _want(x, wt, kw, dy)[0]
    conv.simd_select("generic")
    gen, kernel = _backward(x, wt, kw, dy)
    assert kernel == "dxfew"
    conv.simd_select(path)
    got, kernel = _backward(x, wt, kw, dy)
    assert kernel == "dxfew"
    close(got[0], want, f"dx {path}")
    close(got[0], gen[0].astype(np.float64), f"dx {path} vs generic")


def test_fused_with_the_weight_gradient():
    """lenet-c1: the weight gradient runs the few-channel kernel and dx rides in its image
    loop; dx alone (need_dw False, its own loop) gives the same dx bit for bit."""
    x, wt, b, kw = case((4, 1, 28, 28, 32, 5, 5, 1, 2, 1), seed=5)
    dy = _dy(x, wt, kw, 6)
    got, kernel = _backward(x, wt, kw, dy)
    assert kernel == "dxfew" and conv.last_dw_fewc()
    alone = np.empty_like(x)
    conv.conv2d_backward(dy, x, wt, alone, np.empty_like(wt), np.empty(32, np.float32),
                         1, 1, 2, 2, 1, 1, 1, False)
    assert conv.last_conv_kernel() == "dxfew"
    assert np.array_equal(alone, got[0])
    close(alone, _want(x, wt, kw, dy)[0], "dx alone")


@pytest.mark.parametrize("n", [3, 4])
def test_dx_does_not_depend_on_the_thread_count_2_threads(n):
    """Each image's dx is one thread's: 1 and 2 threads (2 threads really run), and repeated
    calls, give the same bits."""
    x, wt, b, kw = case((n, 3, 15, 13, 12, 5, 5, 1, 2, 1), seed=7)
    dy = _dy(x, wt, kw, 8)
    cycnn.set_num_threads(1)
    one, kernel = _backward(x, wt, kw, dy)
    assert kernel == "dxfew"
    cycnn.set_num_threads(2)
    with force_parallel():
        two, _ = _backward(x, wt, kw, dy)
        assert conv.last_parallel_region() == ("conv2d_backward", 2)
        again, _ = _backward(x, wt, kw, dy)
    assert np.array_equal(one[0], two[0]) and np.array_equal(two[0], again[0])
    for g, a in zip(two, again):
        assert np.array_equal(g, a)
    close(two[0], _want(x, wt, kw, dy)[0], "dx 2 threads")


@pytest.mark.parametrize("need_dw", [True, False])
def test_one_image_on_2_threads(need_dw):
    """Fewer images than threads, straight through the kernel entry: with dw the fused loop's
    filter split (thread n runs image n's dx), without it the dx loop alone; the same dx bits
    as 1 thread."""
    x, wt, b, kw = case((1, 2, 14, 11, 10, 5, 5, 1, 2, 1), seed=16)
    dy = _dy(x, wt, kw, 17)
    out = {}
    for nt in (1, 2):
        dx, dw, db = np.empty_like(x), np.empty_like(wt), np.empty(10, np.float32)
        conv.conv2d_backward(dy, x, wt, dx, dw, db, 1, 1, 2, 2, 1, 1, nt, need_dw)
        assert conv.last_conv_kernel() == "dxfew"
        if need_dw:
            assert conv.last_parallel_region() == (
                "conv2d_backward_split" if nt == 2 else "conv2d_backward", nt)
        out[nt] = dx, dw, db
    want = _want(x, wt, kw, dy)
    assert np.array_equal(out[1][0], out[2][0])
    close(out[2][0], want[0], "dx")
    if need_dw:
        close(out[2][1], want[1], "dw")
        close(out[2][2], want[2], "db")


@pytest.mark.parametrize("path", SUPPORTED)
def test_masked_columns_add_an_exact_zero(path):
    """An infinity in dy's first and last columns reaches only the dx pixels its taps reach:
    the lanes whose column would wrap into the neighbouring row are masked to an exact 0 (an
    AND, not a product), so every other dx pixel stays finite and exact."""
    conv.simd_select(path)
    x, wt, b, kw = case((2, 2, 9, 11, 6, 3, 5, 1, (1, 2), 1), seed=9)
    dy = _dy(x, wt, kw, 10)
    dy[0, 1, 4, 10] = np.inf
    dy[1, 3, 2, 0] = -np.inf
    with np.errstate(invalid="ignore"):       # inf * 0 in the reference's products
        want = _want(x, wt, kw, dy)[0]
    got, kernel = _backward(x, wt, kw, dy)
    assert kernel == "dxfew"
    dx = got[0]
    assert np.array_equal(np.isfinite(dx), np.isfinite(want)), path
    assert (~np.isfinite(want)).sum() > 0
    ok = np.isfinite(want)
    close(np.where(ok, dx, 0), np.where(ok, want, 0), f"dx {path}")


def test_transposed_convolution_with_few_output_channels():
    """conv_transpose2d's forward pass is the dx half of the backward kernel (need_dw False):
    3 output channels, stride 1, 'same' padding go to the dxfew kernel on its own loop."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 8, 10, 12)).astype(np.float32)
    w = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    y = ops.conv_transpose2d(x, w, b, padding=2)
    assert conv.last_conv_kernel() == "dxfew"
    want = reference.conv_transpose2d(x.astype(np.float64), w.astype(np.float64),
                                      b.astype(np.float64), padding=2)
    close(y, want, "conv_transpose2d")


def test_rule_and_switch():
    """dxfew_applies: at most 4 input channels, stride 1, no dilation, Wo == W with
    0 <= pl <= S - 1. set_dxfew_mode(0) gives the kernels of before (lenet-c1: col2im, RGB:
    the few-channel kernel's channels-last path) and the same dx within the tolerance;
    geometries outside the rule keep working on the old path."""
    assert conv.dxfew_applies(1, 32, 5, 5, 28, 28, 28, 28, 2)
    assert conv.dxfew_applies(4, 8, 3, 3, 9, 13, 9, 13, 1)
    assert not conv.dxfew_applies(5, 8, 3, 3, 9, 13, 9, 13, 1)          # 5 channels
    assert not conv.dxfew_applies(1, 32, 5, 5, 28, 28, 24, 24, 0)       # 'valid' width
    assert not conv.dxfew_applies(1, 32, 5, 5, 28, 28, 14, 14, 2, sh=2, sw=2)
    assert not conv.dxfew_applies(1, 32, 3, 3, 28, 28, 28, 28, 2, dh=2, dw=2)
    assert not conv.dxfew_applies(1, 32, 3, 3, 28, 28, 28, 28, 3)       # pl > S - 1
    for geom, before in [((2, 1, 28, 28, 32, 5, 5, 1, 2, 1), "col2im"),
                         ((2, 3, 16, 16, 32, 3, 3, 1, 1, 1), "fewc")]:
        x, wt, b, kw = case(geom, seed=12)
        dy = _dy(x, wt, kw, 13)
        new, kernel = _backward(x, wt, kw, dy)
        assert kernel == "dxfew"
        assert conv.set_dxfew_mode(0) == 1
        old, kernel = _backward(x, wt, kw, dy)
        assert kernel == before
        assert conv.set_dxfew_mode(1) == 0
        for a, o, name in zip(new, old, ("dx", "dw", "db")):
            close(a, o.astype(np.float64), f"{name}: dxfew vs {before}")
    for geom in [(2, 1, 12, 12, 8, 5, 5, 1, 0, 1),       # 'valid': Wo != W
                 (2, 2, 12, 12, 8, 3, 3, 2, 1, 1)]:      # stride 2
        x, wt, b, kw = case(geom, seed=14)
        dy = _dy(x, wt, kw, 15)
        got, kernel = _backward(x, wt, kw, dy)
        assert kernel == "col2im", geom
        for g, w_, name in zip(got, _want(x, wt, kw, dy), ("dx", "dw", "db")):
            close(g, w_, f"{name} {geom}")
    with pytest.raises(ValueError, match="mode must be 0 or 1, got 2"):
        conv.set_dxfew_mode(2)
