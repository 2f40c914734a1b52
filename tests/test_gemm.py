"""The GEMM behind conv2d (``cycnn._kernels.conv.gemm``) and its SIMD dispatch.

Every micro-kernel path the CPU supports is checked against numpy ``@`` (float64 oracle) and
against the portable 'generic' path, on sizes that are not multiples of any register or cache
tile, with transposed and strided operands and several alpha/beta.
"""

import numpy as np
import pytest

from cycnn._kernels import conv  # noqa: E402

ALL_PATHS = ("generic", "avx2", "avx512")
SUPPORTED = [p for p in ALL_PATHS if conv.simd_supported(p)]
# every path, those this CPU cannot run skipped visibly (reported as skips, never dropped)
PATHS = [pytest.param(p, marks=pytest.mark.skipif(p not in SUPPORTED,
                                                  reason=f"this CPU cannot run the {p} path"))
         for p in ALL_PATHS]

# (M, N, K): every M and N of 1, 7, 31, 33, 65, 129, 300 appears; K from 1 to 600
SIZES = [
    (1, 1, 1), (1, 300, 17), (7, 1, 600), (7, 300, 1), (31, 33, 65), (33, 31, 129),
    (65, 129, 7), (129, 65, 300), (300, 7, 33), (33, 65, 255), (129, 129, 513),
    (300, 300, 600), (65, 7, 2), (31, 1, 31),
]


@pytest.fixture(autouse=True)
def restore_auto():
    """Every test leaves the dispatcher on 'auto' (the best supported path)."""
    yield
    conv.simd_select("auto")


def tol(dtype, k):
    """Tolerance for |alpha*a@b + beta*c| = O(sqrt(k)) results with O(1) entries."""
    root = max(1.0, k) ** 0.5
    return (1e-5, 2e-6 * root) if dtype == np.float32 else (1e-12, 1e-13 * root)


def run(path, a, b, c, alpha, beta):
    conv.simd_select(path)
    assert conv.simd_name() == path
    out = c.copy()
    conv.gemm(a, b, out, alpha, beta)
    return out


def operand(rng, shape, dtype, layout):
    """A (rows, cols) operand in the requested memory layout (same values either way)."""
    m = rng.standard_normal(shape).astype(dtype)
    if layout == "C":
        return m
    if layout == "transposed":                        # F-ordered: column stride 1
        return np.asfortranarray(m)
    if layout == "strided":                           # both strides > 1 element
        big = np.zeros((shape[0] * 2 + 1, shape[1] * 3 + 2), dtype=dtype)
        big[1::2, 2::3][: shape[0], : shape[1]] = m
        return big[1::2, 2::3][: shape[0], : shape[1]]
    if layout == "reversed":                          # negative strides
        return np.ascontiguousarray(m[::-1, ::-1])[::-1, ::-1]
    raise AssertionError(layout)


def assert_close(actual, expected, rtol, atol, context):
    err = np.abs(actual.astype(np.float64) - expected)
    bad = ~(err <= atol + rtol * np.abs(expected))
    assert not bad.any(), (f"{context}: shape {actual.shape}, {int(bad.sum())} mismatches, "
                           f"max abs error {err.max():.3g} (rtol={rtol:g}, atol={atol:g})")


def test_dispatch_names():
    assert "generic" in SUPPORTED
    assert conv.simd_supported("auto")
    assert not conv.simd_supported("sse9")
    conv.simd_select("auto")
    best = [p for p in ("avx512", "avx2", "generic") if p in SUPPORTED][0]
    assert conv.simd_name() == best
    for path in SUPPORTED:
        conv.simd_select(path)
        assert conv.simd_name() == path
    with pytest.raises(ValueError, match="sse9"):
        conv.simd_select("sse9")
    assert conv.simd_name() == SUPPORTED[-1]          # unchanged by the failed call
    for path in set(ALL_PATHS) - set(SUPPORTED):
        with pytest.raises(ValueError, match=path):
            conv.simd_select(path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("M, N, K", SIZES)
def test_gemm_against_numpy_and_generic(rng, path, dtype, M, N, K):
    a = operand(rng, (M, K), dtype, "C")
    b = operand(rng, (K, N), dtype, "C")
    c = rng.standard_normal((M, N)).astype(dtype)
    for alpha, beta in ((1.0, 0.0), (1.0, 1.0), (-0.5, 0.5)):
        expected = alpha * (a.astype(np.float64) @ b.astype(np.float64)) + beta * c
        got = run(path, a, b, c, alpha, beta)
        assert got.dtype == dtype
        assert_close(got, expected, *tol(dtype, K), f"{path} vs numpy M={M} N={N} K={K} "
                     f"alpha={alpha} beta={beta} {np.dtype(dtype)}")
        if path != "generic":
            generic = run("generic", a, b, c, alpha, beta)
            assert_close(got, generic.astype(np.float64), *tol(dtype, K),
                         f"{path} vs generic M={M} N={N} K={K} beta={beta}")


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout_a", ["C", "transposed", "strided", "reversed"])
@pytest.mark.parametrize("layout_b", ["C", "transposed", "strided", "reversed"])
def test_gemm_operand_strides(rng, path, dtype, layout_a, layout_b):
    M, N, K = 33, 65, 31
    a = operand(rng, (M, K), dtype, layout_a)
    b = operand(rng, (K, N), dtype, layout_b)
    c = rng.standard_normal((M, N)).astype(dtype)
    expected = 2.0 * (a.astype(np.float64) @ b.astype(np.float64)) + 0.5 * c
    got = run(path, a, b, c, 2.0, 0.5)
    assert_close(got, expected, *tol(dtype, K), f"{path} a:{layout_a} b:{layout_b}")
    a_plain, b_plain = np.ascontiguousarray(a), np.ascontiguousarray(b)
    np.testing.assert_array_equal(got, run(path, a_plain, b_plain, c, 2.0, 0.5),
                                  err_msg="strided operands must give the packed result")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gemm_beta_zero_ignores_nan_in_c(rng, path, dtype):
    M, N, K = 65, 33, 17
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = np.full((M, N), np.nan, dtype=dtype)
    c[::3] = np.inf
    got = run(path, a, b, c, 1.0, 0.0)
    assert np.isfinite(got).all(), f"{path}: NaN/inf in c leaked through beta=0"
    assert_close(got, a.astype(np.float64) @ b, *tol(dtype, K), f"{path} beta=0")
    # beta = 1 does propagate them
    got = run(path, a, b, c, 1.0, 1.0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(c))


@pytest.mark.parametrize("path", PATHS)
def test_gemm_nan_in_operands_propagates(rng, path):
    a = rng.standard_normal((7, 9))
    b = rng.standard_normal((9, 31))
    a[3, 4] = np.nan
    got = run(path, a, b, np.zeros((7, 31)), 1.0, 0.0)
    assert np.isnan(got[3]).all() and np.isfinite(np.delete(got, 3, axis=0)).all()


@pytest.mark.parametrize("path", PATHS)
def test_gemm_empty_dimensions(rng, path):
    c = rng.standard_normal((5, 4))
    got = run(path, np.zeros((5, 0)), np.zeros((0, 4)), c, 1.0, 0.5)    # K = 0: c = beta*c
    np.testing.assert_array_equal(got, 0.5 * c)
    got = run(path, np.zeros((5, 0)), np.zeros((0, 4)), np.full((5, 4), np.nan), 1.0, 0.0)
    np.testing.assert_array_equal(got, 0.0)
    run(path, np.zeros((0, 3)), np.zeros((3, 4)), np.zeros((0, 4)), 1.0, 0.0)   # no-op


def test_gemm_rejects_bad_arguments():
    a, b, c = np.ones((3, 4)), np.ones((4, 5)), np.zeros((3, 5))
    with pytest.raises(ValueError, match="shapes"):
        conv.gemm(a, np.ones((3, 5)), c, 1.0, 0.0)
    with pytest.raises(ValueError, match="shapes"):
        conv.gemm(a, b, np.zeros((3, 6)), 1.0, 0.0)
    with pytest.raises((ValueError, TypeError)):
        conv.gemm(a, b, np.zeros((5, 3)).T, 1.0, 0.0)          # c not C-contiguous
    with pytest.raises((ValueError, TypeError)):
        conv.gemm(a.astype(np.float32), b, c, 1.0, 0.0)        # mixed dtypes
    np.testing.assert_array_equal(c, 0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_conv2d_through_every_path(rng, path, dtype):
    """ops.conv2d and its backward match the NumPy reference whichever micro-kernel runs."""
    from cycnn import ops
    from cycnn import reference as ref
    x = rng.standard_normal((3, 5, 13, 11)).astype(dtype)
    w = rng.standard_normal((17, 5, 3, 3)).astype(dtype)
    b = rng.standard_normal(17).astype(dtype)
    conv.simd_select(path)
    y = ops.conv2d(x, w, b, stride=(1, 2), padding="same")
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = ops.conv2d_backward(dy, x, w, stride=(1, 2), padding="same")
    assert conv.simd_name() == path
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    want = (ref.conv2d(x64, w64, b64, stride=(1, 2), padding="same"),) + tuple(
        ref.conv2d_backward(dy64, x64, w64, stride=(1, 2), padding="same"))
    for name, got, exp, k in zip(("y", "dx", "dw", "db"), (y,) + tuple(grads), want,
                                 (45, 153, 3 * 13 * 6, 3 * 13 * 6)):
        assert got.dtype == dtype
        assert_close(got, exp, *tol(dtype, k), f"{name} via {path}")


# ---------------------------------------------------------------- run-time blocking
# cycnn_sgemm / cycnn_dgemm block K by kc and N by nc (the rule of csrc/gemm/gemm.c, from the
# cache sizes). Depths and widths on either side of a block boundary exercise the beta = 1
# accumulation over depth blocks and the last, narrower column block.

def _rule_blocking(nr, itemsize):
    """Python twin of derive_blocking() in csrc/gemm/gemm.c for this machine: (kc, nc), or the
    table's (256, 512) when the cache sizes are unknown. Only picks the sizes tested below.
    The sizes come from getconf (glibc's sysconf, as the C code reads them)."""
    import subprocess

    def cache(name):
        try:
            out = subprocess.run(["getconf", name], capture_output=True, text=True, timeout=10)
            return int(out.stdout.strip() or 0)
        except (OSError, ValueError, subprocess.SubprocessError):
            return 0
    l1, l2, l3 = (cache(f"LEVEL{i}_{'D' if i == 1 else ''}CACHE_SIZE") for i in (1, 2, 3))
    if l1 <= 0 or l2 <= 0:
        return 256, 512
    kc = min(max(l1 * 3 // 4 // (nr * itemsize) // 8 * 8, 128), 512)
    b_bytes = min(l3 // 8, 2 * l2) if l3 > 0 else 2 * l2
    nc = min(max(b_bytes // (kc * itemsize) // nr * nr, 512), 4096 // nr * nr)
    return kc, nc


def _check_blocks(rng, path, M, N, K, threads, context):
    a = operand(rng, (M, K), np.float32, "C")
    b = operand(rng, (K, N), np.float32, "C")
    c = rng.standard_normal((M, N)).astype(np.float32)
    expected = a.astype(np.float64) @ b.astype(np.float64) + 0.5 * c
    conv.simd_select(path)
    got = c.copy()
    conv.gemm(a, b, got, 1.0, 0.5, threads)
    assert_close(got, expected, *tol(np.float32, K), f"{context} {path} M={M} N={N} K={K}")
    again = c.copy()
    conv.gemm(a, b, again, 1.0, 0.5, threads)
    assert np.array_equal(got, again), "not deterministic at a fixed thread count"
    return got


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("threads", [1, 2])
def test_gemm_depth_and_width_straddle_rule_blocks(rng, path, threads):
    """K = kc - 1, kc, kc + 1, 2 kc + 1 and N = nc - 1, nc + 1 of the derived blocking
    (kc and nc of the avx2 tile on this machine's caches), against float64 and the generic path."""
    kc, nc = _rule_blocking(16, 4)
    for K in (kc - 1, kc, kc + 1, 2 * kc + 1):
        _check_blocks(rng, path, 13, 70, K, threads, "depth")
    for N in (nc - 1, nc + 1):
        got = _check_blocks(np.random.default_rng(N), path, 7, N, kc + 1, threads, "width")
        if path != "generic":
            generic = _check_blocks(np.random.default_rng(N), "generic", 7, N, kc + 1, threads,
                                    "width")
            assert_close(got, generic.astype(np.float64), *tol(np.float32, kc + 1),
                         f"{path} vs generic N={N}")


_BLOCKING_SCRIPT = """
import numpy as np
from cycnn._kernels import conv
rng = np.random.default_rng(3)
worst = 0.0
for M, N, K in ((13, 33, 17), (25, 97, 40), (12, 32, 16), (61, 200, 100), (300, 70, 7)):
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    for threads in (1, 2):
        for bt in (b, np.asfortranarray(b)):      # packed B, and B read in place
            c = np.full((M, N), np.nan, np.float32)
            conv.gemm(a, bt, c, 1.0, 0.0, threads)
            worst = max(worst, float(np.abs(c - want).max() / np.sqrt(K)))
print(conv.simd_name(), worst)
"""


@pytest.mark.parametrize("blocking", ["12,16,32", "7,9,20", "table", "no-such-blocking"])
def test_gemm_blocking_override_in_a_fresh_process(blocking):
    """CYCNN_GEMM_BLOCKING (read once, at import) with tiny blocks, so that small products cross
    many mc / kc / nc boundaries (values not multiples of the tile are rounded to them); the
    table's constants; an unparsable value falls back to the rule. Results within the float32
    tolerance, 1 and 2 threads."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, CYCNN_GEMM_BLOCKING=blocking)
    out = subprocess.run([sys.executable, "-c", _BLOCKING_SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    name, worst = out.stdout.split()
    assert name in ALL_PATHS
    assert float(worst) <= 1e-5, f"CYCNN_GEMM_BLOCKING={blocking}: error {worst} x sqrt(K)"
