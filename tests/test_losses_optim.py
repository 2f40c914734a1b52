"""Losses (values, gradients, stability, validation), optimisers (hand-derived updates and
torch.optim when importable), learning-rate schedules and optimiser state round trips."""
import json
import math

import numpy as np
import pytest

from cycnn import losses, optim


def _randn(*shape, s=0):
    return np.random.default_rng(s).standard_normal(shape)


def _numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


def _check_grad(loss, y_pred, y_true):
    value, grad = loss.value_and_grad(y_pred, y_true)
    assert value == pytest.approx(loss(y_pred, y_true))
    numeric = _numeric_grad(lambda p: loss(p, y_true), y_pred.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- losses
def test_cross_entropy_hand_value_and_gradient():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    y = np.array([2, 0])
    ce = losses.get("cross_entropy")
    p0 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    expected = (-np.log(p0[2]) + np.log(3.0)) / 2
    value, grad = ce.value_and_grad(z, y)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(grad, np.array([p0 - [0, 0, 1], [1 / 3 - 1, 1 / 3, 1 / 3]]) / 2)
    onehot = np.eye(3)[y]
    assert ce(z, onehot) == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(ce.value_and_grad(z, onehot)[1], grad)


@pytest.mark.parametrize("targets", ["labels", "soft", "unnormalised"])
def test_cross_entropy_gradient_matches_finite_differences(targets):
    z = _randn(4, 5, s=1)
    y = {"labels": np.array([0, 4, 2, 2]),
         "soft": np.random.default_rng(2).dirichlet(np.ones(5), size=4),
         "unnormalised": np.random.default_rng(2).random((4, 5))}[targets]
    _check_grad(losses.CrossEntropy(), z, y)


def test_cross_entropy_is_stable_for_large_logits():
    ce = losses.CrossEntropy()
    z = np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 0.0]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = ce.value_and_grad(z, np.array([0, 2]))
    assert value == pytest.approx((0.0 + 1e4 + math.log(2)) / 2)
    assert grad.dtype == np.float32 and np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0, 0, 0], [0.25, 0.25, -0.5]], atol=1e-7)


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    z, y = _randn(6, 4, s=3) * 5, np.array([0, 1, 2, 3, 3, 1])
    tz = torch.tensor(z, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tz, torch.tensor(y))
    tl.backward()
    value, grad = losses.CrossEntropy().value_and_grad(z, y)
    assert value == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("y_true, text", [
    (np.array([0, 3]), r"y_true labels must be in \[0, 3\), got 3"),
    (np.array([0, -1]), "got -1"),
    (np.array([0, 1, 2]), r"y_true labels must have shape \(2,\)"),
    (np.array([0.5, 1.0]), "y_true labels must be integers"),
    (np.zeros((2, 4)), r"y_true must be labels \(2,\) or probabilities \(2, 3\)"),
    (np.zeros((2, 3, 1)), "y_true"),
])
def test_cross_entropy_validates_targets(y_true, text):
    with pytest.raises(ValueError, match=text):
        losses.CrossEntropy()(np.zeros((2, 3)), y_true)


def test_cross_entropy_validates_prediction_shape():
    with pytest.raises(ValueError, match="y_pred"):
        losses.CrossEntropy()(np.zeros(3), np.array([0, 1, 2]))


def test_mse_value_gradient_and_shapes():
    mse = losses.get("mse")
    p, t = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 2.0], [3.0, 3.0]])
    value, grad = mse.value_and_grad(p, t)
    assert value == pytest.approx((1 + 0 + 0 + 4) / 4)
    np.testing.assert_allclose(grad, 2 * (p - t) / 4)
    _check_grad(mse, _randn(3, 4), _randn(3, 4, s=1))
    assert mse(np.array([[1.0], [2.0]]), np.array([0.0, 0.0])) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="y_true must have the shape of y_pred"):
        mse(np.zeros((2, 3)), np.zeros((3, 2)))


def test_binary_cross_entropy_values_gradients_and_logits():
    bce = losses.get("binary_cross_entropy")
    p, t = np.array([[0.9], [0.2]]), np.array([1.0, 0.0])
    assert bce(p, t) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    _check_grad(bce, np.array([[0.3, 0.7], [0.5, 0.99]]), np.array([[0.0, 1.0], [0.4, 1.0]]))
    z = _randn(3, 2, s=5)
    t2 = np.array([[0, 1], [1, 1], [0, 0]], float)
    logits = losses.BinaryCrossEntropy(from_logits=True)
    assert logits(z, t2) == pytest.approx(bce(1 / (1 + np.exp(-z)), t2), rel=1e-9)
    _check_grad(logits, z, t2)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, g = logits.value_and_grad(np.array([[1e4], [-1e4]]), np.array([0.0, 0.0]))
    assert v == pytest.approx(5e3) and np.allclose(g, [[0.5], [0.0]])
    with np.errstate(divide="raise", invalid="raise"):  # clipping keeps the logs finite
        v, g = bce.value_and_grad(np.array([[0.0], [1.0]]), np.array([1.0, 0.0]))
    assert v == pytest.approx(-math.log(1e-7), rel=1e-6) and np.isfinite(g).all()
    assert g[0, 0] < 0 < g[1, 0]  # saturated wrong predictions still get pushed back
    with pytest.raises(ValueError, match=r"y_true must be in \[0, 1\]"):
        bce(np.array([[0.5]]), np.array([2.0]))


def test_binary_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    z, t = _randn(5, 3, s=8) * 4, np.random.default_rng(9).random((5, 3))
    tz = torch.tensor(z, requires_grad=True)
    tl = torch.nn.functional.binary_cross_entropy_with_logits(tz, torch.tensor(t))
    tl.backward()
    value, grad = losses.BinaryCrossEntropy(from_logits=True).value_and_grad(z, t)
    assert value == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_loss_registry_and_configs():
    assert isinstance(losses.get("cross_entropy"), losses.CrossEntropy)
    bce = losses.BinaryCrossEntropy(from_logits=True)
    assert losses.get(bce) is bce
    clone = losses.get(json.loads(json.dumps(losses.serialize(bce))))
    assert isinstance(clone, losses.BinaryCrossEntropy) and clone.from_logits
    assert losses.BinaryCrossEntropy.from_config(bce.get_config()).get_config() == bce.get_config()
    with pytest.raises(ValueError, match="'hinge'"):
        losses.get("hinge")
    with pytest.raises(TypeError, match="from_logits"):
        losses.BinaryCrossEntropy(from_logits="yes")


def test_float32_predictions_give_float32_gradients():
    for loss, t in [(losses.CrossEntropy(), np.array([1, 0])), (losses.MSE(), np.zeros((2, 3))),
                    (losses.BinaryCrossEntropy(), np.zeros((2, 3)))]:
        value, grad = loss.value_and_grad(np.full((2, 3), 0.5, np.float32), t)
        assert isinstance(value, float) and grad.dtype == np.float32


# ----------------------------------------------------------------------------- optimisers
def _run(opt, steps=4, shapes=((3, 2), (4,)), dtype=np.float64):
    params = [_randn(*s, s=i).astype(dtype) for i, s in enumerate(shapes)]
    ids = [id(p) for p in params]
    history = []
    for t in range(steps):
        grads = [_randn(*s, s=100 + 10 * t + i).astype(dtype) for i, s in enumerate(shapes)]
        opt.step(params, grads)
        history.append([p.copy() for p in params])
    assert [id(p) for p in params] == ids  # updated in place
    return history


def test_sgd_hand_derived_updates():
    p = np.array([1.0, -2.0])
    g1, g2 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    opt = optim.SGD(lr=0.1)
    opt.step([p], [g1])
    np.testing.assert_allclose(p, [0.95, -2.1])
    p = np.array([1.0, -2.0])
    opt = optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step([p], [g1])
    d1 = g1 + 0.01 * np.array([1.0, -2.0])
    p1 = np.array([1.0, -2.0]) - 0.1 * d1
    np.testing.assert_allclose(p, p1)
    opt.step([p], [g2])
    d2 = g2 + 0.01 * p1
    np.testing.assert_allclose(p, p1 - 0.1 * (0.9 * d1 + d2))
    p = np.array([1.0, -2.0])
    opt = optim.SGD(lr=0.1, momentum=0.5, nesterov=True)
    opt.step([p], [g1])
    opt.step([p], [g2])
    p1 = np.array([1.0, -2.0]) - 0.1 * (g1 + 0.5 * g1)
    buf = 0.5 * g1 + g2
    np.testing.assert_allclose(p, p1 - 0.1 * (g2 + 0.5 * buf))


def test_adam_and_rmsprop_first_steps():
    g = np.array([0.5, -2.0, 1e-3])
    p = np.zeros(3)
    optim.Adam(lr=0.01).step([p], [g])
    np.testing.assert_allclose(p, -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)
    p = np.zeros(3)
    optim.RMSprop(lr=0.01, rho=0.9).step([p], [g])
    np.testing.assert_allclose(p, -0.01 * g / (np.sqrt(0.1) * np.abs(g) + 1e-8), rtol=1e-12)


TORCH_CASES = [
    (lambda: optim.SGD(lr=0.1), "SGD", dict(lr=0.1)),
    (lambda: optim.SGD(lr=0.05, momentum=0.9, weight_decay=0.01), "SGD",
     dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    (lambda: optim.SGD(lr=0.05, momentum=0.8, nesterov=True), "SGD",
     dict(lr=0.05, momentum=0.8, nesterov=True)),
    (lambda: optim.Adam(lr=0.01), "Adam", dict(lr=0.01)),
    (lambda: optim.Adam(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), "Adam",
     dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (lambda: optim.RMSprop(lr=0.01), "RMSprop", dict(lr=0.01, alpha=0.9)),
    (lambda: optim.RMSprop(lr=0.01, rho=0.95, eps=1e-6, momentum=0.9, weight_decay=0.05),
     "RMSprop", dict(lr=0.01, alpha=0.95, eps=1e-6, momentum=0.9, weight_decay=0.05)),
]


@pytest.mark.parametrize("make, torch_name, torch_kwargs", TORCH_CASES)
def test_optimizers_match_torch(make, torch_name, torch_kwargs):
    torch = pytest.importorskip("torch")
    shapes = ((3, 2), (4,))
    ours = _run(make(), steps=5, shapes=shapes)
    tparams = [torch.tensor(_randn(*s, s=i), requires_grad=True) for i, s in enumerate(shapes)]
    topt = getattr(torch.optim, torch_name)(tparams, **torch_kwargs)
    for t in range(5):
        for i, (tp, s) in enumerate(zip(tparams, shapes)):
            tp.grad = torch.tensor(_randn(*s, s=100 + 10 * t + i))
        topt.step()
        for ours_p, tp in zip(ours[t], tparams):
            np.testing.assert_allclose(ours_p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [lambda: optim.SGD(momentum=0.9), lambda: optim.Adam(),
                                  lambda: optim.RMSprop(momentum=0.5)])
def test_float32_params_stay_float32(make):
    history = _run(make(), steps=2, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in history[-1])


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.1, momentum=0.9),
                                  lambda: optim.Adam(lr=0.01),
                                  lambda: optim.RMSprop(lr=0.01, momentum=0.5)])
def test_state_dict_round_trip_continues_identically(make):
    a = make()
    params_a = [_randn(3, 2), _randn(4, s=1)]
    for t in range(3):
        a.step(params_a, [_randn(3, 2, s=t + 10), _randn(4, s=t + 20)])
    state = a.state_dict()
    assert int(state["step"]) == 3 and all(isinstance(v, np.ndarray) for v in state.values())
    b = make()
    b.load_state_dict({k: v.copy() for k, v in state.items()})
    params_b = [p.copy() for p in params_a]
    for t in range(2):
        grads = [_randn(3, 2, s=t + 30), _randn(4, s=t + 40)]
        a.step(params_a, grads)
        b.step(params_b, grads)
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa, pb)
    with pytest.raises(ValueError, match="unexpected key"):
        make().load_state_dict({"step": np.array(1), "bogus.0": np.zeros(2)})


def test_optimizer_validation_and_config():
    for bad, text in [(lambda: optim.SGD(lr=-1), "lr must be in"),
                      (lambda: optim.SGD(momentum=1.5), "momentum"),
                      (lambda: optim.SGD(nesterov=True), "nesterov"),
                      (lambda: optim.Adam(betas=(0.9, 1.0)), r"betas\[1\]"),
                      (lambda: optim.Adam(betas=0.9), "betas"),
                      (lambda: optim.RMSprop(rho=1.0), "rho"),
                      (lambda: optim.Adam(weight_decay=-0.1), "weight_decay")]:
        with pytest.raises(ValueError, match=text):
            bad()
    with pytest.raises(TypeError, match="lr"):
        optim.Adam(lr="fast")
    opt = optim.Adam(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)
    opt.lr = 0.5
    assert opt.lr == 0.5
    config = json.loads(json.dumps(opt.get_config()))
    assert optim.Adam.from_config(config).get_config() == opt.get_config()
    assert optim.get(optim.serialize(opt)).get_config() == opt.get_config()
    assert isinstance(optim.get("rmsprop"), optim.RMSprop)
    p = np.zeros(3)
    with pytest.raises(ValueError, match="shape"):
        opt.step([p], [np.zeros(4)])
    opt.step([p], [np.ones(3)])
    with pytest.raises(ValueError, match="same params"):
        opt.step([p, p.copy()], [np.ones(3), np.ones(3)])


# ----------------------------------------------------------------------------- schedules
def test_step_lr():
    sched = optim.StepLR(step_size=3, gamma=0.5)
    assert [sched(e, 0.8) for e in range(7)] == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]
    assert optim.StepLR(**sched.get_config()).get_config() == {"step_size": 3, "gamma": 0.5}
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(0)


def test_cosine_lr():
    sched = optim.CosineLR(total_epochs=4, min_lr=0.1)
    lrs = [sched(e, 1.1) for e in range(6)]
    expected = [0.1 + 1.0 * (1 + math.cos(math.pi * min(e, 4) / 4)) / 2 for e in range(6)]
    np.testing.assert_allclose(lrs, expected)
    assert lrs[0] == pytest.approx(1.1) and lrs[2] == pytest.approx(0.6) and lrs[5] == 0.1
    assert optim.get(optim.serialize(sched)).get_config() == {"total_epochs": 4, "min_lr": 0.1}
    with pytest.raises(ValueError, match="total_epochs"):
        optim.CosineLR(-2)


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    for ours, make_theirs in [
        (optim.StepLR(2, gamma=0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.3)),
        (optim.CosineLR(5, min_lr=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01)),
    ]:
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        theirs = make_theirs(topt)
        for epoch in range(5):
            assert ours(epoch, 0.5) == pytest.approx(topt.param_groups[0]["lr"], rel=1e-9)
            topt.step()
            theirs.step()


def test_state_dict_step_must_be_a_non_negative_integer():
    opt = optim.Adam()
    p, g = [np.ones(3, np.float32)], [np.ones(3, np.float32)]
    opt.step(p, g)
    state = opt.state_dict()
    for bad in (np.array(-1), np.array(1.5), np.array([1, 2])):
        with pytest.raises(ValueError, match="'step' must be a non-negative integer"):
            optim.Adam().load_state_dict(dict(state, step=bad))


def test_state_follows_the_parameters_dtype():
    opt = optim.Adam()
    p32 = np.ones(4, np.float32)
    opt.step([p32], [np.full(4, 0.5, np.float32)])
    p64 = p32.astype(np.float64)            # e.g. after layer.dtype = 'float64'
    opt.step([p64], [np.full(4, 0.5)])
    assert opt.state["exp_avg"][0].dtype == np.float64
    assert np.all(p64 < p32)
