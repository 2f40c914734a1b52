"""The fused optimiser step (one native call over every parameter array, split across threads):
against a NumPy implementation of torch.optim's formulas and against torch.optim itself, in
float32 and float64, with weight decay, over arrays of sizes that straddle the threads' chunks;
1 and 2 threads give identical bits."""
import math

import numpy as np
import pytest

import cycnn
from cycnn import optim
from cycnn._kernels import optim as kernels

# sizes: a total above the kernel's parallel threshold, arrays that cross chunk boundaries,
# an empty one and odd sizes that are not multiples of any vector width
SHAPES = [(32, 1, 5, 5), (32,), (0,), (64, 32, 5, 5), (7,), (1000, 37), (10,)]


def _randn(shape, seed, dtype):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


class NumpyOptimizer:
    """torch.optim's SGD / Adam / RMSprop formulas, one array at a time, in the params' dtype."""

    def __init__(self, kind, **hp):
        self.kind, self.hp, self.t, self.state = kind, hp, 0, {}

    def step(self, params, grads):
        self.t += 1
        hp, t = self.hp, self.t
        for i, (p, g) in enumerate(zip(params, grads)):
            f = p.dtype.type
            g = g + f(hp.get("weight_decay", 0.0)) * p
            s = self.state.setdefault(i, [np.zeros_like(p), np.zeros_like(p)])
            if self.kind == "adam":
                b1, b2 = hp["betas"]
                s[0][...] = f(b1) * s[0] + f(1 - b1) * g
                s[1][...] = f(b2) * s[1] + f(1 - b2) * g * g
                denom = np.sqrt(s[1]) / f(math.sqrt(1 - b2 ** t)) + f(hp["eps"])
                p -= f(hp["lr"] / (1 - b1 ** t)) * s[0] / denom
            elif self.kind == "sgd":
                mom = hp.get("momentum", 0.0)
                if mom == 0:
                    p -= f(hp["lr"]) * g
                    continue
                s[0][...] = f(mom) * s[0] + g
                step = g + f(mom) * s[0] if hp.get("nesterov") else s[0]
                p -= f(hp["lr"]) * step
            else:
                rho, mom = hp["rho"], hp.get("momentum", 0.0)
                s[0][...] = f(rho) * s[0] + f(1 - rho) * g * g
                d = g / (np.sqrt(s[0]) + f(hp["eps"]))
                if mom:
                    s[1][...] = f(mom) * s[1] + d
                    d = s[1]
                p -= f(hp["lr"]) * d


CASES = [
    ("adam", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)),
    ("adam", dict(lr=2e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("rmsprop", dict(lr=0.01, rho=0.9, eps=1e-8)),
    ("rmsprop", dict(lr=0.01, rho=0.95, eps=1e-6, momentum=0.9, weight_decay=0.05)),
]


def _ours(kind, hp):
    return {"adam": optim.Adam, "sgd": optim.SGD, "rmsprop": optim.RMSprop}[kind](**hp)


def _train(opt, dtype, steps=3, threads=2):
    """params (unit-scale normal values) after ``steps`` updates on ``threads`` threads; errors
    are measured relative to |p| + 1, so 1e-6 is a few float32 ulps of the unit scale."""
    params = [_randn(s, i, dtype) for i, s in enumerate(SHAPES)]
    cycnn.set_num_threads(threads)
    try:
        for t in range(steps):
            opt.step(params, [_randn(s, 100 * t + i, dtype) for i, s in enumerate(SHAPES)])
    finally:
        cycnn.set_num_threads(None)
    return params


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("kind, hp", CASES)
def test_fused_step_matches_numpy(kind, hp, dtype, rtol):
    ours = _train(_ours(kind, hp), dtype)
    expected = _train(NumpyOptimizer(kind, **hp), dtype)
    for i, (a, b) in enumerate(zip(ours, expected)):
        assert a.dtype == dtype
        err = np.max(np.abs(a - b) / (np.abs(b) + 1), initial=0.0)
        assert err <= rtol, f"{kind} {hp} {dtype.__name__}: params[{i}] {a.shape} error {err}"


@pytest.mark.parametrize("kind, hp", CASES)
def test_fused_step_is_identical_on_1_and_2_threads(kind, hp):
    one = _train(_ours(kind, hp), np.float32, threads=1)
    two = _train(_ours(kind, hp), np.float32, threads=2)
    # 89k elements: above the parallel-work threshold, so the update really ran on 2 threads
    assert kernels.last_parallel_region() == ("update", 2 if cycnn.build_info()["openmp"] else 1)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("kind, hp", CASES)
def test_fused_step_matches_torch_optim(kind, hp, dtype, rtol):
    torch = pytest.importorskip("torch")
    ours = _train(_ours(kind, hp), dtype)
    tparams = [torch.tensor(_randn(s, i, dtype), requires_grad=True)
               for i, s in enumerate(SHAPES)]
    thp = dict(hp)
    if "rho" in thp:
        thp["alpha"] = thp.pop("rho")
    name = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}[kind]
    topt = getattr(torch.optim, name)(tparams, foreach=False, **thp)
    for t in range(3):
        for i, (tp, s) in enumerate(zip(tparams, SHAPES)):
            tp.grad = torch.tensor(_randn(s, 100 * t + i, dtype))
        topt.step()
    for i, (a, tp) in enumerate(zip(ours, tparams)):
        b = tp.detach().numpy()
        err = np.max(np.abs(a - b) / (np.abs(b) + 1), initial=0.0)
        assert err <= rtol, f"{kind} {hp} {dtype.__name__}: params[{i}] {a.shape} error {err}"


def test_one_native_call_per_step(monkeypatch):
    calls = []
    real = kernels.update
    monkeypatch.setattr(kernels, "update", lambda *a: calls.append(len(a[1])) or real(*a))
    _train(optim.Adam(), np.float32, steps=2)
    assert calls == [len(SHAPES)] * 2


def test_non_contiguous_params_mixed_dtypes_and_gradient_conversion():
    base = _randn((6, 8), 0, np.float64)
    p_strided = base[:, ::2]                     # not contiguous: updated through a copy
    p32 = _randn((5,), 1, np.float32)
    g_strided = _randn((8, 6), 2, np.float64).T[:, ::2]
    g_list = [0.5] * 5                           # converted to float32 once
    ref = [p_strided.copy(), p32.copy()]
    NumpyOptimizer("adam", lr=0.1, betas=(0.9, 0.999), eps=1e-8).step(
        ref, [np.ascontiguousarray(g_strided), np.full(5, 0.5, np.float32)])
    optim.Adam(lr=0.1).step([p_strided, p32], [g_strided, g_list])
    np.testing.assert_allclose(base[:, ::2], ref[0], rtol=1e-12)
    np.testing.assert_allclose(p32, ref[1], rtol=1e-6)
    assert p32.dtype == np.float32


def test_bad_params_are_rejected():
    opt = optim.Adam()
    frozen = np.zeros(3, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        opt.step([frozen], [np.zeros(3, np.float32)])
    with pytest.raises(TypeError, match=r"params\[0\] must be float32 or float64"):
        optim.SGD().step([np.zeros(3, np.float16)], [np.zeros(3, np.float16)])
    with pytest.raises(TypeError, match=r"params\[0\] must be a floating ndarray"):
        optim.SGD().step([np.zeros(3, np.int64)], [np.zeros(3)])
    with pytest.raises(ValueError, match=r"grads must hold 2 arrays, got 1"):
        kernels.update("sgd", [np.zeros(2), np.zeros(2)], [np.zeros(2)], [], [], 0.1, 0, 0, 0,
                       0, 0, 0, False, 1)
    with pytest.raises(ValueError, match=r"grads\[0\] must be a C-contiguous float64 array"):
        kernels.update("sgd", [np.zeros(2)], [np.zeros(3)], [], [], 0.1, 0, 0, 0, 0, 0, 0,
                       False, 1)


@pytest.mark.parametrize("kind, hp", [c for c in CASES if c[0] == "adam"])
def test_float32_adam_avx2_build_matches_the_portable_one(kind, hp):
    """The float32 Adam loop runs from C (csrc/optim/adam*.c) in a portable build and an
    AVX2+FMA build picked at run time: both follow the NumPy formulas, and agree to a few ulps
    (FMA contraction may move the last bit)."""
    if not kernels.set_adam_avx2(True) or kernels.adam_path() != "avx2":
        pytest.skip("this CPU has no AVX2+FMA: only the portable Adam build can run")
    try:
        kernels.set_adam_avx2(False)
        assert kernels.adam_path() == "generic"
        portable = _train(_ours(kind, hp), np.float32)
    finally:
        kernels.set_adam_avx2(True)
    assert kernels.adam_path() == "avx2"
    vector = _train(_ours(kind, hp), np.float32)
    expected = _train(NumpyOptimizer(kind, **hp), np.float32)
    for i, (a, b, e) in enumerate(zip(vector, portable, expected)):
        for name, got in (("avx2", a), ("generic", b)):
            err = np.max(np.abs(got - e) / (np.abs(e) + 1), initial=0.0)
            assert err <= 1e-6, f"{name} build: params[{i}] {got.shape} error {err}"
        err = np.max(np.abs(a - b) / (np.abs(b) + 1), initial=0.0)
        assert err <= 1e-6, f"avx2 vs generic: params[{i}] {a.shape} error {err}"
