"""``python -m cycnn.bench --profile``: where a training step of the reference network goes.

The reference network (conv 32@5x5 'same' + ReLU, maxpool 2, conv 64@5x5 'same' + ReLU, maxpool 2,
flatten, dense 1000 + ReLU, dense 10; Adam(1e-3), cross-entropy on logits) trains on batches of
real MNIST (synthetic images when the files are not found). Every part of a step is timed on its
own -- each layer's forward (its fused activation included), the loss, each layer's backward and
the optimizer update -- and the table gives the median of every part over the timed steps, its
share of their sum, then the median of whole steps run the way ``fit`` runs them, the images/s of
``model.fit`` over the same batches, and PyTorch's median step on the same batches, measured first
in a process of its own (``cycnn/_torch_train.py``).
"""
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import cycnn

__all__ = ["reference_network", "load_batches", "profile_step", "torch_steps", "run", "main"]

TORCH_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_torch_train.py")


def reference_network(lr=1e-3, metrics=()):
    """The reference network for (1, 28, 28) inputs, compiled with Adam(lr), cross-entropy."""
    from . import layers as L, optim
    model = cycnn.Sequential([
        L.Conv2D(32, 5, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Conv2D(64, 5, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Flatten(), L.Dense(1000, activation="relu"), L.Dense(10),
    ], input_shape=(1, 28, 28), name="reference")
    model.compile(optimizer=optim.Adam(lr), loss="cross_entropy", metrics=list(metrics))
    return model


def load_batches(n_images, data=None, seed=0):
    """(x float32 (n, 1, 28, 28) in [0, 1], y int64 (n,), source): the first ``n_images`` of
    MNIST's training set, or random images and labels when the files cannot be found."""
    try:
        (x, y), _ = cycnn.datasets.load_mnist(data, download=False)
        return (x[:n_images] / np.float32(255)).astype(np.float32), y[:n_images].astype(np.int64), \
            "MNIST"
    except (OSError, ValueError):
        rng = np.random.default_rng(seed)
        return (rng.random((n_images, 1, 28, 28), dtype=np.float32),
                rng.integers(0, 10, n_images).astype(np.int64), "synthetic (MNIST not found)")


def torch_steps(x, y, threads, steps, warmup, batch_size=64, timeout=600):
    """PyTorch's per-step times (seconds) on batches of (x, y), in a separate process; None
    when torch cannot be imported there."""
    with tempfile.TemporaryDirectory(prefix="cycnn-profile-") as tmp:
        path = os.path.join(tmp, "batches.npz")
        np.savez(path, x=x, y=y)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(
            [sys.executable, "-P", TORCH_WORKER, "--data", path, "--threads", str(threads),
             "--steps", str(steps), "--warmup", str(warmup), "--batch-size", str(batch_size)],
            capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        if "No module named 'torch'" in proc.stderr:
            return None
        raise RuntimeError(f"the torch worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _batch(x, y, i, batch_size):
    b = i % (len(x) // batch_size)
    return x[b * batch_size:(b + 1) * batch_size], y[b * batch_size:(b + 1) * batch_size]


def profile_step(model, x, y, steps, warmup, batch_size=64):
    """Median seconds per part of a training step: ``[(part, seconds), ...]`` in step order."""
    layers, loss, opt = model.layers, model.loss, model.optimizer
    names = ([f"forward  {layer.name}" for layer in layers] + ["loss (value and gradient)"]
             + [f"backward {layer.name}" for layer in reversed(layers)]
             + [f"optimizer {type(opt).__name__}"])
    times = [[] for _ in names]
    clock = time.perf_counter
    for i in range(warmup + steps):
        xb, yb = _batch(x, y, i, batch_size)
        stamps = [clock()]
        out = xb
        for layer in layers:
            out = layer.forward(out, training=True)
            stamps.append(clock())
        _, dy = loss.value_and_grad(out, yb)
        stamps.append(clock())
        for layer in reversed(layers):
            # as model.train_step: the first layer skips its input gradient (nothing needs it)
            layer.needs_input_grad = layer is not layers[0]
            try:
                dy = layer.backward(dy)
            finally:
                layer.needs_input_grad = True
            stamps.append(clock())
        opt.step(model.params, model.grads)
        stamps.append(clock())
        if i >= warmup:
            for j in range(len(names)):
                times[j].append(stamps[j + 1] - stamps[j])
    return [(name, statistics.median(t)) for name, t in zip(names, times)]


def _whole_steps(model, x, y, steps, warmup, batch_size):
    """Median seconds of ``model.train_step`` (forward, loss, backward, update): no timers in
    between."""
    times = []
    for i in range(warmup + steps):
        xb, yb = _batch(x, y, i, batch_size)
        t0 = time.perf_counter()
        model.train_step(xb, yb)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(threads=(2,), steps=40, warmup=5, batch_size=64, data=None, torch=True, out=None):
    """Print the breakdown for each thread count; returns {threads: {...figures...}}."""
    out = out or sys.stdout
    n_images = batch_size * max(steps, 8)
    x, y, source = load_batches(n_images, data)
    results = {}
    for t in threads:
        torch_result = torch_steps(x, y, t, steps, warmup, batch_size) if torch else None
        cycnn.seed(0)
        cycnn.set_num_threads(t)
        model = reference_network()
        gc_was = gc.isenabled()
        gc.disable()
        try:
            parts = profile_step(model, x, y, steps, warmup, batch_size)
            whole = _whole_steps(model, x, y, steps, warmup, batch_size)
            n_fit = batch_size * steps
            t0 = time.perf_counter()
            model.fit(x[:n_fit], y[:n_fit], epochs=1, batch_size=batch_size, shuffle=False,
                      verbose=0)
            fit_rate = n_fit / (time.perf_counter() - t0)
        finally:
            if gc_was:
                gc.enable()
        total = sum(s for _, s in parts)
        print(f"\ntraining step of the reference network: batch {batch_size}, {t} thread(s), "
              f"float32, {source}; medians of {steps} steps after {warmup} warm-up "
              f"(cycnn {cycnn.__version__}, {cycnn.build_info()['simd']})", file=out)
        print(f"| {'part':34s} | {'ms':>7s} | {'share':>6s} |", file=out)
        print(f"|{'-' * 36}|{'-' * 9}:|{'-' * 7}:|", file=out)
        for name, s in parts:
            print(f"| {name:34s} | {s * 1e3:7.2f} | {100 * s / total:5.1f}% |", file=out)
        print(f"| {'sum of the parts':34s} | {total * 1e3:7.2f} | {'100%':>6s} |", file=out)
        print(f"| {'model.train_step (whole step)':34s} | {whole * 1e3:7.2f} | {'':6s} |",
              file=out)
        print(f"| {'model.fit (ms per step)':34s} | {batch_size / fit_rate * 1e3:7.2f} | "
              f"{'':6s} |", file=out)
        line = f"cycnn model.fit: {fit_rate:,.0f} img/s"
        res = {"parts_ms": {name: s * 1e3 for name, s in parts}, "step_ms": whole * 1e3,
               "fit_images_per_s": fit_rate}
        if torch_result is not None:
            tstep = statistics.median(torch_result["step_s"])
            res["torch_step_ms"] = tstep * 1e3
            line += (f"; torch {torch_result['torch']} (own process, same batches): "
                     f"{tstep * 1e3:.2f} ms/step, {batch_size / tstep:,.0f} img/s; "
                     f"cycnn fit / torch images/s = {fit_rate * tstep / batch_size:.2f}x")
        elif torch:
            line += "; torch not importable: no comparison"
        print(line, file=out)
        results[t] = res
    return results


def main(args):
    """Entry point of ``python -m cycnn.bench --profile`` (its parsed options); returns 0."""
    started = time.time()
    run(threads=args.threads, steps=args.reps or 40, warmup=max(args.warmup, 3),
        batch_size=args.batch or 64, torch=not args.no_torch)
    print(f"total time {time.time() - started:.1f} s; load average "
          f"{os.getloadavg()[0]:.2f} (the machine's other work slows both contenders)")
    return 0
