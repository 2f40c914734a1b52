"""A/B of the float32 1x1 convolution path against the one before it, alternating A B A B in
one process, beside a NumPy sgemm measured in the same run (the machine's peak).

    PYTHONPATH=src OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/k1x1_ab.py [--threads 1]
        [--reps 15] [--rounds 5] [--shapes 1x1,1x1-wide,1x1-odd]

A = conv.set_pointwise_mode(0): every image copied into a padded buffer before the implicit GEMM
packs it, no prefetching. B = the current path (mode 1): a pointwise image (1x1, stride 1,
unpadded) packed straight from x, and the implicit GEMM (forward, dx) and the weight gradient
prefetching the next image's operands while they compute (csrc/conv/prefetch.h). (Both modes
run the rest of the current kernels, e.g. the bias fused per register tile.) Each part --
forward with bias, dx alone, dw+db alone -- is timed through the kernel entry points of
cycnn._kernels.conv; GFLOP/s count 2*N*K*Ho*Wo*C per part, "fwd+bwd" is the three parts' FLOPs
over the sum of their median times, "% peak" a share of the median GFLOP/s of a 1024^3 NumPy
float32 matmul (OpenBLAS on --threads threads, in a process of its own) timed between the
rounds. Medians over rounds of the per-round medians. Run pinned (taskset) at 1 thread: the
machine is shared (at 2 threads, another process on either core stalls the team at every
barrier).
"""
import os
import subprocess
import sys

import numpy as np

import _ab

import cycnn
from cycnn._kernels import conv

SHAPES = {   # N, C, H, W, K (1x1 filters, stride 1, no padding)
    "1x1": (64, 128, 16, 16, 64),
    "1x1-wide": (32, 256, 14, 14, 256),
    "1x1-odd": (64, 96, 13, 13, 40),
}


def _parts(shape, nt):
    n, c, h, w_, k = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w_), dtype=np.float32)
    w = rng.standard_normal((k, c, 1, 1), dtype=np.float32) * 0.1
    b = rng.standard_normal(k, dtype=np.float32)
    y = np.empty((n, k, h, w_), np.float32)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
    geom = (1, 1, 0, 0, 1, 1)
    flops = 2 * n * k * c * h * w_
    return flops, {
        "fwd": lambda: conv.conv2d_forward(x, w, b, True, y, *geom, nt),
        "dx": lambda: conv.conv2d_backward(dy, x, w, dx, dw, db, *geom, nt, False),
        "dw+db": lambda: conv.conv2d_backward(dy, x, w, None, dw, db, *geom, nt),
    }


_SGEMM = """
import time, numpy as np
rng = np.random.default_rng(1)
a, b = (rng.standard_normal((1024, 1024), dtype=np.float32) for _ in range(2))
c = np.empty_like(a)
np.matmul(a, b, out=c)
ts = []
for _ in range(5):
    t0 = time.perf_counter()
    np.matmul(a, b, out=c)
    ts.append(time.perf_counter() - t0)
print(2 * 1024 ** 3 / float(np.median(ts)) / 1e9)
"""


def _sgemm_gflops(threads):
    """GFLOP/s of a 1024^3 NumPy float32 matmul on `threads` OpenBLAS threads, in a process of
    its own (OpenBLAS's threads spin after a call: in this process they would slow cycnn's)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _SGEMM], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main(argv=None):
    args = _ab.parser(__doc__, "1x1", clock=False).parse_args(argv)
    cycnn.set_num_threads(args.threads)
    peaks = []
    rows = []
    for name in args.shapes.split(","):
        flops, parts = _parts(SHAPES[name], args.threads)
        res = {m: {p: [] for p in parts} for m in (0, 1)}
        for f in parts.values():       # warm up both
            for m in (0, 1):
                conv.set_pointwise_mode(m)
                f()
        for _ in range(args.rounds):
            peaks.append(_sgemm_gflops(args.threads))
            for m in (0, 1):
                conv.set_pointwise_mode(m)
                for p, f in parts.items():
                    res[m][p].append(_ab.median_time(f, args.reps))
        conv.set_pointwise_mode(1)
        rows.append((name, flops, {m: {p: float(np.median(v)) for p, v in res[m].items()}
                                   for m in (0, 1)}))
    peak = float(np.median(peaks))
    print(f"# 1x1 A/B, {args.threads} thread(s), simd {conv.simd_name()}, {args.rounds} rounds x "
          f"{args.reps} reps, medians; A = set_pointwise_mode(0) (padded copy, no prefetch), "
          f"B = current; sgemm peak {peak:.1f} GFLOP/s (NumPy 1024^3, own process, same run)")
    print(f"{'shape':9s} {'part':7s} {'A ms':>8s} {'A GF/s':>7s} {'A %pk':>6s} {'B ms':>8s} "
          f"{'B GF/s':>7s} {'B %pk':>6s} {'B/A speed':>9s}")
    for name, flops, t in rows:
        tot = {0: 0.0, 1: 0.0}
        for p in t[0]:
            a, b = t[0][p], t[1][p]
            tot[0] += a
            tot[1] += b
            print(f"{name:9s} {p:7s} {a * 1e3:8.3f} {flops / a / 1e9:7.1f} "
                  f"{100 * flops / a / 1e9 / peak:5.1f}% {b * 1e3:8.3f} {flops / b / 1e9:7.1f} "
                  f"{100 * flops / b / 1e9 / peak:5.1f}% {a / b:8.2f}x")
        a, b = (3 * flops / tot[m] / 1e9 for m in (0, 1))
        print(f"{name:9s} {'fwd+bwd':7s} {tot[0] * 1e3:8.3f} {a:7.1f} {100 * a / peak:5.1f}% "
              f"{tot[1] * 1e3:8.3f} {b:7.1f} {100 * b / peak:5.1f}% {tot[0] / tot[1]:8.2f}x")


if __name__ == "__main__":
    main()
