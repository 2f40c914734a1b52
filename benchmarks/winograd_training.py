"""Training's float32 convolutions (cycnn.ops.conv2d and conv2d_backward) with the Winograd
kernel (csrc/conv/swino.c) and without it (conv.set_winograd_mode(0): the broadcast kernel),
alternating A B A B in one process, medians; plus dx alone (the kernel's need_dw=False) and the
per-call filter transform (cycnn_swino_pack_weights, through the inference plan's packer).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/winograd_training.py [--threads 1] [--rounds 7]

GFLOP/s count direct convolution's 2*N*K*Ho*Wo*C*R*S per pass (dx: the same count).
"""
import argparse
import time

import numpy as np

import cycnn
from cycnn import ops
from cycnn._kernels import conv, infer

SHAPES = {   # N, C, H, W, K, R, pad (the GUIDE's benchmark shapes that Winograd takes)
    "lenet-c2": (64, 32, 14, 14, 64, 5, 2),
    "cifar-3x3": (64, 64, 32, 32, 64, 3, 1),
    "vgg-3x3": (32, 128, 28, 28, 128, 3, 1),
}


def _time(fn, reps):
    best = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t)
    return min(best)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7, help="A/B rounds (medians over them)")
    p.add_argument("--reps", type=int, default=3, help="calls per round (the fastest counts)")
    args = p.parse_args()
    cycnn.set_num_threads(args.threads)
    print(f"threads {args.threads}, GEMM path {conv.simd_name()}, {args.rounds} rounds x "
          f"{args.reps} calls, medians of per-round minima (ms)")
    print("| shape | pass | Winograd ms | GFLOP/s | direct ms | GFLOP/s | speed-up |")
    print("|---|---|--:|--:|--:|--:|--:|")
    rng = np.random.default_rng(0)
    for name, (n, c, h, w, k, r, pad) in SHAPES.items():
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((k, c, r, r)) / np.sqrt(c * r * r)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        y = ops.conv2d(x, wt, b, padding=pad)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = np.empty_like(x)
        flops = 2.0 * n * k * y.shape[2] * y.shape[3] * c * r * r
        passes = {
            "forward": lambda: ops.conv2d(x, wt, b, padding=pad),
            "backward (dx, dw, db)": lambda: ops.conv2d_backward(dy, x, wt, padding=pad),
            "dx only": lambda: conv.conv2d_backward(dy, x, wt, dx, None, None, 1, 1, pad, pad,
                                                    1, 1, args.threads, need_dw=False),
            "dw, db only": lambda: ops.conv2d_backward(dy, x, wt, padding=pad, compute_dx=False),
        }
        for pname, fn in passes.items():
            times = {0: [], 1: []}
            for i in range(args.rounds):
                for mode in ((1, 0) if i % 2 == 0 else (0, 1)):
                    conv.set_winograd_mode(mode)
                    fn()                                  # warm: scratch, caches
                    times[mode].append(_time(fn, args.reps))
            conv.set_winograd_mode(1)
            wino, direct = np.median(times[1]), np.median(times[0])
            fl = flops * (2 if pname.startswith("backward") else 1)
            print(f"| {name} | {pname} | {wino * 1e3:.2f} | {fl / wino / 1e9:.0f} | "
                  f"{direct * 1e3:.2f} | {fl / direct / 1e9:.0f} | {direct / wino:.2f}x |")
        for what, kernel in (("forward", wt), ("dx", wt.transpose(1, 0, 2, 3))):
            pack = _time(lambda: infer.PackedWeights(kernel, None, "winograd", conv.simd_name()),
                         10)
            print(f"|  | filter transform ({what}, serial) | {pack * 1e3:.2f} |  |  |  |  |")


if __name__ == "__main__":
    main()
