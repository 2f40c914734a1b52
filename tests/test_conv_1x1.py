"""float32 1x1 convolutions (stride 1, no padding) on their path: the implicit GEMM reading the
image in place (csrc/conv/sconv_igemm.c, pointwise), forward and dx, the weight gradient of
csrc/conv/sconv_dw.c, both prefetching the next image's operands (csrc/conv/prefetch.h).
Against the float64 oracle (cycnn.reference), the portable path against the AVX2 one, the
previous path (set_pointwise_mode(0): a padded copy per image, no prefetching) bit for bit, 1 and
2 threads, read-only and non-contiguous inputs through cycnn.ops."""
import numpy as np
import pytest

import cycnn
from cycnn import ops, reference
from cycnn._kernels import conv

from _conv_cases import SUPPORTED, close, restore_switches  # noqa: F401 (fixture)

# (N, C, H, W, K): odd pixel counts (L = 63, 15, 7: not multiples of 8 or 16), C and K not
# multiples of 16 (K = 5: one partial register tile; K = 64: 10 full tiles + 4 rows), depth
# past one depth block (C = 300: 2 x 150), pixels past one pixel block (L = 576: 2 x 288),
# batch 1 and several.
SHAPES = [
    (3, 20, 7, 9, 13),
    (1, 5, 3, 5, 7),
    (4, 33, 5, 3, 5),
    (2, 128, 4, 4, 64),
    (2, 300, 3, 5, 10),
    (1, 16, 24, 24, 9),
    (5, 17, 1, 7, 22),
]
IDS = ["x".join(map(str, s)) for s in SHAPES]


@pytest.fixture(autouse=True)
def restore_mode():
    yield
    conv.set_pointwise_mode(1)


def _case(shape, seed=0):
    n, c, h, w, k = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c, 1, 1)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    dy = rng.standard_normal((n, k, h, w)).astype(np.float32)
    return x, wt, b, dy


def _run(x, wt, b, dy):
    """y (+ bias), dx, dw, db through cycnn.ops; asserts the forward ran the implicit GEMM."""
    y = ops.conv2d(x, wt, b)
    assert conv.last_conv_kernel() == "igemm"
    return (y,) + tuple(ops.conv2d_backward(dy, x, wt))


def _want(x, wt, b, dy):
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, wt, b, dy))
    return (reference.conv2d(x64, w64, b64),) + tuple(reference.conv2d_backward(dy64, x64, w64))


def _check(got, want, what):
    # float32 sums of C (forward, dw: N*H*W) products of unit normals
    for name, g, e in zip(("y", "dx", "dw", "db"), got, want):
        close(g, e, f"{name} {what}", rtol=1e-5)


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_matches_reference_and_generic(path, shape):
    x, wt, b, dy = _case(shape)
    cycnn.set_num_threads(1)
    conv.simd_select("generic")
    generic = _run(x, wt, b, dy)
    conv.simd_select(path)
    got = _run(x, wt, b, dy)
    want = _want(x, wt, b, dy)
    _check(got, want, f"via {path}")
    _check(generic, want, "via generic")
    for name, g, e in zip(("y", "dx", "dw", "db"), got, generic):
        close(g, e.astype(np.float64), f"{name}: {path} vs generic", rtol=1e-5)


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_same_bits_as_the_padded_copy_path(path, shape):
    """The image read in place and the prefetches change nothing: the B panels hold the same
    values in the same order as when packed from a padded copy."""
    x, wt, b, dy = _case(shape, seed=1)
    cycnn.set_num_threads(1)
    conv.simd_select(path)
    conv.set_pointwise_mode(0)
    old = _run(x, wt, b, dy)
    conv.set_pointwise_mode(1)
    new = _run(x, wt, b, dy)
    for name, a, e in zip(("y", "dx", "dw", "db"), new, old):
        np.testing.assert_array_equal(a, e, err_msg=f"{name} {shape}")


@pytest.mark.parametrize("shape", [(5, 20, 7, 9, 13), (2, 128, 4, 4, 64)], ids=["5img", "2img"])
def test_one_and_two_threads(shape, threads):
    """1 and 2 threads (conftest's `threads`), one image per thread: close to the oracle, dw and
    db the same bits every run (partial sums added in thread order), y and dx the same bits as
    on 1 thread."""
    x, wt, b, dy = _case(shape, seed=2)
    y = ops.conv2d(x, wt, b)
    assert conv.last_parallel_region() == ("conv2d_forward", threads)
    got = (y,) + tuple(ops.conv2d_backward(dy, x, wt))
    assert conv.last_parallel_region() == ("conv2d_backward", threads)
    _check(got, _want(x, wt, b, dy), f"{threads} threads")
    for name, a, e in zip(("y", "dx", "dw", "db"), got, _run(x, wt, b, dy)):
        np.testing.assert_array_equal(a, e, err_msg=f"{name}: {threads} threads, run twice")
    cycnn.set_num_threads(1)
    for name, a, e in zip(("y", "dx"), got, _run(x, wt, b, dy)):
        np.testing.assert_array_equal(a, e, err_msg=f"{name}: {threads} threads vs 1")


@pytest.mark.parametrize("path", SUPPORTED)
def test_one_image_on_two_threads(path):
    """Fewer images than threads (the kernel called directly on 2 threads): the forward pass
    splits the image's pixels between the threads (both reading it in place), the same bits as
    1 thread."""
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    x, wt, b, dy = _case((1, 24, 9, 15, 11), seed=3)
    conv.simd_select(path)
    n, c, h, w = x.shape
    y1 = np.full((n, 11, h, w), np.nan, np.float32)
    y2 = y1.copy()
    conv.conv2d_forward(x, wt, b, True, y2, 1, 1, 0, 0, 1, 1, 2)
    assert conv.last_parallel_region() == ("conv2d_forward_split", 2)
    conv.conv2d_forward(x, wt, b, True, y1, 1, 1, 0, 0, 1, 1, 1)
    np.testing.assert_array_equal(y2, y1)
    close(y2, reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                               b.astype(np.float64)), "y split", rtol=1e-5)


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("has_bias", [True, False])
def test_bias_and_relu_fused_per_tile(path, has_bias):
    """The epilogue of each register tile (AVX2 or portable): + bias, then ReLU, a NaN kept
    (x[1, 3, 2, 5] = NaN poisons exactly pixel (2, 5) of image 1, every filter)."""
    x, wt, b, _ = _case((2, 19, 5, 18, 14), seed=4)
    x[1, 3, 2, 5] = np.nan
    conv.simd_select(path)
    y = np.empty((2, 14, 5, 18), np.float32)
    conv.conv2d_forward(x, wt, b, has_bias, y, 1, 1, 0, 0, 1, 1, 1, True)
    want = reference.conv2d(x.astype(np.float64), wt.astype(np.float64),
                            b.astype(np.float64) if has_bias else None)
    bad = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(y), bad)
    assert bad.sum() == 14 and bad[1, :, 2, 5].all()
    close(np.where(bad, 0, y), np.where(bad, 0, np.maximum(want, 0)), "relu(y)", rtol=1e-5)
    assert (y[~bad] >= 0).all() and (y == 0).any()


def test_read_only_and_non_contiguous_inputs():
    """Views (a channel-sliced, column-strided x; a transposed dy; read-only arrays) go through
    cycnn.ops to the same results as contiguous copies."""
    rng = np.random.default_rng(5)
    big = rng.standard_normal((3, 40, 6, 14)).astype(np.float32)
    x = big[:, ::2, :, ::2]                          # (3, 20, 6, 7), non-contiguous
    wt = rng.standard_normal((9, 20, 1, 1)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    dy = np.ascontiguousarray(rng.standard_normal((3, 9, 7, 6)).astype(np.float32)
                              ).transpose(0, 1, 3, 2)  # (3, 9, 6, 7), non-contiguous
    for a in (big, wt, b, dy):
        a.flags.writeable = False
    assert not x.flags.c_contiguous and not dy.flags.c_contiguous
    got = _run(x, wt, b, dy)
    want = _run(np.ascontiguousarray(x), wt.copy(), b.copy(), np.ascontiguousarray(dy))
    for name, a, e in zip(("y", "dx", "dw", "db"), got, want):
        np.testing.assert_array_equal(a, e, err_msg=name)
    _check(got, _want(x, wt, b, dy), "views")


def test_set_pointwise_mode_checks_its_argument():
    with pytest.raises(ValueError, match="mode must be 0 or 1, got 2"):
        conv.set_pointwise_mode(2)
    assert conv.set_pointwise_mode(0) == 1
    assert conv.set_pointwise_mode(1) == 0
