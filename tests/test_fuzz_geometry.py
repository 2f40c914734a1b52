"""Geometry fuzzing: the ops that take geometry (conv2d, conv_transpose2d, max and average
pooling, each forward and backward) over random strides, paddings, dilations and kernel sizes
from 1 to 2**62 (log-uniform, mixed with small values) on tiny arrays, float32 and float64.

Every case must end in a clean ValueError/TypeError or in the correct result (checked against
cycnn.reference whenever the reference can afford the case; larger accepted cases are checked
for their shape and finiteness). The cases run in batches in a child process, so a crash
(segfault, abort) or a hang fails the test -- naming the case -- instead of killing pytest.
The child runs with CYCNN_MAX_ALLOC_BYTES=16 MiB so that accepted cases stay cheap and the
allocation limit itself is fuzzed. Seeded: a failure reproduces with the seed in its message
(`python tests/test_fuzz_geometry.py FAMILY SEED COUNT` runs one batch by hand).
"""
import json
import subprocess
import sys

import numpy as np
import pytest

# One child per family; every case runs the forward op and then its backward.
FAMILIES = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"]
CASES = 400                 # per family, about half float32 and half float64
SEED = 20261128
REFERENCE_BUDGET = 200_000  # elements the reference may touch (padded input, window tensor)
MAX_ALLOC = 1 << 24         # CYCNN_MAX_ALLOC_BYTES in the child
TIMEOUT = 300               # seconds per child (about 1 s without sanitizers, 1-2 min with)

# The three reproducers of issue 8 (they segfaulted): run first, in the conv2d / pool batches.
ISSUE_CASES = {
    "conv2d": [dict(x=[1, 1, 1, 1], w=[1, 1, 1, 1], stride=[1, 2**30], padding=[0, 2**30 + 1],
                    dilation=1, dtype="float32", bias=False)],
    "max_pool2d": [dict(x=[1, 1, 1, 8], kernel_size=[1, 4], stride=[1, 2**31 - 1],
                        padding=[0, 2], dtype="float32")],
    "avg_pool2d": [dict(x=[1, 1, 1, 8], kernel_size=[1, 4], stride=[1, 2**31 - 1],
                        padding=[0, 2], dtype="float32")],
}


# ------------------------------------------------------------------------------ case generation

def _geo(rng, low=1):
    """A geometry value: small 70% of the time, else log-uniform in [1, 2**62]."""
    if rng.random() < 0.7:
        return int(rng.integers(low, 4))
    return int(min(2 ** rng.uniform(0, 62), 2**62))


def _pair_or_int(rng, low=1):
    if rng.random() < 0.3:
        return _geo(rng, low)
    return [_geo(rng, low), _geo(rng, low)]


def _conv_padding(rng):
    r = rng.random()
    if r < 0.15:
        return "same"
    if r < 0.2:
        return "valid"
    return _pair_or_int(rng, 0)


def _shape(rng, n_max=2, c_max=3, hw_max=7):
    return [int(rng.integers(0 if rng.random() < 0.05 else 1, n_max + 1)),
            int(rng.integers(1, c_max + 1)),
            int(rng.integers(1, hw_max + 1)), int(rng.integers(1, hw_max + 1))]


def make_case(family, rng):
    dtype = "float32" if rng.random() < 0.5 else "float64"
    if family == "conv_transpose2d":
        x = _shape(rng)
        w = [x[1], int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        return dict(x=x, w=w, stride=_pair_or_int(rng), padding=_conv_padding(rng),
                    dilation=_pair_or_int(rng), dtype=dtype, bias=bool(rng.random() < 0.5),
                    output_padding=int(rng.integers(0, 2)) if rng.random() < 0.3 else 0)
    if family == "conv2d":
        x = _shape(rng)
        w = [int(rng.integers(1, 4)), x[1], int(rng.integers(1, 4)), int(rng.integers(1, 4))]
        case = dict(x=x, w=w, stride=_pair_or_int(rng), padding=_conv_padding(rng),
                    dilation=_pair_or_int(rng), dtype=dtype, bias=bool(rng.random() < 0.5))
        if rng.random() < 0.05:    # a broadcast weight with a huge kernel width
            case["w_broadcast_s"] = _geo(rng)
        return case
    kernel = _pair_or_int(rng)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    r = rng.random()
    if r < 0.4:                    # the largest padding pooling accepts
        padding = [kh // 2, kw // 2]
    elif r < 0.5:
        padding = "same" if rng.random() < 0.5 else "valid"
    else:
        padding = _pair_or_int(rng, 0)
    case = dict(x=_shape(rng), kernel_size=kernel, padding=padding, dtype=dtype,
                stride=None if rng.random() < 0.2 else _pair_or_int(rng))
    if rng.random() < 0.2:         # a backward input_shape that is not x's
        case["input_hw"] = [_geo(rng), _geo(rng)]
    return case


# ------------------------------------------------------------------------------ the child

def _reference_cost(case, _args):
    """Elements the reference would touch, or None when the geometry is invalid."""
    n, c, h, w = case["x"]
    try:
        if "output_padding" in case:
            _, k, r, s = case["w"]
            _, _, pads, (ho, wo) = _args.conv_transpose_padding(
                case["padding"], case["output_padding"], (h, w), (r, s), case["stride"],
                case["dilation"])
            padded = (ho + sum(pads[0])) * (wo + sum(pads[1]))
            return max(n, 1) * (c + k) * (padded + h * w * r * s)
        if "w" in case:
            k, _, r, s = case["w"]
            s = case.get("w_broadcast_s", s)
            _, _, pads, (ho, wo) = _args.conv_padding(case["padding"], (h, w), (r, s),
                                                      case["stride"], case["dilation"])
            window = ho * wo * r * s * c
        else:
            (r, s), _, pads, (ho, wo) = _args.pool_padding(case["kernel_size"], case["stride"],
                                                           case["padding"], (h, w))
            window = ho * wo * r * s
    except (ValueError, TypeError):
        return None
    padded = (h + sum(pads[0])) * (w + sum(pads[1]))
    return max(n, 1) * c * (padded + window)


def _close(got, want, dtype, what):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, reference {want.shape}")
    if got.dtype != want.dtype:
        raise AssertionError(f"{what}: dtype {got.dtype}, reference {want.dtype}")
    rtol = 1e-5 if dtype == "float32" else 1e-12
    if not np.allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True):
        err = np.max(np.abs(got.astype(float) - want.astype(float)))
        raise AssertionError(f"{what}: max error {err} against the reference")


def _sane(arrays, shapes, what):
    for a, shape in zip(arrays, shapes):
        if a.shape != tuple(shape):
            raise AssertionError(f"{what}: shape {a.shape}, expected {tuple(shape)}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a) | np.isneginf(a)):
            raise AssertionError(f"{what}: non-finite values in an output of shape {a.shape}")


def run_case(family, case, rng, ops, ref, _args):
    """'ok' (compared with the reference), 'big' (accepted, shapes checked) or 'rejected'.

    Runs the forward op, then (when it is accepted) the backward op on its output."""
    dtype = case["dtype"]
    x = rng.integers(-3, 4, size=case["x"]).astype(dtype)
    check = (_reference_cost(case, _args) or 0) <= REFERENCE_BUDGET
    try:
        if family == "conv2d":
            w = rng.integers(-2, 3, size=case["w"]).astype(dtype)
            if "w_broadcast_s" in case:
                w = np.broadcast_to(w[..., :1], case["w"][:3] + [case["w_broadcast_s"]])
            geo = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"])
            b = rng.integers(-2, 3, size=w.shape[0]).astype(dtype) if case["bias"] else None
            y = ops.conv2d(x, w, b, **geo)
            out_hw = _args.conv_padding(case["padding"], x.shape[2:], w.shape[2:],
                                        case["stride"], case["dilation"])[3]
            _sane([y], [(x.shape[0], w.shape[0]) + out_hw], "conv2d")
            if check:
                _close(y, ref.conv2d(x, w, b, **geo), dtype, "conv2d y")
            dy = rng.integers(-2, 3, size=y.shape).astype(dtype)
            grads = ops.conv2d_backward(dy, x, w, **geo)
            _sane(grads, [x.shape, w.shape, w.shape[:1]], "conv2d_backward")
            if check:
                for name, got, want in zip("dx dw db".split(), grads,
                                           ref.conv2d_backward(dy, x, w, **geo)):
                    _close(got, want, dtype, f"conv2d_backward {name}")
            return "ok" if check else "big"

        if family == "conv_transpose2d":
            w = rng.integers(-2, 3, size=case["w"]).astype(dtype)
            geo = dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                       output_padding=case["output_padding"])
            b = rng.integers(-2, 3, size=w.shape[1]).astype(dtype) if case["bias"] else None
            y = ops.conv_transpose2d(x, w, b, **geo)
            out_hw = _args.conv_transpose_padding(case["padding"], case["output_padding"],
                                                  x.shape[2:], w.shape[2:], case["stride"],
                                                  case["dilation"])[3]
            _sane([y], [(x.shape[0], w.shape[1]) + out_hw], "conv_transpose2d")
            if check:
                _close(y, ref.conv_transpose2d(x, w, b, **geo), dtype, "conv_transpose2d y")
            dy = rng.integers(-2, 3, size=y.shape).astype(dtype)
            grads = ops.conv_transpose2d_backward(dy, x, w, **geo)
            _sane(grads, [x.shape, w.shape, w.shape[1:2]], "conv_transpose2d_backward")
            if check:
                for name, got, want in zip("dx dw db".split(), grads,
                                           ref.conv_transpose2d_backward(dy, x, w, **geo)):
                    _close(got, want, dtype, f"conv_transpose2d_backward {name}")
            return "ok" if check else "big"

        geo = dict(kernel_size=case["kernel_size"], stride=case["stride"],
                   padding=case["padding"])
        input_shape = tuple(case["x"][:2] + case.get("input_hw", case["x"][2:]))
        if family == "max_pool2d":
            y, idx = ops.max_pool2d(x, **geo)
            out_hw = _args.pool_padding(case["kernel_size"], case["stride"], case["padding"],
                                        x.shape[2:])[3]
            _sane([y, idx], [x.shape[:2] + out_hw] * 2, "max_pool2d")
            if check:
                for got, want in zip((y, idx), ref.max_pool2d(x, **geo)):
                    _close(got, want, dtype, "max_pool2d")
            dy = rng.integers(-2, 3, size=y.shape).astype(dtype)
            dx = ops.max_pool2d_backward(dy, idx, input_shape)
            want = (lambda: ref.max_pool2d_backward(dy, idx, input_shape))
        else:
            y = ops.avg_pool2d(x, **geo)
            out_hw = _args.pool_padding(case["kernel_size"], case["stride"], case["padding"],
                                        x.shape[2:])[3]
            _sane([y], [x.shape[:2] + out_hw], "avg_pool2d")
            if check:
                _close(y, ref.avg_pool2d(x, **geo), dtype, "avg_pool2d")
            dy = rng.integers(-2, 3, size=y.shape).astype(dtype)
            dx = ops.avg_pool2d_backward(dy, input_shape, **geo)
            want = (lambda: ref.avg_pool2d_backward(dy, input_shape, **geo))
        _sane([dx], [input_shape], f"{family}_backward")
        if check and np.prod(input_shape) <= REFERENCE_BUDGET:
            _close(dx, want(), dtype, f"{family}_backward")
        return "ok" if check else "big"
    except (ValueError, TypeError):
        return "rejected"


def run_batch(family, seed, count, out=sys.stdout):
    """Child side: print 'CASE i json' before and 'DONE i outcome' after each case."""
    from cycnn import _args, ops
    from cycnn import reference as ref

    rng = np.random.default_rng(seed)
    cases = list(ISSUE_CASES.get(family, [])) + [make_case(family, rng) for _ in range(count)]
    for i, case in enumerate(cases):
        print("CASE", i, json.dumps(case), file=out, flush=True)
        try:
            outcome = run_case(family, case, rng, ops, ref, _args)
        except AssertionError as exc:
            outcome = f"WRONG {exc}"
        except Exception as exc:   # anything but ValueError/TypeError is a bug
            outcome = f"BAD {type(exc).__name__}: {exc}"
        print("DONE", i, outcome, file=out, flush=True)


if __name__ == "__main__":
    run_batch(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))


# ------------------------------------------------------------------------------ the tests

def run_child(argv, env):
    """Run a batch in a child; returns (failure message or None, outcomes by case)."""
    try:
        proc = subprocess.run([sys.executable] + argv, capture_output=True, text=True,
                              timeout=TIMEOUT, env=env)
        stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:   # a hang: report the case it hangs in
        proc, stdout = None, (exc.stdout or b"").decode()
    started, outcomes = {}, {}
    for line in stdout.splitlines():
        tag, _, rest = line.partition(" ")
        i, _, payload = rest.partition(" ")
        if tag == "CASE":
            started[int(i)] = payload
        elif tag == "DONE":
            outcomes[int(i)] = payload
    if proc is None or proc.returncode != 0:
        last = max(started) if started else None
        what = (f"hung for {TIMEOUT} s" if proc is None else
                f"died with return code {proc.returncode}")
        return (f"child {argv} {what} in case {last}: {started.get(last)}\n"
                f"stderr: {'' if proc is None else proc.stderr[-2000:]}"), outcomes
    if set(outcomes) != set(started):
        return f"child {argv} left cases unfinished\nstderr: {proc.stderr[-2000:]}", outcomes
    bad = [f"case {i} {started[i]}: {o}" for i, o in outcomes.items()
           if o.startswith(("WRONG", "BAD"))]
    return ("\n".join(bad[:10]) or None), outcomes


@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_geometry(family, subprocess_env):
    seed = SEED + FAMILIES.index(family)
    env = subprocess_env(CYCNN_MAX_ALLOC_BYTES=str(MAX_ALLOC), OMP_NUM_THREADS="2")
    failure, outcomes = run_child([__file__, family, str(seed), str(CASES)], env)
    assert failure is None, f"{family} (seed {seed}): {failure}"
    assert len(outcomes) == CASES + len(ISSUE_CASES.get(family, []))
    counts = {k: sum(o == k for o in outcomes.values()) for k in ("ok", "big", "rejected")}
    # the mix must exercise both sides: real comparisons with the reference and rejections
    assert counts["ok"] >= CASES // 5, counts
    assert counts["rejected"] >= CASES // 5, counts


def test_fuzz_harness_reports_a_crash_or_a_hang(subprocess_env, tmp_path, monkeypatch):
    """A child that dies or hangs mid-case is a failure that names the case."""
    script = tmp_path / "crash.py"
    script.write_text("import os\nprint('CASE 0 {\"stride\": 7}', flush=True)\nos.abort()\n")
    failure, _ = run_child([str(script)], subprocess_env())
    assert "died with return code" in failure and "case 0" in failure and '"stride": 7' in failure
    script.write_text("import time\nprint('CASE 3 {\"padding\": 5}', flush=True)\n"
                      "time.sleep(60)\n")
    monkeypatch.setattr(sys.modules[__name__], "TIMEOUT", 3)
    failure, _ = run_child([str(script)], subprocess_env())
    assert "hung for 3 s in case 3" in failure and '"padding": 5' in failure


# ------------------------------------------------------------------------------ the validation

def test_the_issue_cases_give_a_value_error_or_the_reference_result():
    from cycnn import ops
    from cycnn import reference as ref

    one = np.ones((1, 1, 1, 1), "f4")
    with pytest.raises(ValueError, match=r"padding 1073741825\+1073741825 makes the padded "
                                         r"input width 2147483651 \(input 1\); it must be < 2\*\*31"):
        ops.conv2d(one, one, stride=(1, 2**30), padding=(0, 2**30 + 1))
    x = np.arange(8, dtype="f4").reshape(1, 1, 1, 8)
    geo = dict(kernel_size=(1, 4), stride=(1, 2**31 - 1), padding=(0, 2))
    for got, want in zip(ops.max_pool2d(x, **geo), ref.max_pool2d(x, **geo)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ops.avg_pool2d(x, **geo), ref.avg_pool2d(x, **geo))
    np.testing.assert_array_equal(ops.avg_pool2d(x, **geo), [[[[1 / 4]]]])


def test_pad_plus_stride_beyond_int32_computes_the_right_result():
    """Along W: pad + stride - 1 and s*dilation - pad overflow C ints (they crashed); only tap
    s = 2 of the one output column lands inside the image, at column 2 -- so the result is the
    convolution of column 2 with kernel column 2, which the reference computes cheaply."""
    from cycnn import ops
    from cycnn import reference as ref

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 3, 5))
    w = rng.standard_normal((3, 2, 2, 3))
    geo = dict(stride=(1, 2**31 - 1), padding=(1, 2**30 - 4), dilation=(1, 2**29 - 1))
    y = ops.conv2d(x, w, **geo)
    assert y.shape == (2, 3, 4, 1)
    small = dict(stride=1, padding=(1, 0))
    np.testing.assert_allclose(y, ref.conv2d(x[..., 2:3], w[..., 2:3], **small), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, **geo)
    sdx, sdw, sdb = ref.conv2d_backward(dy, x[..., 2:3], w[..., 2:3], **small)
    np.testing.assert_allclose(dx[..., 2:3], sdx, rtol=1e-12)
    np.testing.assert_allclose(dw[..., 2:3], sdw, rtol=1e-12)
    np.testing.assert_allclose(db, sdb, rtol=1e-12)
    assert not dx[..., [0, 1, 3, 4]].any() and not dw[..., :2].any()


def test_same_padding_beyond_int32_is_a_value_error():
    from cycnn import ops

    with pytest.raises(ValueError, match=r"padding 'same' needs padding .* must be < 2\*\*31"):
        ops.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 5, 5)), padding="same",
                   dilation=2**31 - 1)


def test_huge_padding_on_a_tiny_image_hits_the_allocation_limit(monkeypatch):
    from cycnn import _args, ops

    one = np.ones((1, 1, 1, 1), "f4")
    # (2*2**14 + 1)**2 outputs: 4 GiB of output plus 4 GiB of im2col scratch
    with pytest.raises(ValueError, match=r"conv2d of x \(1, 1, 1, 1\) .* would allocate "
                                         r"\d+ bytes .* more than the limit of 4294967296 bytes"):
        ops.conv2d(one, one, padding=2**14)
    monkeypatch.setattr(_args, "MAX_ALLOC_BYTES", 1 << 20)
    assert ops.conv2d(one, one, padding=100).shape == (1, 1, 201, 201)    # 161 KiB + scratch
    with pytest.raises(ValueError, match="conv2d_backward .* would allocate"):
        ops.conv2d_backward(np.ones((1, 1, 401, 401)), one, one, padding=200)
    with pytest.raises(ValueError, match="avg_pool2d_backward for input_shape .* would allocate"):
        ops.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 1000, 1000), 1000)
    with pytest.raises(ValueError, match="max_pool2d_backward for input_shape .* would allocate"):
        ops.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), int),
                                (1, 1, 1000, 1000))
    with pytest.raises(ValueError, match=r"input_shape must hold values < 2\*\*31"):
        ops.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), int),
                                (1, 1, 2**40, 1))


def test_a_broadcast_input_is_not_copied_beyond_the_limit(monkeypatch):
    from cycnn import _args, ops

    monkeypatch.setattr(_args, "MAX_ALLOC_BYTES", 1 << 20)
    x = np.broadcast_to(np.float32(1), (1, 1, 1, 2**20))   # 4 bytes, 4 MiB when copied
    with pytest.raises(ValueError, match=r"copying x \(a broadcast view of shape "
                                         r"\(1, 1, 1, 1048576\)\) into C order would allocate"):
        ops.max_pool2d(x, 2)
    small = np.broadcast_to(np.float32(2), (1, 1, 4, 4))
    np.testing.assert_array_equal(ops.max_pool2d(small, 2)[0], np.full((1, 1, 2, 2), 2))


@pytest.mark.parametrize("text, expected", [("", 2**32), ("1048576", 2**20), ("0x100", 256),
                                            ("1e9", 10**9), ("-5", None), ("lots", None)])
def test_max_alloc_bytes_from_the_environment(monkeypatch, text, expected):
    from cycnn import _args

    monkeypatch.setenv("CYCNN_MAX_ALLOC_BYTES", text)
    if expected is None:
        with pytest.raises(ValueError, match=f"CYCNN_MAX_ALLOC_BYTES must be a positive number "
                                             f"of bytes, got '{text}'"):
            _args._max_alloc_bytes()
    else:
        assert _args._max_alloc_bytes() == expected
