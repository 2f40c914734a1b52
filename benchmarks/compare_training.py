"""Training speed of the reference MNIST network: cycnn's ``model.fit`` against PyTorch 2.x.

    python benchmarks/compare_training.py [--threads 1,2] [--steps 100] [--warmup 10] [--runs 3]
                                          [--batch-size 64] [--data DIR] [--synthetic]
                                          [--epoch [--seeds N] [--images N]] [--no-torch]

Both frameworks train the same architecture (conv 32@5x5 'same' + ReLU, maxpool 2, conv 64@5x5
'same' + ReLU, maxpool 2, flatten, dense 1000 + ReLU, dense 10; Adam 1e-3; cross-entropy on logits;
float32) on the same MNIST batches, in that order. Each contender runs in a process of its own --
two OpenMP runtimes in one process spin against each other -- and the runs alternate: every round
runs each (thread count, contender) once, the next round in the reverse order (1 thread cycnn,
torch, 2 threads cycnn, torch; then 2 threads torch, cycnn, 1 thread torch, cycnn; ...), so that
both contenders and both thread counts see the same machine load. A run warms up for ``--warmup``
steps, then times ``--steps`` steps: cycnn as one ``model.fit`` call over those batches
(``shuffle=False``, ``verbose=0``), PyTorch as the usual zero_grad / forward / backward / step
loop. The table gives, per thread count, the median over the runs of images/s and ms/step,
and the ratio cycnn / torch images/s; then cycnn's (and torch's) speed-up from 1 to 2 threads.
The last column is the process CPU time per step (all threads, spinning included): on a machine
shared with other work it shows the work done when the wall clock mostly shows the waiting.

``--epoch`` instead trains each framework for one epoch over the 60,000 training images (the same
shuffled order for both) and prints the test accuracy and the epoch's images/s; ``--seeds N``
repeats that from N initial weights of each framework (``cycnn.seed(s)`` / ``torch.manual_seed(s)``,
s = 0 .. N-1) and gives the mean and range of the accuracies: after one epoch they move by a few
tenths of a percent with the initial weights and the rounding, so one run compares little.

Real MNIST from ``--data`` / ``CYCNN_DATA`` (or ``--synthetic`` random images). The workers are
this script (``--worker cycnn``) and ``cycnn/_torch_train.py``, which never imports cycnn.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def _cycnn_worker(args):
    import cycnn
    from cycnn._profile import reference_network
    cycnn.set_num_threads(args.threads)
    cycnn.seed(args.seed)
    with np.load(args.file, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    bs = args.batch_size
    if args.mode == "time":
        model = reference_network()
        x, y = data["x"], data["y"]
        model.fit(x[:args.warmup * bs], y[:args.warmup * bs], epochs=1, batch_size=bs,
                  shuffle=False, verbose=0)
        n = args.steps * bs
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(x[:n], y[:n], epochs=1, batch_size=bs, shuffle=False, verbose=0)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps({"total_s": total, "cpu_s": cpu, "version": cycnn.__version__,
                          "simd": cycnn.build_info()["simd"]}))
    else:
        model = reference_network(metrics=["accuracy"])
        order = data["order"]
        x, y = data["x_train"][order], data["y_train"][order]
        t0 = time.perf_counter()
        history = model.fit(x, y, epochs=1, batch_size=bs, shuffle=False, verbose=0)
        seconds = time.perf_counter() - t0
        result = model.evaluate(data["x_test"], data["y_test"])
        print(json.dumps({"images_per_s": len(x) / seconds, "seconds": seconds,
                          "fit_images_per_sec": history.history["images_per_sec"][0],
                          "test_accuracy": result["accuracy"], "version": cycnn.__version__}))


def _run_worker(name, mode, path, threads, args):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if name == "cycnn":
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "cycnn", "--mode", mode,
               "--file", path]
    else:
        cmd = [sys.executable, "-P", args.torch_worker, "--data" if mode == "time" else "--epoch",
               path]
    cmd += ["--threads", str(threads), "--batch-size", str(args.batch_size),
            "--seed", str(args.seed)]
    if mode == "time":
        cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} worker failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _torch_available():
    proc = subprocess.run([sys.executable, "-P", "-c", "import torch"], capture_output=True)
    return proc.returncode == 0


def _load(args, n_train=60000, n_test=10000):
    """((x_train, y_train), (x_test, y_test), source): float32 images in [0, 1], int64 labels;
    random ones (n_train + n_test) with --synthetic."""
    import cycnn
    if args.synthetic:
        rng = np.random.default_rng(0)
        n = n_train + n_test
        x = rng.random((n, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, n).astype(np.int64)
        return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:]), "synthetic"
    (xtr, ytr), (xte, yte) = cycnn.datasets.load_mnist(args.data, download=False)
    scale = np.float32(1 / 255)
    return ((xtr * scale).astype(np.float32), ytr.astype(np.int64)), \
        ((xte * scale).astype(np.float32), yte.astype(np.int64)), "MNIST"


def run_order(thread_counts, contenders, runs):
    """The (threads, contender) of each timed run in turn: every round runs each pair once,
    the next round in the reverse order, so that the speed-up from 1 to 2 threads, like the
    cycnn / torch ratio, compares runs at most a round apart."""
    pairs = [(t, name) for t in thread_counts for name in contenders]
    return [p for r in range(runs) for p in (pairs if r % 2 == 0 else pairs[::-1])]


def _timing(args, contenders, tmp):
    n = (args.warmup + args.steps) * args.batch_size
    (x, y), _, source = _load(args, n_train=min(n, 60000), n_test=0)
    reps = -(-n // len(x))
    path = os.path.join(tmp, "batches.npz")
    np.savez(path, x=np.concatenate([x] * reps)[:n] if reps > 1 else x[:n],
             y=np.concatenate([y] * reps)[:n] if reps > 1 else y[:n])
    print(f"reference network, batch {args.batch_size}, {source}, float32; {args.runs} runs per "
          f"contender and thread count, each in its own process, all thread counts and "
          f"contenders in every round, alternating; {args.warmup} warm-up + {args.steps} timed "
          f"steps per run; medians over the runs")
    versions = {}
    per = {(t, name): [] for t in args.threads for name in contenders}
    cpu = {key: [] for key in per}
    for threads, name in run_order(args.threads, contenders, args.runs):
        res = _run_worker(name, "time", path, threads, args)
        per[threads, name].append(args.steps * args.batch_size / res["total_s"])
        cpu[threads, name].append(res["cpu_s"] / args.steps)
        versions[name] = res.get("version") or res.get("torch")
    rates = {}
    for threads in args.threads:
        rates[threads] = {name: statistics.median(per[threads, name]) for name in contenders}
        rates[threads]["_spread"] = {name: (min(per[threads, name]), max(per[threads, name]))
                                     for name in contenders}
        rates[threads]["_cpu"] = {name: statistics.median(cpu[threads, name])
                                  for name in contenders}
    print("\n| threads | contender | images/s | ms/step | runs (min-max img/s) | CPU ms/step |")
    print("|---:|---|---:|---:|---|---:|")
    for threads, r in rates.items():
        for name in contenders:
            lo, hi = r["_spread"][name]
            print(f"| {threads} | {name} {versions[name]} | {r[name]:,.0f} | "
                  f"{args.batch_size / r[name] * 1e3:.1f} | {lo:,.0f}-{hi:,.0f} | "
                  f"{r['_cpu'][name] * 1e3:.1f} |")
    if "torch" in contenders:
        print("\ncycnn / torch images/s: " + ", ".join(
            f"{t} thread{'s' if t > 1 else ''} {r['cycnn'] / r['torch']:.2f}x"
            for t, r in rates.items()))
    if 1 in rates and len(rates) > 1:
        for t in rates:
            if t > 1:
                print(f"speed-up {t} threads over 1: " + ", ".join(
                    f"{name} {rates[t][name] / rates[1][name]:.2f}x" for name in contenders))
    return rates


def _epoch(args, contenders, tmp):
    (xtr, ytr), (xte, yte), source = _load(args)
    if args.images:
        xtr, ytr = xtr[:args.images], ytr[:args.images]
    order = np.random.default_rng(0).permutation(len(xtr))
    path = os.path.join(tmp, "epoch.npz")
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte, order=order)
    print(f"one epoch of the reference network over {len(xtr):,} {source} images (the same "
          f"shuffled order for both), batch {args.batch_size}, Adam 1e-3, then the test accuracy "
          f"on {len(xte):,} images")
    print("\n| threads | contender | seed | test accuracy | epoch s | images/s |")
    print("|---:|---|---:|---:|---:|---:|")
    results = {}
    for threads in args.threads:
        for seed in range(args.seeds):
            for name in contenders:
                res = _run_worker(name, "epoch", path, threads, argparse.Namespace(
                    **dict(vars(args), seed=seed)))
                results[(threads, name, seed)] = res
                print(f"| {threads} | {name} | {seed} | {res['test_accuracy']:.4f} | "
                      f"{res['seconds']:.1f} | {res['images_per_s']:,.0f} |", flush=True)
    if args.seeds > 1:
        print("\n| threads | contender | mean test accuracy | min - max | mean images/s |")
        print("|---:|---|---:|---|---:|")
        for threads in args.threads:
            for name in contenders:
                runs = [results[(threads, name, s)] for s in range(args.seeds)]
                acc = [r["test_accuracy"] for r in runs]
                print(f"| {threads} | {name} | {statistics.mean(acc):.4f} | {min(acc):.4f} - "
                      f"{max(acc):.4f} | "
                      f"{statistics.mean(r['images_per_s'] for r in runs):,.0f} |")
    return results


def _int_list(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of ints, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive ints, got {text!r}")
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--synthetic", action="store_true", help="random data instead of MNIST")
    parser.add_argument("--threads", type=_int_list, default=[1, 2])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="runs per contender and thread count")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epoch", action="store_true",
                        help="one epoch each, then test accuracy (instead of the timing)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="--epoch: train from this many initial weights (seeds 0..N-1)")
    parser.add_argument("--images", type=int, default=0,
                        help="--epoch: train on the first N training images only (0: all)")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--worker", choices=["cycnn"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["time", "epoch"], default="time", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.steps, args.warmup, args.runs, args.batch_size, args.seeds) < 1:
        parser.error("--steps, --warmup, --runs, --batch-size and --seeds must be >= 1")
    if args.images < 0:
        parser.error("--images must be >= 0")
    if args.worker:
        args.threads = args.threads[0]
        _cycnn_worker(args)
        return 0
    import importlib.util
    spec = importlib.util.find_spec("cycnn")
    args.torch_worker = os.path.join(os.path.dirname(spec.origin), "_torch_train.py")
    contenders = ["cycnn"]
    if not args.no_torch:
        if _torch_available():
            contenders.append("torch")
        else:
            print("(PyTorch not importable: cycnn alone; pip install torch for the side-by-side)")
    with tempfile.TemporaryDirectory(prefix="cycnn-compare-") as tmp:
        if args.epoch:
            _epoch(args, contenders, tmp)
        else:
            _timing(args, contenders, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
