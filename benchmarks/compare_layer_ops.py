"""cycnn's grouped/depthwise and transposed convolutions and upsampling against PyTorch.

Every (contender, thread count) runs in its own process (two OpenMP runtimes in one process
slow each other down), the processes alternate (A B A B ...) over ``--rounds``, each measures
``--reps`` calls after a warm-up, and the table gives the median over rounds, the ratio
cycnn/torch and cycnn's GFLOP/s (2 * multiply-adds per forward; fwd+bwd counts 3x).

    python benchmarks/compare_layer_ops.py [--rounds 3] [--reps 5] [--threads 1 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

# name: (op, x shape, w shape, keyword arguments, forward multiply-adds)
CASES = {
    "depthwise 3x3 (32x128x28x28)": ("conv", (32, 128, 28, 28), (128, 1, 3, 3),
                                     dict(padding=1, groups=128), 32 * 128 * 28 * 28 * 9),
    "depthwise 3x3 s2 (32x64x56x56)": ("conv", (32, 64, 56, 56), (64, 1, 3, 3),
                                       dict(stride=2, padding=1, groups=64),
                                       32 * 64 * 28 * 28 * 9),
    "grouped g=4 3x3 (32x128x14x14)": ("conv", (32, 128, 14, 14), (128, 32, 3, 3),
                                       dict(padding=1, groups=4), 32 * 128 * 14 * 14 * 32 * 9),
    "transposed 2x2 s2 (32x64x16x16->32)": ("convt", (32, 64, 16, 16), (64, 32, 2, 2),
                                            dict(stride=2), 32 * 64 * 16 * 16 * 32 * 4),
    "transposed 3x3 s2 p1 op1 (32x64x16x16->32)": ("convt", (32, 64, 16, 16), (64, 32, 3, 3),
                                                   dict(stride=2, padding=1, output_padding=1),
                                                   32 * 64 * 16 * 16 * 32 * 9),
    "upsample nearest x2 (32x64x28x28)": ("up", (32, 64, 28, 28), None,
                                          dict(size=2), 0),
}


def _median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def worker(contender, reps):
    rng = np.random.default_rng(0)
    out = {}
    if contender == "torch":
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    else:
        from cycnn import ops
    for name, (op, xs, ws, kw, _) in CASES.items():
        x = rng.standard_normal(xs).astype(np.float32)
        w = None if ws is None else rng.standard_normal(ws).astype(np.float32)
        if contender == "torch":
            xt = torch.from_numpy(x).requires_grad_(True)
            wt = None if w is None else torch.from_numpy(w).requires_grad_(True)
            if op == "conv":
                f = lambda: F.conv2d(xt, wt, **kw)  # noqa: E731
            elif op == "convt":
                f = lambda: F.conv_transpose2d(xt, wt, **kw)  # noqa: E731
            else:
                f = lambda: F.interpolate(xt, scale_factor=kw["size"], mode="nearest")  # noqa: E731
            dy = torch.ones_like(f())

            def fwd():
                with torch.no_grad():
                    f()

            def both():
                f().backward(dy)
        else:
            if op == "conv":
                f = lambda: ops.conv2d(x, w, **kw)  # noqa: E731
                dy = np.ones_like(f())
                b = lambda: ops.conv2d_backward(dy, x, w, **kw)  # noqa: E731
            elif op == "convt":
                f = lambda: ops.conv_transpose2d(x, w, **kw)  # noqa: E731
                dy = np.ones_like(f())
                b = lambda: ops.conv_transpose2d_backward(dy, x, w, **kw)  # noqa: E731
            else:
                f = lambda: ops.upsample2d(x, **kw)  # noqa: E731
                dy = np.ones_like(f())
                b = lambda: ops.upsample2d_backward(dy, **kw)  # noqa: E731
            fwd = f

            def both():
                f()
                b()
        out[name] = (_median_ms(fwd, reps), _median_ms(both, reps))
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker", choices=["cycnn", "torch"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.reps)
        return
    results = {}
    for threads in args.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        for _ in range(args.rounds):
            for contender in ("cycnn", "torch"):
                run = subprocess.run([sys.executable, __file__, "--worker", contender,
                                      "--reps", str(args.reps)], env=env, capture_output=True,
                                     text=True, check=True)
                for name, pair in json.loads(run.stdout.strip().splitlines()[-1]).items():
                    results.setdefault((threads, name, contender), []).append(pair)
    print("| threads | case | cycnn fwd ms | torch fwd ms | cycnn fwd+bwd ms | torch fwd+bwd ms "
          "| fwd+bwd cycnn/torch | cycnn fwd+bwd GFLOP/s |")
    print("|--:|---|--:|--:|--:|--:|--:|--:|")
    for threads in args.threads:
        for name, (_, _, _, _, macs) in CASES.items():
            c = np.median(np.array(results[(threads, name, "cycnn")]), axis=0)
            t = np.median(np.array(results[(threads, name, "torch")]), axis=0)
            rate = f"{6 * macs / c[1] / 1e6:.1f}" if macs else "-"
            print(f"| {threads} | {name} | {c[0]:.2f} | {t[0]:.2f} | {c[1]:.2f} | {t[1]:.2f} "
                  f"| {c[1] / t[1]:.2f} | {rate} |")


if __name__ == "__main__":
    main()
