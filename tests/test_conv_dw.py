"""float32 weight gradient without the im2col matrix (csrc/conv/sconv_dw.c): dw and db against
cycnn.reference (float64) and against the im2col + GEMM path, every SIMD path against the
portable one, 1 and 2 threads, fewer images than threads (the split over taps), determinism."""
import numpy as np
import pytest

import cycnn
from cycnn import _threads, ops, reference
from cycnn._kernels import conv

from _conv_cases import (SUPPORTED, case, close,  # noqa: F401 (fixtures)
                         no_winograd, restore_switches)

pytestmark = pytest.mark.usefixtures("no_winograd")   # these test sconv_dw, not Winograd's dw

# (N, C, H, W, K, R, S, stride, padding, dilation). C*R*S and K sweep the tile edges: taps not a
# multiple of 6 (groups of 1..6), K < 8 (8-wide panel), 8 < K < 16 (zero-padded panel), K past
# 16; Wo = 1 (one pixel a row), more pixels than one block (256) with rows across blocks.
GEOMETRIES = [
    (2, 3, 13, 11, 17, 3, 3, 1, 1, 1),          # CRS 27, K 17
    (3, 1, 28, 28, 8, 5, 5, 1, 2, 1),           # first layer: CRS 25, K 8, L 784 (4 blocks)
    (2, 1, 5, 4, 3, 1, 1, 1, 0, 1),             # CRS 1, K 3, x used in place (no padding)
    (2, 7, 9, 6, 5, 5, 3, 1, (2, 1), 1),        # CRS 105, K 5
    (1, 4, 5, 1, 6, 3, 1, 1, (1, 0), 1),        # Wo = 1
    (2, 5, 12, 12, 9, 1, 1, 1, 1, 1),           # 1x1 with padding 1 > reach 0
    (2, 6, 10, 9, 7, 3, 3, 1, "same", 2),       # dilation 2
    (2, 4, 12, 10, 13, 4, 4, 1, "same", 1),     # even filter: asymmetric padding
    (2, 5, 11, 13, 6, 3, 3, 2, 1, 1),           # stride 2
    (2, 3, 12, 12, 20, 3, 3, 2, "same", 1),     # stride 2 'same': bottom row never read
    (1, 3, 9, 20, 4, 3, 3, (1, 2), "same", 1),  # rectangular stride
    (2, 33, 7, 7, 40, 2, 2, 1, 0, 1),           # CRS 132, K 40, no padding: x in place
    (2, 2, 23, 29, 33, 2, 3, 1, (1, 0), (2, 1)),  # L 667: 3 blocks, rows split between them
    (2, 16, 8, 8, 32, 1, 1, 1, 0, 1),           # 1x1: the rows of a block form one run
]


def _case(geom, seed=0):
    """x, w, dy and the conv keywords of a geometry."""
    x, wt, _, kw = case(geom, seed)
    ho, wo = reference.conv2d(x[:1, :1], wt[:1, :1], **kw).shape[2:]
    dy = np.random.default_rng(seed + 1).standard_normal(
        (x.shape[0], wt.shape[0], ho, wo)).astype(np.float32)
    return x, wt, dy, kw


def _grads(x, wt, dy, kw):
    _, dw, db = ops.conv2d_backward(dy, x, wt, compute_dx=False, **kw)
    return dw, db


def _want(x, wt, dy, kw):
    _, dw, db = reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                          wt.astype(np.float64), compute_dx=False, **kw)
    return dw, db


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("geom", GEOMETRIES, ids=lambda g: "x".join(map(str, g[:7])))
def test_matches_reference_and_generic(path, geom):
    x, wt, dy, kw = _case(geom)
    want = _want(x, wt, dy, kw)
    conv.simd_select("generic")
    generic = _grads(x, wt, dy, kw)
    conv.simd_select(path)
    got = _grads(x, wt, dy, kw)
    for name, g, gen, exp in zip(("dw", "db"), got, generic, want):
        close(g, exp, f"{name} via {path}")
        close(g, gen.astype(np.float64), f"{name}: {path} vs generic")


@pytest.mark.parametrize("geom", GEOMETRIES[::3], ids=lambda g: "x".join(map(str, g[:7])))
def test_equals_im2col_path_and_dx_unchanged(geom):
    """set_implicit_gemm(False) gives the im2col + GEMM weight gradient; computing dx alongside
    (compute_dx True) leaves dw and db bit-identical."""
    x, wt, dy, kw = _case(geom, seed=2)
    conv.set_implicit_gemm(False)
    old = _grads(x, wt, dy, kw)
    conv.set_implicit_gemm(True)
    new = _grads(x, wt, dy, kw)
    dx, dw, db = ops.conv2d_backward(dy, x, wt, **kw)
    for name, a, e in zip(("dw", "db"), new, old):
        close(a, e.astype(np.float64), f"{name}: direct vs im2col")
    np.testing.assert_array_equal(dw, new[0])
    np.testing.assert_array_equal(db, new[1])
    close(dx, reference.conv2d_backward(dy.astype(np.float64), x.astype(np.float64),
                                         wt.astype(np.float64), **kw)[0], "dx", rtol=1e-5)


@pytest.fixture
def parallel():
    if not cycnn.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    with _threads.force_parallel():
        yield


@pytest.mark.parametrize("geom", [(5, 16, 14, 14, 24, 5, 5, 1, 2, 1),
                                  (3, 3, 12, 12, 20, 3, 3, 2, "same", 1)],
                         ids=["5img", "3img-stride2"])
def test_two_threads_deterministic(geom, parallel):
    """One image per thread, partial sums added in thread order: the same bits every run."""
    x, wt, dy, kw = _case(geom, seed=4)
    cycnn.set_num_threads(2)
    first = _grads(x, wt, dy, kw)
    assert conv.last_parallel_region() == ("conv2d_backward", 2)
    again = _grads(x, wt, dy, kw)
    for a, e in zip(first, again):
        np.testing.assert_array_equal(a, e)
    want = _want(x, wt, dy, kw)
    cycnn.set_num_threads(1)
    one = _grads(x, wt, dy, kw)
    for name, a, b, e in zip(("dw", "db"), first, one, want):
        close(a, e, f"{name} 2 threads")
        close(b, e, f"{name} 1 thread")


@pytest.mark.parametrize("path", SUPPORTED)
@pytest.mark.parametrize("geom", [(1, 8, 9, 11, 19, 3, 3, 1, 1, 1),     # CRS 72: 36 + 36 taps
                                  (1, 3, 10, 10, 7, 3, 3, 2, 1, 2)],    # CRS 27: 18 + 9 taps
                         ids=["1img", "1img-stride2-dil2"])
def test_fewer_images_than_threads_splits_taps(path, geom, parallel):
    """One image on 2 threads (the kernel called directly: cycnn.ops gives the backward pass at
    most one thread per image): each thread runs the image on its own range of taps, which
    gives the same bits as 1 thread (every tap's sum is formed the same way)."""
    x, wt, dy, kw = _case(geom, seed=5)
    conv.simd_select(path)
    n, c, h, w, k, r, s, stride, padding, dilation = geom
    geometry = (stride, stride, padding, padding, dilation, dilation)

    def kernel(threads):    # (cycnn.ops gives backward at most one thread per image)
        dw = np.full(wt.shape, np.nan, np.float32)
        db = np.full(k, np.nan, np.float32)
        conv.conv2d_backward(dy, x, wt, None, dw, db, *geometry, threads)
        return dw, db

    split = kernel(2)
    assert conv.last_parallel_region() == ("conv2d_backward_split", 2)
    for name, a, e in zip(("dw", "db"), split, _want(x, wt, dy, kw)):
        close(a, e, f"{name} split over taps")
    for a, e in zip(split, kernel(1)):
        np.testing.assert_array_equal(a, e)


def test_nan_reaches_only_the_taps_that_read_it():
    """A NaN in x reaches dw[:, c, r, s] only for the taps whose window covers it, and no NaN
    comes from the zero padding, the panel's zero filters or the padded-image copy."""
    x, wt, dy, kw = _case((2, 2, 8, 8, 11, 3, 3, 1, 1, 1), seed=6)
    x[1, 1, 0, 0] = np.nan          # top-left pixel, padding 1: read by taps (r, s) with r, s <= 1
    dw, db = _grads(x, wt, dy, kw)
    assert not np.isnan(db).any()
    assert not np.isnan(dw[:, 0]).any()
    bad = np.isnan(dw[:, 1])
    assert bad[:, :2, :2].all() and not bad[:, 2, :].any() and not bad[:, :, 2].any()
