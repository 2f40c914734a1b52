"""float32 convolution on the Winograd kernel (csrc/conv/swino.c) in cycnn.ops: the forward pass
and the stride-1 dx of conv2d against cycnn.reference (float64), every SIMD path against the
portable one, 1/2/3 threads (the same bits), the fused bias + ReLU store, asymmetric padding,
which kernel each call runs (the rule shared with the inference plan), and where a NaN goes.

Tolerance: _conv_cases.close bounds the error by rtol * (max |exact| + 1). The direct kernels
are held to rtol 2e-6; Winograd's transforms amplify float32 rounding (swino.c's note: 5e-6
absolute on outputs of size 4 for F(2x2, 5x5) where direct convolution gives 8e-7, about 6x),
and on these unit-normal cases it measured up to 2.3e-6 relative (lenet-c2's dx, 64 channels of
5x5). WINO_RTOL = 5e-6 keeps 2x over that; a wrong tap, tile or padding errs by O(1).
"""
import numpy as np
import pytest

import cycnn
from cycnn import _threads, ops, reference
from cycnn._kernels import conv
from cycnn.models import plan as plan_mod

from _conv_cases import SUPPORTED, case, close, restore_switches  # noqa: F401 (fixture)

WINO_RTOL = 5e-6


@pytest.fixture(autouse=True)
def winograd_everywhere():
    """Winograd mode 2: every 3x3 / 5x5 stride-1 convolution with N >= threads, whatever its
    channel and pixel counts, so that small cases test the kernel (restore_switches puts mode 1
    back; the tests of the default rule set it themselves)."""
    conv.set_winograd_mode(2)


# (N, C, H, W, K, R, S, stride, padding, dilation); dx runs Winograd where x has at least 16
# channels (below that, dx is col2im).
GEOMETRIES = [
    (2, 32, 14, 14, 64, 5, 5, 1, 2, 1),         # lenet-c2 ('same'): 7x7 blocks of 2x2
    (3, 16, 9, 11, 17, 5, 5, 1, 0, 1),          # 'valid', odd 5x7 outputs; K 17: 2 panels
    (2, 20, 7, 13, 18, 5, 5, 1, (1, 3), 1),     # padding differs per axis; dx padding (3, 1)
    (2, 12, 13, 11, 20, 3, 3, 1, 1, 1),         # C 12 (not a multiple of 8), partial tiles
    (3, 8, 10, 9, 7, 3, 3, 1, 0, 1),            # C 8 (the threshold), K 7 < 8
    (2, 24, 9, 8, 40, 3, 3, 1, 3, 1),           # padding 3 > reach 2: dx padding -1
    (2, 17, 5, 5, 16, 3, 3, 1, "same", 1),      # one 4x4 block + a 1-pixel edge
    (2, 16, 6, 30, 9, 3, 3, 1, 2, 1),           # wide: 8 tiles per row, K 9
    # many channels: the image in blocks of tile rows (V of a block within 256 KiB), each
    # reading the input rows it shares with the block before from the end of its HWC copy
    (2, 130, 30, 18, 20, 3, 3, 1, 1, 1),        # 4 blocks of 2 tile rows; dx: C 130 panels
    (2, 136, 13, 22, 18, 5, 5, 1, 2, 1),        # 5x5: blocks of 1 tile row (4 rows shared)
]


def _ids(g):
    return "x".join(map(str, g[:7])) + f"-p{g[8]}"


def _run(x, wt, b, kw, dy):
    y = ops.conv2d(x, wt, b, **kw)
    fwd = conv.last_conv_kernel()
    dx, _, _ = ops.conv2d_backward(dy, x, wt, **kw)
    return (y, dx), (fwd, conv.last_conv_kernel())


def _want(x, wt, b, kw, dy):
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, wt, b, dy))
    return (reference.conv2d(x64, w64, b64, **kw),
            reference.conv2d_backward(dy64, x64, w64, **kw)[0])


def _dy(x, wt, kw, seed):
    shape = ops.conv2d(x, wt, **kw).shape
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _expected_kernels(c, k, r, pixels_y, pixels_x, rule):
    """(forward, dx) kernels `rule` gives (dx's input channels are dy's K, its pixels x's; dx
    needs x's C >= 16 to be a convolution: below that it is col2im)."""
    fwd = "winograd" if rule(c, r, r, pixels=pixels_y) else "direct"
    dx = "winograd" if rule(k, r, r, pixels=pixels_x) else "direct"
    return fwd, dx if c >= 16 else "col2im"




@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("geom", GEOMETRIES, ids=_ids)
def test_matches_reference_and_generic(path, geom):
    x, wt, b, kw = case(geom)
    dy = _dy(x, wt, kw, 1)
    want = _want(x, wt, b, kw, dy)
    cycnn.set_num_threads(1)
    conv.simd_select("generic")
    generic, kernels = _run(x, wt, b, kw, dy)
    assert kernels == ("winograd", "winograd" if geom[1] >= 16 else "col2im")
    conv.simd_select(path)
    got, _ = _run(x, wt, b, kw, dy)
    for name, g, gen, exp in zip(("y", "dx"), got, generic, want):
        close(g, exp, f"{name} via {path}", WINO_RTOL)
        close(g, gen.astype(np.float64), f"{name}: {path} vs generic", WINO_RTOL)


@pytest.mark.parametrize("geom", [(2, 3, 11, 9, 5, 3, 3, 1, 1, 1),     # C 3, K 5
                                  (2, 4, 8, 10, 6, 5, 5, 1, 2, 1),     # C 4 for 5x5
                                  (2, 16, 9, 9, 2, 5, 5, 1, 0, 1)],    # dx from 2 channels
                         ids=_ids)
def test_mode_2_runs_few_channels_too(geom):
    x, wt, b, kw = case(geom, seed=3)
    dy = _dy(x, wt, kw, 4)
    conv.set_winograd_mode(2)
    got, kernels = _run(x, wt, b, kw, dy)
    assert kernels == ("winograd", "winograd" if geom[1] >= 16 else "col2im")
    for name, g, exp in zip(("y", "dx"), got, _want(x, wt, b, kw, dy)):
        close(g, exp, f"{name} mode 2", WINO_RTOL)


def test_mode_0_and_the_rule_keep_other_convolutions_off_winograd():
    x, wt, b, kw = case((8, 32, 10, 10, 24, 5, 5, 1, 2, 1), seed=5)
    dy = _dy(x, wt, kw, 6)
    want = _want(x, wt, b, kw, dy)
    conv.set_winograd_mode(0)
    got, kernels = _run(x, wt, b, kw, dy)
    assert kernels == ("direct", "direct")
    for name, g, exp in zip(("y", "dx"), got, want):
        close(g, exp, f"{name} mode 0")
    conv.set_winograd_mode(1)
    for geom in [(2, 8, 9, 9, 8, 5, 5, 1, 2, 1),        # 5x5 below 16 channels
                 (2, 16, 9, 9, 8, 3, 3, 2, 1, 1),       # stride 2
                 (2, 16, 9, 9, 8, 3, 3, 1, 2, 2),       # dilation 2
                 (2, 16, 9, 9, 8, 3, 5, 1, 1, 1),       # 3x5
                 (2, 16, 9, 9, 8, 7, 7, 1, 3, 1),       # 7x7
                 (1, 8, 64, 64, 512, 3, 3, 1, 1, 1)]:   # workspace (output-sized) > im2col's
        x, wt, b, kw = case(geom)
        ops.conv2d(x, wt, b, **kw)
        assert conv.last_conv_kernel() == "direct", geom
    with pytest.raises(ValueError, match="mode must be 0, 1 or 2, got 3"):
        conv.set_winograd_mode(3)


# (N, C, H, W, K, R): the default rule on channels (forward: C, dx: K) and on the call's output
# pixels (N*Ho*Wo, 'same' padding: N*H*W), at and just below each threshold
RULE_CASES = [
    (3, 16, 16, 16, 16, 3),     # 768 pixels, 16 channels each way: Winograd both
    (2, 16, 16, 16, 16, 3),     # 512 pixels: the filter transform would not pay
    (4, 32, 14, 14, 32, 5),     # 784 pixels: both
    (2, 32, 14, 14, 32, 5),     # 392
    (1, 8, 28, 28, 8, 3),       # 8 channels for 3x3 (dx col2im: x has 8 channels)
    (1, 7, 28, 28, 8, 3),       # 7
    (4, 15, 14, 14, 16, 5),     # 15 channels for 5x5: forward direct (dx col2im)
    (4, 16, 14, 14, 15, 5),     # forward Winograd, dx from dy's 15 channels direct
]


@pytest.mark.parametrize("geom", RULE_CASES, ids=lambda g: "x".join(map(str, g)))
def test_default_rule_counts_channels_and_pixels(geom):
    n, c, h, w, k, r = geom
    x, wt, b, kw = case((n, c, h, w, k, r, r, 1, "same", 1), seed=14)
    dy = _dy(x, wt, kw, 15)
    conv.set_winograd_mode(1)
    cycnn.set_num_threads(1)
    got, kernels = _run(x, wt, b, kw, dy)
    px = n * h * w
    assert kernels == _expected_kernels(c, k, r, px, px, conv.winograd_applies)
    for name, g, exp in zip(("y", "dx"), got, _want(x, wt, b, kw, dy)):
        close(g, exp, f"{name} default rule", WINO_RTOL)
    assert ("winograd" in kernels) == (RULE_CASES.index(geom) in (0, 2, 4, 7))


def test_plan_and_training_share_the_rule():
    for c in (1, 7, 8, 15, 16, 64):
        for r, s in ((3, 3), (5, 5), (3, 5), (7, 7), (1, 1)):
            for stride, dil in (((1, 1), (1, 1)), ((2, 2), (1, 1)), ((1, 1), (2, 2))):
                applies = conv.winograd_applies(c, r, s, *stride, *dil)
                kind = plan_mod.conv_kernel((16, c, r, s), stride, dil)
                assert (kind == "winograd") == applies, (c, r, s, stride, dil)
                assert applies == (r == s and r in (3, 5) and stride == (1, 1) and
                                   dil == (1, 1) and c >= {3: 8, 5: 16}[r])
                for px in (767, 768):
                    assert conv.winograd_applies(c, r, s, *stride, *dil, pixels=px) == \
                        (applies and px >= 768)


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("has_bias", [True, False])
def test_fused_bias_relu_and_asymmetric_padding(path, has_bias):
    """The kernel entry (conv.conv2d_forward) with top/left padding (2, 1) and output sizes
    that leave bottom/right padding (0, 2) for 3x3, (0, 4) for 5x5: blocks cut by the edges."""
    rng = np.random.default_rng(8)
    for r, pt, pl, ho, wo in ((3, 2, 1, 10, 10), (5, 2, 1, 8, 10)):
        n, c, h, w, k = 2, 16, 10, 9, 19
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((k, c, r, r)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        pb, pr = ho + r - 1 - h - pt, wo + r - 1 - w - pl
        assert pb >= 0 and pr >= 0 and (pb, pr) != (pt, pl)
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        want = np.maximum(reference.conv2d(xp, wt.astype(np.float64),
                                           b.astype(np.float64) if has_bias else None), 0)
        conv.simd_select(path)
        y = np.empty((n, k, ho, wo), np.float32)
        conv.conv2d_forward(x, wt, b if has_bias else np.zeros(0, np.float32), has_bias, y,
                            1, 1, pt, pl, 1, 1, 1, relu=True)
        assert conv.last_conv_kernel() == "winograd"
        assert (y >= 0).all() and (y == 0).sum() > y.size // 4
        close(y, want, f"{r}x{r} relu via {path}", WINO_RTOL)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_give_the_same_bits(threads):
    """N >= threads: one image per thread (the filters packed in parallel, one 16-filter panel
    per iteration); y and dx are the same bits on any thread count, and again on a rerun."""
    if threads > 1 and not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    geom = (3, 24, 12, 11, 37, 3, 3, 1, 1, 1)            # K 37: 3 panels
    x, wt, b, kw = case(geom, seed=9)
    dy = _dy(x, wt, kw, 10)
    cycnn.set_num_threads(1)
    one, _ = _run(x, wt, b, kw, dy)
    with _threads.force_parallel():
        cycnn.set_num_threads(threads)
        for _ in range(2):
            y = ops.conv2d(x, wt, b, **kw)
            assert conv.last_parallel_region() == ("conv2d_forward", threads)
            assert conv.last_conv_kernel() == "winograd"
            dx = ops.conv2d_backward(dy, x, wt, **kw)[0]
            assert conv.last_parallel_region() == ("conv2d_backward", threads)
            assert conv.last_conv_kernel() == "winograd"
            np.testing.assert_array_equal(y, one[0])
            np.testing.assert_array_equal(dx, one[1])
    for name, a, e in zip(("y", "dx"), one, _want(x, wt, b, kw, dy)):
        close(a, e, f"{name} {threads} threads", WINO_RTOL)


def test_fewer_images_than_threads_stay_on_the_direct_kernel():
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    x, wt, b, kw = case((1, 16, 12, 12, 32, 3, 3, 1, 1, 1), seed=11)
    with _threads.force_parallel():
        cycnn.set_num_threads(2)
        y = ops.conv2d(x, wt, b, **kw)
    assert conv.last_parallel_region() == ("conv2d_forward_split", 2)
    assert conv.last_conv_kernel() == "direct"
    close(y, _want(x, wt, b, kw, np.zeros((1, 32, 12, 12), np.float32))[0], "split")


def _winograd_reach(shape, pixel, pads, r):
    """Outputs (Ho x Wo mask) a NaN at input `pixel` (row, col) reaches under F(m x m, r x r):
    outputs of each m x m block whose 6x6 input tile (padded rows ty*m .. ty*m + 5) holds it.
    Per axis, at tile offset 1..4 all m of them: B^T's columns 1..4 have no zero, so the NaN
    fills a row (column) of V, which every output's A^T row reads; at offset 0 (5) only the
    first (last) output, as in direct convolution (B^T's column 0 (5) and A^T's column 0 (5)
    each have one non-zero, and the transforms skip zero coefficients)."""
    (ho, wo), m = shape, {3: 4, 5: 2}[r]
    reach = np.zeros((ho, wo), bool)
    pr, pc = pixel[0] + pads[0], pixel[1] + pads[1]

    def outputs(offset):
        return [0] if offset == 0 else [m - 1] if offset == 5 else range(m)
    for ty in range((ho + m - 1) // m):
        for tx in range((wo + m - 1) // m):
            if ty * m <= pr < ty * m + 6 and tx * m <= pc < tx * m + 6:
                for a in outputs(pr - ty * m):
                    for b in outputs(pc - tx * m):
                        if ty * m + a < ho and tx * m + b < wo:
                            reach[ty * m + a, tx * m + b] = True
    return reach


def _window_reach(shape, pixel, pads, r):
    """Outputs whose r x r window holds the pixel (what direct convolution reaches)."""
    reach = np.zeros(shape, bool)
    pr, pc = pixel[0] + pads[0], pixel[1] + pads[1]
    reach[max(0, pr - r + 1):pr + 1, max(0, pc - r + 1):pc + 1] = True
    return reach


@pytest.mark.parametrize("r, pixel", [(5, (6, 9)), (5, (0, 13)), (3, (5, 4)), (3, (11, 0))])
def test_nan_reaches_its_tiles_blocks_and_nothing_beyond(r, pixel):
    """A NaN in x reaches the outputs of the blocks whose input tile holds it (_winograd_reach;
    all filters; for 3x3 more than the outputs whose window holds it) and nothing else, in image 1
    only; a NaN in dy the same for dx, through dx's geometry (padding R-1-pt)."""
    pad = r // 2
    x, wt, b, kw = case((2, 16, 12, 14, 20, r, r, 1, pad, 1), seed=12)
    dy = _dy(x, wt, kw, 13)
    x[1, 2][pixel] = np.nan
    dy[1, 3][pixel] = np.nan
    y = ops.conv2d(x, wt, b, **kw)
    assert conv.last_conv_kernel() == "winograd"
    dx = ops.conv2d_backward(dy, x, wt, **kw)[0]
    assert conv.last_conv_kernel() == "winograd"
    for name, out, dpad in (("y", y, pad), ("dx", dx, r - 1 - pad)):
        bad = np.isnan(out)
        assert not bad[0].any(), name
        reach = _winograd_reach(out.shape[2:], pixel, (dpad, dpad), r)
        assert (bad[1] == reach[None]).all(), f"{name}: NaN at {np.argwhere(bad[1].any(0))}"
        window = _window_reach(out.shape[2:], pixel, (dpad, dpad), r)
        assert (reach >= window).all(), name
        # F(2x2, 5x5): the same outputs as direct convolution; F(4x4, 3x3): more
        assert (reach.sum() > window.sum()) == (r == 3), name
