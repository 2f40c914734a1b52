"""Convolution forward+backward on one thread, timed by PROCESS CPU TIME (minimum of --reps runs),
for deciding between kernel variants on a busy machine where wall-clock times are noise.

    python benchmarks/conv_cpu_time.py [--shapes lenet-c2,cifar-3x3] [--reps 9] [--no-torch]

Each contender runs in its own process (this script re-invokes itself with --impl): cycnn's
implicit GEMM (the default float32 path), cycnn's previous im2col + GEMM path
(``cycnn._kernels.conv.set_implicit_gemm(False)``) and torch (torch.set_num_threads(1)). Prints
ms, GFLOP/s and the cycnn/torch ratio per shape (bench.SHAPES), and the geometric mean.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import cycnn
from cycnn import bench


def _child(impl, shapes, reps):
    torch = bench.load_torch() if impl == "torch" else None
    if torch is not None:
        torch.set_num_threads(1)
    cycnn.set_num_threads(1)
    if impl == "cycnn-im2col":
        from cycnn._kernels import conv
        conv.set_implicit_gemm(False)
    out = {}
    for name in shapes:
        case = bench.make_case("torch" if torch is not None else "cycnn", "conv_fwd_bwd", name,
                               torch=torch)
        case.fn()
        times = []
        for _ in range(reps):
            t0 = time.process_time()
            case.fn()
            times.append(time.process_time() - t0)
        out[name] = (min(times), case.work)
    print(json.dumps(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    conv_shapes = [n for n, s in bench.SHAPES.items() if s.kind == "conv"]
    p.add_argument("--shapes", default=",".join(conv_shapes))
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--impl", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shapes = args.shapes.split(",")
    if args.impl:
        return _child(args.impl, shapes, args.reps)
    impls = ["cycnn-im2col", "cycnn"] + ([] if args.no_torch or bench.load_torch() is None
                                         else ["torch"])
    res = {}
    for impl in impls:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--impl", impl,
                               "--shapes", args.shapes, "--reps", str(args.reps)],
                              capture_output=True, text=True, check=True)
        res[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    print("| shape | " + " | ".join(f"{i} ms" for i in impls) + " | cycnn GFLOP/s | cycnn/torch |")
    print("|---|" + "--:|" * (len(impls) + 2))
    ratios = []
    for name in shapes:
        t, work = res["cycnn"][name]
        ratio = t / res["torch"][name][0] if "torch" in res else None
        if ratio:
            ratios.append(ratio)
        print(f"| {name} | " + " | ".join(f"{res[i][name][0] * 1e3:.1f}" for i in impls) +
              f" | {work / t / 1e9:.0f} | {'-' if ratio is None else f'{ratio:.2f}'} |")
    if ratios:
        print(f"geometric mean cycnn/torch: "
              f"{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
