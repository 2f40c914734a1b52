"""Grouped/depthwise and transposed convolution, upsampling, zero padding and global max pooling:
``cycnn.ops`` against ``cycnn.reference`` (float32/float64, odd sizes, strides, paddings, 1 and 2
threads), the reference against float64 finite differences and against PyTorch where installed.
The bad-input table entries of these ops live in test_ops.py's BAD_INPUTS (one table for every op).
"""
import numpy as np
import pytest

import cycnn
from cycnn import ops
from cycnn import reference as ref
from test_ops import F32, F64, assert_close, case_id, f64, tolerance


@pytest.fixture
def rng():
    return np.random.default_rng(4321)


def _numeric_vjp(f, arr, r, eps=1e-6):
    """d sum(f() * r) / d arr by central differences (arr perturbed in place, float64)."""
    g = np.zeros(arr.shape)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.sum(f() * r)
        flat[i] = old - eps
        minus = np.sum(f() * r)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return g


def _rel(a, b):
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-300)
    return np.abs(a - b).max(initial=0) / scale


# ----------------------------------------------------------------------------- grouped conv
def gcase(N=2, C=4, K=4, groups=2, H=7, W=6, R=3, S=3, stride=1, padding=0, dilation=1, bias=True):
    return dict(N=N, C=C, K=K, groups=groups, H=H, W=W, R=R, S=S, stride=stride, padding=padding,
                dilation=dilation, bias=bias)


GROUP_CASES = (
    [gcase(C=c, K=k, groups=g) for c, k, g in ((4, 6, 2), (6, 9, 3), (6, 3, 3), (5, 10, 5))]
    + [gcase(C=3, K=k, groups=3, H=9, W=8, R=r, S=s, stride=st, padding=p, dilation=d, bias=bi)
       for k in (3, 6)                                                      # depthwise, M=1, 2
       for (r, s, st, p, d, bi) in ((3, 3, 1, 1, 1, True), (3, 2, 2, "same", 1, False),
                                    (2, 3, (1, 2), (2, 0), 2, True), (5, 5, 3, 4, 1, True),
                                    (1, 1, 2, 0, 1, False), (3, 3, 1, "valid", (2, 1), True))]
    + [gcase(N=1, C=4, K=8, groups=2, H=11, W=5, R=3, S=1, stride=2, padding="same"),
       gcase(N=3, C=1, K=3, groups=1, H=4, W=4),                           # groups=1 path
       gcase(N=2, C=2, K=2, groups=2, H=1, W=1, R=1, S=1),                 # 1x1 depthwise
       gcase(N=2, C=16, K=16, groups=16, H=12, W=13, stride=2, padding=1)]  # many planes
)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", GROUP_CASES, ids=[case_id(c) for c in GROUP_CASES])
def test_grouped_conv2d_vs_reference(rng, threads, dtype, case):
    N, C, K, g, R, S = (case[k] for k in ("N", "C", "K", "groups", "R", "S"))
    x = rng.standard_normal((N, C, case["H"], case["W"])).astype(dtype)
    w = rng.standard_normal((K, C // g, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if case["bias"] else None
    geo = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
               groups=g)
    ctx = f"x{x.shape} w{w.shape} {geo} {dtype} threads={threads}"
    y = ops.conv2d(x, w, b, **geo)
    ey = ref.conv2d(*f64(x, w, b), **geo)
    assert y.dtype == dtype
    assert_close(y, ey, *tolerance(dtype, C // g * R * S), "y " + ctx)
    dy = rng.standard_normal(ey.shape).astype(dtype)
    got = ops.conv2d_backward(dy, x, w, **geo)
    want = ref.conv2d_backward(*f64(dy, x, w), **geo)
    L = N * ey.shape[2] * ey.shape[3]
    for name, a, e, n in zip(("dx", "dw", "db"), got, want, (K // g * R * S, L, L)):
        assert a.dtype == dtype
        assert_close(a, e, *tolerance(dtype, n), f"{name} {ctx}")


def test_grouped_reference_is_per_group_convolution(rng):
    """The grouped reference equals independent convolutions of the channel groups."""
    x, w, b = rng.standard_normal((2, 6, 7, 7)), rng.standard_normal((9, 2, 3, 3)), rng.standard_normal(9)
    y = ref.conv2d(x, w, b, padding=1, groups=3)
    for g in range(3):
        part = ref.conv2d(x[:, 2 * g:2 * g + 2], w[3 * g:3 * g + 3], b[3 * g:3 * g + 3], padding=1)
        np.testing.assert_allclose(y[:, 3 * g:3 * g + 3], part, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [gcase(C=4, K=6, groups=2, stride=2, padding=1),
                                  gcase(C=3, K=6, groups=3, dilation=2, padding="same"),
                                  gcase(C=2, K=2, groups=2, H=5, W=4, R=2, S=3, stride=(2, 1))],
                         ids=case_id)
def test_grouped_reference_finite_differences(rng, case):
    N, C, K, g = case["N"], case["C"], case["K"], case["groups"]
    x = rng.standard_normal((N, C, case["H"], case["W"]))
    w = rng.standard_normal((K, C // g, case["R"], case["S"]))
    b = rng.standard_normal(K)
    geo = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=g)
    r = rng.standard_normal(ref.conv2d(x, w, b, **geo).shape)
    dx, dw, db = ref.conv2d_backward(r, x, w, **geo)
    f = lambda: ref.conv2d(x, w, b, **geo)  # noqa: E731
    assert _rel(dx, _numeric_vjp(f, x, r)) < 1e-7
    assert _rel(dw, _numeric_vjp(f, w, r)) < 1e-7
    assert _rel(db, _numeric_vjp(f, b, r)) < 1e-7


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_depthwise_thread_counts_agree_and_are_deterministic(rng, dtype):
    """The depthwise kernel writes every output element from one thread: 1 and 2 threads give
    bitwise identical results."""
    x = rng.standard_normal((8, 32, 20, 20)).astype(dtype)
    w = rng.standard_normal((64, 1, 3, 3)).astype(dtype)
    dy = rng.standard_normal((8, 64, 20, 20)).astype(dtype)
    try:
        results = []
        for n in (1, 2, 2):
            cycnn.set_num_threads(n)
            results.append((ops.conv2d(x, w, padding=1, groups=32),)
                           + ops.conv2d_backward(dy, x, w, padding=1, groups=32))
    finally:
        cycnn.set_num_threads(None)     # follow OpenMP's setting again
    for one, two, again in zip(*results):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(two, again)


DW_AVX2_CASES = [   # (N, C, M, H, W, R, S, stride, padding, dilation)
    (2, 3, 1, 9, 40, 3, 3, 1, 1, 1),            # 16-column blocks inside the row, masked ends
    (2, 3, 2, 7, 13, 5, 5, 1, 2, 1),            # depth multiplier 2, 7 rows (a block + 3)
    (1, 2, 1, 6, 11, 3, 3, 1, 4, 1),            # padding wider than the filter
    (1, 2, 1, 10, 21, 3, 5, 1, (2, 0), 1),      # no column padding, rows padded
    (1, 2, 1, 5, 2, 5, 5, 1, 2, 1),             # row narrower than the filter
    (2, 2, 1, 15, 17, 3, 3, (2, 1), 1, (2, 1)),  # height stride and dilation
    (1, 2, 1, 9, 37, 2, 17, 1, (0, 7), 1),      # a filter wider than a 16-column block
    (2, 3, 1, 12, 35, 3, 3, 2, 1, 1),           # stride 2: even lanes of two loads
    (1, 2, 2, 9, 20, 4, 5, (1, 2), (0, 3), 1),  # stride 2, masked last block, multiplier 2
    (1, 2, 1, 8, 30, 3, 3, 3, 1, 1),            # stride 3: the portable build
    (1, 2, 1, 8, 30, 3, 3, 1, 1, (1, 2)),       # width dilation 2: the portable build
]


@pytest.mark.parametrize("case", DW_AVX2_CASES, ids=[str(c) for c in DW_AVX2_CASES])
def test_depthwise_avx2_and_portable_builds_agree(rng, case):
    """The float32 depthwise kernels' AVX2 builds (forward: width stride 1 or 2, width dilation 1;
    dx and dw: stride and dilation 1) and their portable twins all match the float64 reference,
    and each other."""
    from cycnn._kernels import depthwise
    N, C, M, H, W, R, S, stride, padding, dilation = case
    x = rng.standard_normal((N, C, H, W)).astype(F32)
    w = rng.standard_normal((C * M, 1, R, S)).astype(F32)
    b = rng.standard_normal(C * M).astype(F32)
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=C)
    want = ref.conv2d(*f64(x, w, b), **geo)
    dy = rng.standard_normal(want.shape).astype(F32)
    want_dx, want_dw, want_db = ref.conv2d_backward(*f64(dy, x, w), **geo)
    got = {}
    try:
        for allowed in (True, False):
            depthwise.set_float32_avx2(allowed)
            got[depthwise.float32_path()] = ((ops.conv2d(x, w, b, **geo),)
                                             + ops.conv2d_backward(dy, x, w, **geo))
    finally:
        depthwise.set_float32_avx2(True)
    assert set(got) == ({"avx2", "generic"} if cycnn.build_info()["simd"] != "generic"
                        else {"generic"})
    for path, (y, dx, dw, db) in got.items():
        assert_close(y, want, *tolerance(F32, R * S), f"{path} {case}")
        assert_close(dx, want_dx, *tolerance(F32, M * R * S), f"{path} dx {case}")
        assert_close(dw, want_dw, *tolerance(F32, N * want.shape[2] * want.shape[3]),
                     f"{path} dw {case}")
        assert_close(db, want_db, *tolerance(F32, N * want.shape[2] * want.shape[3]),
                     f"{path} db {case}")
    got = {path: y for path, (y, *_) in got.items()}
    if len(got) == 2:
        assert_close(got["avx2"], got["generic"], *tolerance(F32, R * S), f"avx2 vs generic {case}")
        width_stride = stride if isinstance(stride, int) else stride[1]
        width_dilation = dilation if isinstance(dilation, int) else dilation[1]
        if width_stride > 2 or width_dilation > 1:   # both runs took the portable kernel
            np.testing.assert_array_equal(got["avx2"], got["generic"])
        else:   # the AVX2 kernel ran: FMAs round differently from the portable loop
            assert not np.array_equal(got["avx2"], got["generic"])


# ----------------------------------------------------------------------------- transposed conv
def tcase(N=2, C=3, K=4, groups=1, H=5, W=6, R=3, S=3, stride=1, padding=0, output_padding=0,
          dilation=1, bias=True):
    return dict(N=N, C=C, K=K, groups=groups, H=H, W=W, R=R, S=S, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, bias=bias)


TRANSPOSE_CASES = (
    [tcase(K=k, C=c, bias=bi) for k in (1, 5, 17) for c in (1, 3) for bi in (True, False)]
    + [tcase(R=k, S=k, stride=s, padding=k // 2, H=7, W=5) for k in (1, 2, 3, 4) for s in (1, 2, 3)]
    + [tcase(stride=2, padding=1, output_padding=1),                       # U-Net style x2
       tcase(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), dilation=(1, 2), R=3, S=2),
       tcase(stride=1, padding=1, output_padding=1, dilation=2),           # op < dilation
       tcase(stride=2, padding="same", R=4, S=4), tcase(stride=3, padding="same", R=2, S=2),
       tcase(stride=2, padding="same", R=1, S=1), tcase(stride=2, padding="valid", R=3, S=3),
       tcase(C=4, K=6, groups=2, stride=2, padding=1), tcase(C=4, K=4, groups=4, stride=2),
       tcase(N=1, C=2, K=3, H=1, W=1, R=1, S=1), tcase(N=3, C=2, K=2, H=1, W=9, R=2, S=5),
       tcase(N=4, C=16, K=8, H=14, W=14, R=2, S=2, stride=2)]              # larger: parallel
)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[case_id(c) for c in TRANSPOSE_CASES])
def test_conv_transpose2d_vs_reference(rng, threads, dtype, case):
    N, C, K, g, R, S = (case[k] for k in ("N", "C", "K", "groups", "R", "S"))
    x = rng.standard_normal((N, C, case["H"], case["W"])).astype(dtype)
    w = rng.standard_normal((C, K // g, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if case["bias"] else None
    geo = {k: case[k] for k in ("stride", "padding", "output_padding", "dilation", "groups")}
    ctx = f"x{x.shape} w{w.shape} {geo} {dtype} threads={threads}"
    y = ops.conv_transpose2d(x, w, b, **geo)
    ey = ref.conv_transpose2d(*f64(x, w, b), **geo)
    assert y.dtype == dtype
    assert_close(y, ey, *tolerance(dtype, C // g * R * S), "y " + ctx)
    dy = rng.standard_normal(ey.shape).astype(dtype)
    got = ops.conv_transpose2d_backward(dy, x, w, **geo)
    want = ref.conv_transpose2d_backward(*f64(dy, x, w), **geo)
    L = N * case["H"] * case["W"]
    for name, a, e, n in zip(("dx", "dw", "db"), got, want,
                             (K // g * R * S, L, N * ey.shape[2] * ey.shape[3])):
        assert a.dtype == dtype
        assert_close(a, e, *tolerance(dtype, n), f"{name} {ctx}")
    # without dx: None, and dw / db the same bits as with it
    no_dx = ops.conv_transpose2d_backward(dy, x, w, **geo, compute_dx=False)
    assert no_dx[0] is None
    assert ref.conv_transpose2d_backward(*f64(dy, x, w), **geo, compute_dx=False)[0] is None
    np.testing.assert_array_equal(no_dx[1], got[1])
    np.testing.assert_array_equal(no_dx[2], got[2])


@pytest.mark.parametrize("stride, padding, output_padding, dilation, kernel", [
    (1, 0, 0, 1, (3, 3)), (2, 1, 1, 1, (3, 3)), ((2, 3), (0, 1), (1, 0), (1, 2), (2, 3)),
    (2, "same", 0, 1, (3, 3)), (2, "same", 0, 1, (1, 1)), (3, "same", 0, 2, (2, 2)),
])
def test_conv_transpose_is_the_adjoint_of_conv2d(rng, stride, padding, output_padding, dilation,
                                                 kernel):
    """<conv2d(z, w), x> == <z, conv_transpose2d(x, w)> for every z of the transposed output's
    size: the definition of the transposed convolution ('same' as TensorFlow: conv2d 'same'
    maps the H*stride output back to H)."""
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((3, 2) + kernel)
    y = ref.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding,
                             dilation=dilation)
    if padding == "same":
        assert y.shape[2:] == (4 * stride, 5 * stride)
    z = rng.standard_normal(y.shape)
    cz = ref.conv2d(z, w, stride=stride, padding=padding, dilation=dilation)
    cz = cz[:, :, :4, :5]  # output_padding: the conv of the larger z has the same H x W
    assert cz.shape == x.shape
    np.testing.assert_allclose(np.sum(cz * x), np.sum(z * y), rtol=1e-10)


@pytest.mark.parametrize("geo", [dict(), dict(stride=2, padding=1, output_padding=1),
                                 dict(stride=(1, 2), padding="same", dilation=(2, 1)),
                                 dict(groups=2, stride=2)], ids=str)
def test_conv_transpose_reference_finite_differences(rng, geo):
    x, w, b = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((4, 3, 3, 2)), None
    b = rng.standard_normal(3 * geo.get("groups", 1))
    f = lambda: ref.conv_transpose2d(x, w, b, **geo)  # noqa: E731
    r = rng.standard_normal(f().shape)
    dx, dw, db = ref.conv_transpose2d_backward(r, x, w, **geo)
    assert _rel(dx, _numeric_vjp(f, x, r)) < 1e-7
    assert _rel(dw, _numeric_vjp(f, w, r)) < 1e-7
    assert _rel(db, _numeric_vjp(f, b, r)) < 1e-7


# ----------------------------------------------------------------------------- upsample, pad, gmp
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("size", [1, 2, (3, 2), (1, 4)])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample2d_vs_reference(rng, dtype, size, mode):
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    y = ops.upsample2d(x, size, mode)
    ey = ref.upsample2d(f64(x)[0], size, mode)
    assert y.dtype == dtype
    assert_close(y, ey, *tolerance(dtype, 4), f"upsample {size} {mode}")
    dy = rng.standard_normal(ey.shape).astype(dtype)
    dx = ops.upsample2d_backward(dy, size, mode)
    sh, sw = (size, size) if isinstance(size, int) else size
    assert dx.dtype == dtype
    assert_close(dx, ref.upsample2d_backward(f64(dy)[0], size, mode),
                 *tolerance(dtype, 4 * sh * sw), f"upsample backward {size} {mode}")


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample_reference_finite_differences(rng, mode):
    x = rng.standard_normal((1, 2, 3, 4))
    f = lambda: ref.upsample2d(x, (2, 3), mode)  # noqa: E731
    r = rng.standard_normal(f().shape)
    assert _rel(ref.upsample2d_backward(r, (2, 3), mode), _numeric_vjp(f, x, r)) < 1e-8


def test_upsample_nearest_and_bilinear_values():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_array_equal(ops.upsample2d(x, 2)[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2],
                                                               [3, 3, 4, 4], [3, 3, 4, 4]])
    # half-pixel centres: output row 1 samples input row 0.25
    np.testing.assert_allclose(ops.upsample2d(x, (2, 1), "bilinear")[0, 0, :, 0],
                               [1.0, 1.5, 2.5, 3.0])


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("padding", [0, 1, (2, 0), ((1, 2), (3, 0)), [[0, 1], [1, 0]]], ids=str)
def test_zero_pad2d_vs_reference(rng, dtype, padding):
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    y = ops.zero_pad2d(x, padding)
    np.testing.assert_array_equal(y, ref.zero_pad2d(x, padding))
    assert y.dtype == dtype
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.zero_pad2d_backward(dy, padding)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, ref.zero_pad2d_backward(dy, padding))
    # adjoint: <pad(x), dy> == <x, crop(dy)>
    np.testing.assert_allclose(np.sum(y.astype(np.float64) * dy), np.sum(x.astype(np.float64) * dx),
                               rtol=1e-6)


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("hw", [(1, 1), (5, 7), (16, 3)])
def test_global_max_pool2d_vs_reference(rng, dtype, hw):
    x = rng.standard_normal((3, 4) + hw).astype(dtype)
    x[0, 0] = 1.0                                                     # ties: the first wins
    if hw[0] * hw[1] > 2:
        x[1, 1].flat[[1, 2]] = np.nan                                 # NaN: the last one
    y, idx = ops.global_max_pool2d(x)
    ey, eidx = ref.global_max_pool2d(x)
    assert y.shape == idx.shape == (3, 4) and y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(idx, eidx)
    assert idx[0, 0] == 0
    dy = rng.standard_normal((3, 4)).astype(dtype)
    dx = ops.global_max_pool2d_backward(dy, idx, x.shape)
    np.testing.assert_array_equal(dx, ref.global_max_pool2d_backward(dy, eidx, x.shape))
    np.testing.assert_array_equal(dx.reshape(3, 4, -1).sum(axis=2), dy)


def test_global_max_pool_reference_finite_differences(rng):
    x = rng.permutation(60).reshape(1, 3, 4, 5) * 0.1                  # distinct values
    f = lambda: ref.global_max_pool2d(x)[0]  # noqa: E731
    r = rng.standard_normal((1, 3))
    g = ref.global_max_pool2d_backward(r, ref.global_max_pool2d(x)[1], x.shape)
    assert _rel(g, _numeric_vjp(f, x, r)) < 1e-8


# ----------------------------------------------------------------------------- layouts, empty batch
def test_new_ops_accept_odd_layouts(rng):
    """Read-only, non-contiguous and broadcast inputs give the same results as contiguous ones."""
    x = np.broadcast_to(rng.standard_normal((1, 4, 6, 5)), (2, 4, 6, 5))
    wd = rng.standard_normal((8, 1, 3, 3))[:, :, ::-1]                 # negative strides
    wt = np.asfortranarray(rng.standard_normal((4, 3, 3, 3)))
    ro = rng.standard_normal((2, 4, 6, 5))
    ro.flags.writeable = False
    for a in (x, ro):
        ac = np.ascontiguousarray(a)
        np.testing.assert_array_equal(ops.conv2d(a, wd, groups=4), ops.conv2d(ac, wd.copy(), groups=4))
        np.testing.assert_array_equal(ops.conv_transpose2d(a, wt, stride=2),
                                      ops.conv_transpose2d(ac, np.ascontiguousarray(wt), stride=2))
        np.testing.assert_array_equal(ops.upsample2d(a, 2, "bilinear"), ops.upsample2d(ac, 2, "bilinear"))
        np.testing.assert_array_equal(ops.zero_pad2d(a, 1), ops.zero_pad2d(ac, 1))
        np.testing.assert_array_equal(ops.global_max_pool2d(a)[1], ops.global_max_pool2d(ac)[1])
    dy = ops.conv_transpose2d(ro, wt, stride=2)
    dy.flags.writeable = False
    for got, want in zip(ops.conv_transpose2d_backward(dy, ro, wt, stride=2),
                         ref.conv_transpose2d_backward(dy, ro, wt, stride=2)):
        assert_close(got, want, 1e-10, 1e-10, "read-only conv_transpose2d_backward")


def test_new_ops_empty_batch():
    x = np.zeros((0, 4, 5, 5), np.float32)
    assert ops.conv2d(x, np.zeros((8, 1, 3, 3)), groups=4).shape == (0, 8, 3, 3)
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 8, 3, 3)), x, np.zeros((8, 1, 3, 3)), groups=4)
    assert dx.shape == (0, 4, 5, 5) and not dw.any() and not db.any()
    assert ops.conv2d(x, np.zeros((6, 2, 3, 3)), groups=2).shape == (0, 6, 3, 3)
    y = ops.conv_transpose2d(x, np.zeros((4, 3, 2, 2)), stride=2)
    assert y.shape == (0, 3, 10, 10)
    dx, dw, db = ops.conv_transpose2d_backward(y, x, np.ones((4, 3, 2, 2)), stride=2)
    assert dx.shape == x.shape and dw.shape == (4, 3, 2, 2) and not dw.any() and not db.any()
    assert ops.upsample2d(x, 2, "bilinear").shape == (0, 4, 10, 10)
    assert ops.upsample2d_backward(np.zeros((0, 4, 10, 10)), 2, "bilinear").shape == x.shape
    assert ops.zero_pad2d(x, 1).shape == (0, 4, 7, 7)
    assert ops.global_max_pool2d(x)[0].shape == (0, 4)


# ----------------------------------------------------------------------------- torch
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("C, K, groups, geo", [
    (4, 6, 2, dict(stride=2, padding=1)), (3, 6, 3, dict(padding=2, dilation=2)),
    (8, 8, 8, dict(stride=(2, 1), padding=(1, 0))),
])
def test_grouped_conv2d_vs_torch(torch, rng, C, K, groups, geo):
    F = torch.nn.functional
    x, w, b = rng.standard_normal((2, C, 9, 8)), rng.standard_normal((K, C // groups, 3, 3)), rng.standard_normal(K)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, groups=groups, **geo)
    dy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.conv2d(x, w, b, groups=groups, **geo), yt.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(ref.conv2d_backward(dy, x, w, groups=groups, **geo), (xt, wt, bt)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("C, K, groups, geo", [
    (3, 4, 1, dict(stride=2, padding=1, output_padding=1)),
    (4, 6, 2, dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 0), dilation=(1, 2))),
    (2, 2, 2, dict(stride=1, padding=1, output_padding=1, dilation=2)),
])
def test_conv_transpose2d_vs_torch(torch, rng, C, K, groups, geo):
    F = torch.nn.functional
    x, w, b = rng.standard_normal((2, C, 5, 4)), rng.standard_normal((C, K // groups, 3, 3)), rng.standard_normal(K)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv_transpose2d(xt, wt, bt, geo["stride"], geo["padding"], geo["output_padding"],
                            groups, geo.get("dilation", 1))
    dy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.conv_transpose2d(x, w, b, groups=groups, **geo),
                               yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(ref.conv_transpose2d_backward(dy, x, w, groups=groups, **geo),
                            (xt, wt, bt)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
    # and the compiled op in float32 against torch's float32
    y32 = ops.conv_transpose2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32),
                               groups=groups, **geo)
    np.testing.assert_allclose(y32, yt.detach().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_upsample2d_vs_torch(torch, rng, mode):
    F = torch.nn.functional
    x = rng.standard_normal((2, 3, 5, 4))
    xt = torch.tensor(x, requires_grad=True)
    kw = {} if mode == "nearest" else {"align_corners": False}
    yt = F.interpolate(xt, scale_factor=(2, 3), mode=mode, **kw)
    dy = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(ref.upsample2d(x, (2, 3), mode), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ref.upsample2d_backward(dy, (2, 3), mode), xt.grad.numpy(),
                               rtol=1e-10, atol=1e-12)


def test_global_max_pool_and_zero_pad_vs_torch(torch, rng):
    F = torch.nn.functional
    x = rng.standard_normal((2, 3, 5, 4))
    xt = torch.tensor(x)
    np.testing.assert_array_equal(ref.global_max_pool2d(x)[0],
                                  F.adaptive_max_pool2d(xt, 1).numpy()[:, :, 0, 0])
    np.testing.assert_array_equal(ref.zero_pad2d(x, ((1, 2), (3, 0))),
                                  F.pad(xt, (3, 0, 1, 2)).numpy())


@pytest.mark.parametrize("groups, w_shape", [(2, (6, 2, 3, 3)), (4, (8, 1, 3, 3))])
def test_grouped_compute_dx_false(rng, groups, w_shape):
    x, w = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal(w_shape)
    dy = rng.standard_normal((2, w_shape[0], 4, 4))
    full = ops.conv2d_backward(dy, x, w, groups=groups)
    dx, dw, db = ops.conv2d_backward(dy, x, w, compute_dx=False, groups=groups)
    assert dx is None and ref.conv2d_backward(dy, x, w, compute_dx=False, groups=groups)[0] is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])
