"""One convolution layer (+ bias + ReLU) through ``model.predict`` on the Winograd kernel and on
the broadcast (direct) kernel, alternating in one process: median times, effective GFLOP/s
(direct convolution's FLOPs) and the speed-up.

    python benchmarks/winograd_vs_direct.py [--threads 1] [--batch 32] [--rounds 6]

Run it with OMP_NUM_THREADS equal to --threads (and pinned, e.g. ``taskset -c 1``, on a shared
machine).
"""
import argparse
import statistics
import time

import numpy as np

import cycnn
from cycnn import layers as L
from cycnn.models import plan as plan_mod

CASES = {   # name: (C, H, W, K, R)
    "mnist-conv2": (32, 14, 14, 64, 5),
    "c16-5x5": (16, 14, 14, 32, 5),
    "c8-5x5": (8, 14, 14, 32, 5),
    "vgg-conv2": (32, 32, 32, 32, 3),
    "vgg-conv3": (32, 16, 16, 64, 3),
    "vgg-conv4": (64, 16, 16, 64, 3),
    "vgg-conv5": (64, 8, 8, 128, 3),
    "cifar-3x3": (64, 32, 32, 64, 3),
    "vgg-3x3": (128, 28, 28, 128, 3),
    "c8-3x3": (8, 32, 32, 32, 3),
    "c16-3x3": (16, 32, 32, 32, 3),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--cases", default=",".join(CASES))
    args = p.parse_args()
    cycnn.set_num_threads(args.threads)
    n = args.batch
    print(f"{args.threads} thread(s), batch {n}, medians of {args.rounds} rounds (best of 5 calls "
          f"each)")
    print("| layer | C | K | HxW | filter | Winograd ms | GFLOP/s | direct ms | GFLOP/s | speed-up |")
    print("|---|--:|--:|---|---|--:|--:|--:|--:|--:|")
    try:
        for name in args.cases.split(","):
            c, h, w, k, r = CASES[name]
            model = cycnn.Sequential([L.Conv2D(k, r, padding="same", activation="relu")],
                                     input_shape=(c, h, w))
            x = np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32)
            flops = 2 * n * k * c * r * r * h * w
            best = {True: [], False: []}
            for _ in range(args.rounds):
                for wino in (True, False):
                    plan_mod.use_winograd(wino)
                    model.predict(x, batch_size=n)
                    times = []
                    for _ in range(5):
                        t0 = time.perf_counter()
                        model.predict(x, batch_size=n)
                        times.append(time.perf_counter() - t0)
                    best[wino].append(min(times))
            tw, td = statistics.median(best[True]), statistics.median(best[False])
            print(f"| {name} | {c} | {k} | {h}x{w} | {r}x{r} | {tw * 1e3:.2f} | "
                  f"{flops / tw / 1e9:.0f} | {td * 1e3:.2f} | {flops / td / 1e9:.0f} | "
                  f"{td / tw:.2f}x |")
    finally:
        plan_mod.use_winograd(True)


if __name__ == "__main__":
    main()
