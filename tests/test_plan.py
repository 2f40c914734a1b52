"""The inference plan behind Model.predict (cycnn.models.plan) and the pre-packed GEMM it uses.

* every layer kind and activation: predict (plan) == forward (layer by layer), float32
  tolerance, batch 1 (bands within an image), odd batches and 1 and 2 threads; each case also
  checks which native steps the plan made, so a silent fallback fails;
* the convolution step (implicit GEMM, bands of rows, fused activation and pool) against the
  float64 NumPy oracle (cycnn.reference) on every SIMD path, odd shapes, batch 1/3/17, 1, 2 and
  3 threads, and each SIMD path against the portable 'generic' one;
* the plan is rebuilt after a training step, assignment to params, in-place writes announced
  with mark_weights_changed, BatchNorm's training forward, and load_model;
* concurrent predict calls from several Python threads agree with the serial result;
* the pre-packed GEMM with its fused epilogue against float64 NumPy, on every SIMD path the CPU
  has and against the portable 'generic' path.
"""
import threading

import numpy as np
import pytest

import cycnn
from cycnn import layers as L
from cycnn._kernels import conv as conv_kernels
from cycnn._kernels import infer
from cycnn._threads import force_parallel
from cycnn.models import plan as plan_mod

PATHS = [p for p in ("generic", "avx2", "avx512") if conv_kernels.simd_supported(p)]


@pytest.fixture(autouse=True)
def restore_threads_and_path():
    yield
    cycnn.set_num_threads(None)
    conv_kernels.simd_select("auto")


def _randomise(model, rng):
    """Non-trivial biases and BatchNorm statistics (zeros/ones would hide mistakes)."""
    for layer in model.layers:
        for key, arr in list(layer.params.items()):
            if key in ("bias", "beta", "gamma"):
                layer.params[key] = (rng.uniform(0.5, 1.5, arr.shape) if key == "gamma" else
                                     rng.uniform(-0.5, 0.5, arr.shape)).astype(arr.dtype)
        if "running_mean" in layer.buffers:
            layer.buffers["running_mean"] = rng.uniform(-0.3, 0.3, layer.buffers[
                "running_mean"].shape).astype(np.float32)
            layer.buffers["running_var"] = rng.uniform(0.5, 2.0, layer.buffers[
                "running_var"].shape).astype(np.float32)


def _check(stack, input_shape, steps, batches=(1, 3, 8), threads=(1, 2), seed=0):
    cycnn.seed(seed)
    rng = np.random.default_rng(seed)
    model = cycnn.Sequential(stack, input_shape=input_shape)
    _randomise(model, rng)
    kinds = [line.split()[0] for line in model.compile_predictor().describe()]
    assert kinds == steps, f"plan steps {kinds}, expected {steps}"
    x = rng.standard_normal((max(batches),) + input_shape).astype(np.float32)
    expected = model.forward(x, training=False)
    for nt in threads:
        cycnn.set_num_threads(nt)
        for b in batches:
            with force_parallel():     # small inputs still take the parallel paths
                got = model.predict(x[:b], batch_size=b)
            assert got.dtype == np.float32 and got.shape == expected[:b].shape
            err = np.max(np.abs(got - expected[:b]))
            scale = max(1.0, float(np.max(np.abs(expected))))
            assert err <= 2e-5 * scale, f"batch {b}, {nt} threads: max error {err}"


ACTS = [None, "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]


@pytest.mark.parametrize("act", ACTS)
def test_conv2d_each_activation(act):
    tail = [] if act in (None, "relu", "leaky_relu") else ["layer"]
    _check([L.Conv2D(5, 3, padding="same", activation=act)], (3, 9, 11), ["ConvStep"] + tail)


@pytest.mark.parametrize("act", ACTS[:5])
def test_dense_each_activation(act):
    tail = [] if act in (None, "relu", "leaky_relu") else ["layer"]
    _check([L.Flatten(), L.Dense(37, activation=act)], (2, 5, 7), ["view", "DenseStep"] + tail)


@pytest.mark.parametrize("kwargs", [
    dict(filters=7, kernel_size=5, padding=2),
    dict(filters=4, kernel_size=3, stride=2, padding="same"),
    dict(filters=6, kernel_size=(3, 2), dilation=2, padding=(1, 0)),
    dict(filters=9, kernel_size=1),                       # 1x1: no im2col
    dict(filters=3, kernel_size=3, use_bias=False),
])
def test_conv2d_geometries(kwargs):
    _check([L.Conv2D(activation="relu", **kwargs)], (4, 13, 10), ["ConvStep"])


@pytest.mark.parametrize("pool", [L.MaxPool2D, L.AvgPool2D])
@pytest.mark.parametrize("hw", [(12, 12), (13, 11)])      # odd: floor pooling drops a row/column
def test_conv_with_fused_pool(pool, hw):
    _check([L.Conv2D(6, 3, padding="same", activation="relu"), pool(2)], (3,) + hw,
           ["ConvStep"])


def _oracle(x, layer, act, slope, pool):
    """float64 conv (+ act) (+ pool) of x by cycnn.reference (no compiled code)."""
    from cycnn import reference as ref
    from cycnn._args import conv_padding
    (sh, sw), (dh, dw), pads, _ = conv_padding(layer.padding, x.shape[2:], layer.kernel_size,
                                               layer.stride, layer.dilation)
    assert pads[0][0] >= 0 and pads[1][0] >= 0
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), tuple(pads[0]), tuple(pads[1])))
    bias = layer.params.get("bias")
    y = ref.conv2d(xp, layer.params["kernel"].astype(np.float64),
                   None if bias is None else bias.astype(np.float64), stride=(sh, sw),
                   dilation=(dh, dw))
    if act == "relu":
        y = np.maximum(y, 0)
    elif act == "leaky_relu":
        y = np.where(y < 0, slope * y, y)
    if pool == "max":
        y = ref.max_pool2d(y, 2)[0]
    elif pool == "avg":
        y = ref.avg_pool2d(y, 2)
    return y


CONV_CASES = [   # (input shape, Conv2D keyword arguments)
    ((3, 13, 11), dict(filters=7, kernel_size=3, padding="same")),
    ((5, 17, 9), dict(filters=13, kernel_size=5, padding=2, stride=2)),
    ((2, 15, 14), dict(filters=19, kernel_size=(3, 2), dilation=(2, 1), padding="valid")),
    ((4, 9, 23), dict(filters=6, kernel_size=1, use_bias=False)),
    ((1, 28, 28), dict(filters=32, kernel_size=5, padding="same")),
    ((2, 10, 33), dict(filters=8, kernel_size=3, padding="same")),   # pooled rows of 16
    ((9, 11, 13), dict(filters=21, kernel_size=3, padding=(2, 0))),  # 9 channels, partial tiles
    ((10, 9, 15), dict(filters=33, kernel_size=5, padding=(1, 3))),  # 3 panels, the last 1 filter
]


def _kernel_for(param, shape, stride, dilation):
    """The kernel a conv with filters of ``shape`` gets under the conv_kernel fixture's
    ``param``: Winograd (5x5 and 3x3 at stride 1, no dilation, from 1 channel up: below the
    plan's own threshold, to test few channels), else the direct kernel where its workspace
    fits, else the implicit GEMM ('igemm', packed as 'conv')."""
    _, c, r, s = shape
    if (param == "winograd" and r == s and r in (3, 5) and tuple(stride) == (1, 1) and
            tuple(dilation) == (1, 1)):
        return "winograd"
    return "direct" if param != "igemm" and infer.direct_fits(c * r * s) else "igemm"


def _kernel_of(param, conv):
    return _kernel_for(param, conv.params["kernel"].shape, conv.stride, conv.dilation)


@pytest.fixture(params=["igemm", "direct", "winograd"])
def conv_kernel(request, monkeypatch):
    """Every Conv2D of the plans built in the test on this kernel where it applies
    (_kernel_for)."""
    def choose(shape, stride=(1, 1), dilation=(1, 1)):
        name = _kernel_for(request.param, shape, stride, dilation)
        return "conv" if name == "igemm" else name
    monkeypatch.setattr(plan_mod, "conv_kernel", choose)
    return request.param


def test_conv_kernel_choice():
    assert plan_mod.conv_kernel((8, 32, 3, 3), (2, 2)) == "direct"
    assert plan_mod.conv_kernel((8, 32, 3, 3), (1, 1), (2, 2)) == "direct"  # dilated
    assert plan_mod.conv_kernel((8, 1, 5, 5)) == "direct"       # few channels
    assert plan_mod.conv_kernel((8, 3, 3, 3)) == "direct"
    assert plan_mod.conv_kernel((8, 8, 3, 3)) == "winograd"
    assert plan_mod.conv_kernel((8, 8, 5, 5)) == "direct"       # 5x5 from 16 channels
    assert plan_mod.conv_kernel((8, 16, 5, 5)) == "winograd"
    assert plan_mod.conv_kernel((64, 32, 5, 5)) == "winograd"
    assert plan_mod.conv_kernel((8, 32, 5, 3)) == "direct"
    assert plan_mod.conv_kernel((8, 64, 1, 1)) == "conv"        # 1x1: the implicit GEMM
    assert plan_mod.conv_kernel((8, 10 ** 6, 3, 3), (2, 2)) == "conv"   # workspace too big
    model = cycnn.Sequential([L.Conv2D(32, 3, padding="same", activation="relu"),
                              L.Conv2D(64, 1), L.Conv2D(8, 3, activation="leaky_relu"),
                              L.Conv2D(8, 3, stride=2)],
                             input_shape=(8, 16, 16))
    assert [line.split()[-1] for line in model.compile_predictor().describe()] == [
        "(winograd)", "(igemm)", "(winograd)", "(direct)"]
    plan = model.compile_predictor()
    try:
        plan_mod.use_winograd(False)
        assert not plan.fresh()          # built with Winograd: rebuilt on the next predict
        assert [line.split()[-1] for line in model.compile_predictor().describe()] == [
            "(direct)", "(igemm)", "(direct)", "(direct)"]
        assert plan_mod.conv_kernel((64, 32, 5, 5)) == "direct"
    finally:
        plan_mod.use_winograd(True)


def test_winograd_weights_and_steps_refuse_what_they_cannot_run():
    with pytest.raises(ValueError, match="winograd"):
        infer.PackedWeights(np.zeros((4, 2, 5, 3), np.float32), None, "winograd", PATHS[0])
    with pytest.raises(ValueError, match="winograd"):
        infer.PackedWeights(np.zeros((4, 18), np.float32), None, "winograd", PATHS[0])
    packed = infer.PackedWeights(np.zeros((4, 2, 3, 3), np.float32), None, "winograd", PATHS[0])
    with pytest.raises(ValueError, match="stride 1"):
        infer.ConvStep(packed, (2, 9, 9), (3, 3, 2, 2, 1, 1, 1, 1), (5, 5), None, 0.0, None,
                       (1, 1))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("act", [None, "relu", "leaky_relu"])
@pytest.mark.parametrize("pool", [None, "max", "avg"])
def test_conv_step_against_the_oracle_on_each_path(path, act, pool, conv_kernel):
    rng = np.random.default_rng(21)
    conv_kernels.simd_select(path)
    for case, (in_shape, kwargs) in enumerate(CONV_CASES):
        cycnn.seed(case)
        conv = L.Conv2D(**kwargs)
        stack = [conv] + ([L.LeakyReLU(0.3)] if act == "leaky_relu" else
                          [L.ReLU()] if act == "relu" else [])
        stack += [L.MaxPool2D(2)] if pool == "max" else [L.AvgPool2D(2)] if pool == "avg" else []
        model = cycnn.Sequential(stack, input_shape=in_shape)
        _randomise(model, rng)
        plan = model.compile_predictor()
        assert [line.split()[0] for line in plan.describe()] == ["ConvStep"]
        assert plan.path == path
        assert plan.steps[0][1].kernel == _kernel_of(conv_kernel, conv)
        x = rng.standard_normal((17,) + in_shape).astype(np.float32)
        expected = _oracle(x, conv, act, 0.3, pool)
        tol = 3e-6 * float(np.max(np.abs(expected))) * np.prod(conv.kernel_size) ** 0.5 + 1e-6
        for nt in (1, 2, 3):
            cycnn.set_num_threads(nt)
            for b in (1, 3, 17):
                with force_parallel():
                    got = model.predict(x[:b], batch_size=b)
                assert got.shape == expected[:b].shape
                err = np.max(np.abs(got - expected[:b]))
                assert err <= tol, f"{path} {in_shape} {kwargs}: batch {b}, {nt} threads: {err}"
                if path != "generic" and nt == 2:
                    conv_kernels.simd_select("generic")
                    with force_parallel():
                        portable = model.predict(x[:b], batch_size=b)
                    conv_kernels.simd_select(path)
                    np.testing.assert_allclose(got, portable, rtol=1e-5, atol=tol)


def test_conv_step_random_geometries_against_the_oracle(conv_kernel):
    """Bands of rows meet strides, dilations, asymmetric 'same' padding, crops and pools."""
    rng = np.random.default_rng(33)
    for case in range(24):
        c, k = int(rng.integers(1, 6)), int(rng.integers(1, 20))
        r, s_ = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (1, 1) if rng.random() < 0.5 else (int(rng.integers(1, 3)),
                                                      int(rng.integers(1, 3)))
        padding = ["valid", "same", (int(rng.integers(0, 3)), int(rng.integers(0, 3)))][case % 3]
        if padding == "same":
            stride = (1, 1)
        h = int(rng.integers((r - 1) * dilation[0] + 2, 24))
        w = int(rng.integers((s_ - 1) * dilation[1] + 2, 24))
        act = [None, "relu", "leaky_relu"][int(rng.integers(0, 3))]
        pool = [None, "max", "avg"][int(rng.integers(0, 3))]
        cycnn.seed(case)
        conv = L.Conv2D(k, (r, s_), stride=stride, padding=padding, dilation=dilation)
        stack = [conv] + ([L.LeakyReLU(0.2)] if act == "leaky_relu" else
                          [L.ReLU()] if act == "relu" else [])
        model = cycnn.Sequential(stack, input_shape=(c, h, w))
        if pool and min(model.output_shape[1:]) >= 2:
            stack.append(L.MaxPool2D(2) if pool == "max" else L.AvgPool2D(2))
            model = cycnn.Sequential(stack, input_shape=(c, h, w))
        else:
            pool = None
        _randomise(model, rng)
        steps = model.compile_predictor().steps
        assert len(steps) == 1 and steps[0][1].kernel == _kernel_of(conv_kernel, conv)
        x = rng.standard_normal((3, c, h, w)).astype(np.float32)
        expected = _oracle(x, conv, act, 0.2, pool)
        tol = 3e-6 * float(np.max(np.abs(expected))) * (c * r * s_) ** 0.5 + 1e-6
        for nt in (2, 3):
            cycnn.set_num_threads(nt)
            for b in (1, 3):
                with force_parallel():
                    got = model.predict(x[:b], batch_size=b)
                err = np.max(np.abs(got - expected[:b]))
                assert err <= tol, (f"case {case}: {(c, h, w)} {conv.get_config()} {act} {pool}"
                                    f" batch {b}, {nt} threads: {err}")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("filters, threads, split", [
    (64, 2, ("filters", 2)),     # 7 pooled rows: 4 + 3; 4 panels: 2 + 2
    (40, 3, ("filters", 3)),     # 3 panels (the last one 8 filters) on 3 threads
    (64, 3, ("bands", 3)),       # 4 panels on 3 threads: the rows share out better
])
def test_few_images_split_filter_panels_or_bands(path, filters, threads, split, conv_kernel):
    conv_kernels.simd_select(path)
    rng = np.random.default_rng(41)
    cycnn.seed(41)
    conv = L.Conv2D(filters, 3, padding="same", activation="relu")
    model = cycnn.Sequential([conv, L.MaxPool2D(2)], input_shape=(4, 14, 10))
    _randomise(model, rng)
    step = model.compile_predictor().steps[0][1]
    expected_split = split if conv_kernel != "igemm" else ("bands", threads)
    assert step.work_split(1, threads) == expected_split
    assert step.work_split(2 * threads, threads) == ("images", 1)
    x = rng.standard_normal((2, 4, 14, 10)).astype(np.float32)
    ref = _oracle(x, conv, "relu", 0.0, "max")
    cycnn.set_num_threads(threads)
    for b in (1, 2):
        with force_parallel():
            got = model.predict(x[:b], batch_size=b)
        np.testing.assert_allclose(got, ref[:b], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("pool", [L.MaxPool2D, L.AvgPool2D])
@pytest.mark.parametrize("width", [8, 21, 36])     # pooled rows of 4 (masked), 10, 18 floats
def test_conv_step_keeps_nan_through_relu_and_pool(path, pool, width, conv_kernel):
    conv_kernels.simd_select(path)
    cycnn.seed(5)
    model = cycnn.Sequential([L.Conv2D(4, 3, padding="same", activation="relu"), pool(2)],
                             input_shape=(2, 8, width))
    x = np.zeros((1, 2, 8, width), np.float32)
    x[0, 1, 5, width - 3] = np.nan   # reaches the conv outputs around it in every filter
    got = model.predict(x)
    col = (width - 3) // 2
    assert np.isnan(got[0, :, 2, col]).all()
    if conv_kernel != "winograd":
        assert np.isnan(got).sum() <= 4 * 4 and not np.isnan(got[0, :, :, :col - 1]).any()
        return
    # Winograd F(4x4, 3x3): the NaN reaches every output of the 4x4 blocks whose 6x6 input
    # tile holds it (padded row 6, column width - 2; tile t reads rows / columns 4t .. 4t + 5),
    # and no other output.
    rows = {4 * t + a for t in range(3) if 4 * t <= 6 < 4 * t + 6 for a in range(4)}
    cols = {4 * t + b for t in range(width) if 4 * t <= width - 2 < 4 * t + 6 for b in range(4)}
    reached = np.zeros(got.shape[2:], bool)
    for r in rows:
        for c in cols:
            if r // 2 < reached.shape[0] and c // 2 < reached.shape[1]:
                reached[r // 2, c // 2] = True
    assert not np.isnan(got[0][:, ~reached]).any()


def test_pools_that_do_not_fuse_run_as_pool_steps():
    _check([L.Conv2D(4, 3, activation="relu"), L.MaxPool2D(3, stride=2, padding=1),
            L.AvgPool2D(2, stride=1)], (2, 15, 14), ["ConvStep", "PoolStep", "PoolStep"])


def test_separate_activation_layers_and_batchnorm_fold_into_the_gemm():
    stack = [L.Conv2D(8, 3, padding="same"), L.BatchNorm2D(), L.ReLU(), L.MaxPool2D(2),
             L.Conv2D(6, 3), L.LeakyReLU(0.2), L.Flatten(), L.Dropout(0.5), L.Dense(12),
             L.BatchNorm1D(), L.ReLU(), L.Dense(4)]
    _check(stack, (3, 10, 10), ["ConvStep", "ConvStep", "view", "view", "DenseStep",
                                "DenseStep"])


def test_batchnorm_after_an_activation_runs_as_its_layer():
    _check([L.Conv2D(5, 3, activation="relu"), L.BatchNorm2D(), L.GlobalAvgPool2D(),
            L.Dense(3), L.Softmax()], (2, 8, 8), ["ConvStep", "layer", "layer", "DenseStep",
                                                  "layer"])


def test_unknown_layers_run_their_own_forward():
    class Double(L.Layer):
        def forward(self, x, training=False):
            return np.asarray(x) * 2          # may even return a view of the plan's buffer

        def backward(self, dy):
            return dy * 2

    class Same(L.Layer):
        def forward(self, x, training=False):
            return x                          # the plan's own buffer comes back

        def backward(self, dy):
            return dy

    _check([L.Conv2D(4, 3, activation="relu"), Same(), L.Conv2D(3, 3), Double(),
            L.Flatten(), L.Dense(5)], (2, 9, 9),
           ["ConvStep", "layer", "ConvStep", "layer", "view", "DenseStep"])
    _check([L.Conv1D(3, 2, activation="relu"), L.Flatten(), L.Dense(2)], (2, 9),
           ["layer", "view", "DenseStep"])


def test_float64_model_uses_the_layer_path():
    model = cycnn.Sequential([L.Conv2D(3, 3, dtype="float64"), L.Flatten(),
                              L.Dense(2, dtype="float64")], input_shape=(1, 6, 6))
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 6))
    np.testing.assert_allclose(model.predict(x), model.forward(x.astype(np.float32)),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="no compiled inference plan"):
        model.compile_predictor()


def _small_model(seed=3):
    cycnn.seed(seed)
    model = cycnn.Sequential([L.Conv2D(4, 3, padding="same", activation="relu"),
                              L.MaxPool2D(2), L.Flatten(), L.Dense(5)], input_shape=(1, 8, 8))
    model.compile("sgd", "cross_entropy")
    return model


def test_training_step_rebuilds_the_plan():
    model = _small_model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, 6)
    before = model.predict(x)
    model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    after = model.predict(x)
    assert np.max(np.abs(after - before)) > 1e-4        # the weights did move
    np.testing.assert_allclose(after, model.forward(x), rtol=1e-5, atol=1e-5)


def test_assigning_params_rebuilds_the_plan():
    model = _small_model()
    x = np.random.default_rng(1).standard_normal((3, 1, 8, 8)).astype(np.float32)
    first = model.predict(x)
    model.layers[3].params["bias"] = model.layers[3].params["bias"] + 1.0
    np.testing.assert_allclose(model.predict(x), first + 1.0, rtol=1e-5, atol=1e-5)
    model.layers[0].params = {k: v * 2 for k, v in model.layers[0].params.items()}
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-5, atol=1e-5)


def test_in_place_writes_need_mark_weights_changed():
    model = _small_model()
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
    first = model.predict(x)
    model.layers[3].params["kernel"][...] = 0
    np.testing.assert_allclose(model.predict(x), first)           # a snapshot until told
    model.mark_weights_changed()
    expected = np.broadcast_to(model.layers[3].params["bias"], first.shape)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-6, atol=1e-6)


def test_batchnorm_training_forward_rebuilds_the_plan():
    cycnn.seed(4)
    model = cycnn.Sequential([L.Conv2D(3, 3), L.BatchNorm2D(), L.Flatten(), L.Dense(2)],
                             input_shape=(1, 6, 6))
    x = np.random.default_rng(3).standard_normal((4, 1, 6, 6)).astype(np.float32) * 3 + 1
    before = model.predict(x)
    model.forward(x, training=True)                 # moves the running statistics
    after = model.predict(x)
    assert np.max(np.abs(after - before)) > 1e-4
    np.testing.assert_allclose(after, model.forward(x), rtol=1e-5, atol=1e-5)


def test_load_model_gives_the_saved_predictions(tmp_path):
    model = _small_model()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    model.fit(x, rng.integers(0, 5, 4), epochs=1, batch_size=4, verbose=0)
    expected = model.predict(x)
    model.save(tmp_path / "m.cyc")
    loaded = cycnn.load_model(tmp_path / "m.cyc")
    assert all(a.weights_version != b.weights_version
               for a, b in zip(loaded.layers, model.layers))
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-6, atol=1e-6)


def test_concurrent_predict_from_python_threads():
    model = _small_model()
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal((n, 1, 8, 8)).astype(np.float32) for n in (1, 5, 5, 16, 3, 1)]
    expected = [model.forward(x) for x in inputs]
    errors = []
    barrier = threading.Barrier(len(inputs))

    def work(i):
        try:
            barrier.wait()
            for _ in range(20):
                got = model.predict(inputs[i], batch_size=4)
                np.testing.assert_allclose(got, expected[i], rtol=1e-5, atol=1e-5)
        except Exception as exc:     # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    with force_parallel():         # every step on the OpenMP team, from every Python thread
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]


def test_arenas_are_bounded():
    model = _small_model()
    x = np.random.default_rng(7).standard_normal((40, 1, 8, 8)).astype(np.float32)
    for batch in (1, 3, 7, 16, 40):
        model.predict(x[:batch])
    mem = model.compile_predictor().memory()
    assert len(mem["arenas"]) <= plan_mod.MAX_ARENAS
    assert mem["packed_weights"] > 0


# ------------------------------------------------------------------ pre-packed GEMM
SIZES = [(1, 1, 1), (1, 300, 17), (7, 37, 600), (31, 33, 65), (64, 196, 800), (65, 7, 2),
         (129, 129, 513), (6, 16, 16), (5, 0, 3), (0, 3, 4), (4, 5, 0)]


def _reference(a, b, bias, axis, act, slope):
    out = a.astype(np.float64) @ b.astype(np.float64)
    if bias is not None:
        out = out + (bias[:, None] if axis == 0 else bias[None, :])
    if act == "relu":
        out = np.maximum(out, 0)
    elif act == "leaky_relu":
        out = np.where(out < 0, slope * out, out)
    return out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("packed", ["a", "b"])
@pytest.mark.parametrize("act", [None, "relu", "leaky_relu"])
def test_packed_gemm_with_epilogue(path, packed, act):
    rng = np.random.default_rng(8)
    for M, N, K in SIZES:
        a = rng.standard_normal((M, K)).astype(np.float32)
        b = rng.standard_normal((K, N)).astype(np.float32)
        for axis in (0, 1):
            bias = rng.standard_normal(M if axis == 0 else N).astype(np.float32)
            for bb in (None, bias):
                got = infer.packed_gemm(a, b, bb, axis, act, 0.1, packed=packed, path=path)
                ref = _reference(a, b, bb, axis, act, 0.1)
                tol = 2e-6 * max(1.0, K) ** 0.5 + 1e-5
                assert got.shape == (M, N)
                if got.size:
                    err = np.max(np.abs(got - ref))
                    assert err <= tol, f"{path} {packed} {M}x{N}x{K}: error {err}"
                generic = infer.packed_gemm(a, b, bb, axis, act, 0.1, packed=packed,
                                            path="generic")
                np.testing.assert_allclose(got, generic, rtol=1e-5, atol=tol)


@pytest.mark.parametrize("path", PATHS)
def test_packed_gemm_relu_keeps_nan(path):
    a = np.ones((7, 5), np.float32)
    b = np.ones((5, 20), np.float32)
    a[2, 3] = np.nan
    got = infer.packed_gemm(a, b, None, 0, "relu", packed="a", path=path)
    assert np.isnan(got[2]).all() and not np.isnan(np.delete(got, 2, axis=0)).any()


def test_packed_weights_reject_unknown_paths():
    with pytest.raises(ValueError, match="cannot run"):
        infer.PackedWeights(np.ones((2, 3), np.float32), None, "a", "sse9")


@pytest.mark.parametrize("path", PATHS)
def test_plan_on_each_simd_path(path):
    conv_kernels.simd_select(path)
    assert model_plan_path() == path


def model_plan_path():
    model = _small_model()
    x = np.random.default_rng(9).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), model.forward(x), rtol=1e-5, atol=1e-5)
    return model.compile_predictor().path


def test_functional_chain_uses_the_plan_and_branching_graphs_do_not():
    cycnn.seed(11)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
    inp = cycnn.Input((2, 8, 8))
    out = L.Dense(4)(L.Flatten()(L.Conv2D(3, 3, activation="relu")(inp)))
    chain = cycnn.Model(inp, out)
    assert [s.split()[0] for s in chain.compile_predictor().describe()] == [
        "ConvStep", "view", "DenseStep"]
    np.testing.assert_allclose(chain.predict(x), chain.forward(x), rtol=1e-5, atol=1e-5)

    inp = cycnn.Input((2, 8, 8))
    out = L.Add()([L.Conv2D(3, 3)(inp), L.Conv2D(3, 3)(inp)])
    branching = cycnn.Model(inp, out)
    with pytest.raises(ValueError, match="no compiled inference plan"):
        branching.compile_predictor()
    np.testing.assert_allclose(branching.predict(x), branching.forward(x), rtol=1e-6)
