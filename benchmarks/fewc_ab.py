"""A/B of the few-channel convolution kernel (csrc/conv/sconv_fewc.c) against the kernels the
same float32 calls ran before it (conv.set_fewc_mode(0): the broadcast kernel forward, col2im
dx, the direct weight gradient), on first-layer shapes, alternating A B A B in one process.

    PYTHONPATH=src taskset -c 1 python benchmarks/fewc_ab.py [--threads 1] [--reps 15] [--rounds 5]
        [--shapes lenet-c1,rgb-3x3,rgb-5x5] [--clock wall|cpu] [--dy-offset F]

Each part (forward with bias+ReLU, dx alone, dw+db alone) is timed separately through the
kernel entry points of cycnn._kernels.conv on the given thread count (run it pinned, e.g.
taskset -c 1 with --threads 1); GFLOP/s count 2*N*K*Ho*Wo*C*R*S per part; "fwd+bwd" is the
three parts' FLOPs over the sum of their median times. Medians over rounds of the per-round
medians. --dy-offset F puts dy F floats past a 64-byte boundary (NumPy aligns to 16 bytes: F 0
or 4 by chance; the AVX2 weight gradient starts its vectors early when dy is 16 bytes off 32).
"""

import numpy as np

import _ab

import cycnn
from cycnn import ops
from cycnn._kernels import conv

SHAPES = {   # N, C, H, W, K, R, padding
    "lenet-c1": (64, 1, 28, 28, 32, 5, 2),
    "rgb-3x3": (32, 3, 32, 32, 32, 3, 1),
    "rgb-5x5": (32, 3, 32, 32, 32, 5, 2),
    "lenet-c2": (64, 32, 14, 14, 64, 5, 2),
}


def _at_offset(a, floats):
    """A copy of a whose data starts `floats` floats past a 64-byte boundary."""
    raw = np.empty(a.size + 32, a.dtype)
    start = (-raw.ctypes.data % 64) // a.itemsize + floats
    out = raw[start:start + a.size].reshape(a.shape)
    out[...] = a
    return out


def _parts(shape, nt, dy_offset=None):
    n, c, h, w_, k, r, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w_), dtype=np.float32)
    w = (rng.standard_normal((k, c, r, r), dtype=np.float32) * 0.1)
    b = rng.standard_normal(k, dtype=np.float32)
    y = ops.conv2d(x, w, b, padding=p)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    if dy_offset is not None:
        dy = _at_offset(dy, dy_offset)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty_like(b)
    geom = (1, 1, p, p, 1, 1)
    flops = 2 * n * k * c * r * r * y.shape[2] * y.shape[3]
    return flops, {
        "fwd": lambda: conv.conv2d_forward(x, w, b, True, y, *geom, nt, True),
        "dx": lambda: conv.conv2d_backward(dy, x, w, dx, dw, db, *geom, nt, False),
        "dw": lambda: conv.conv2d_backward(dy, x, w, None, dw, db, *geom, nt),
    }


def main(argv=None):
    ap = _ab.parser(__doc__, "lenet-c1,rgb-3x3,rgb-5x5")
    ap.add_argument("--dy-offset", type=int, default=None, choices=range(16),
                    help="dy this many floats past a 64-byte boundary (default: as allocated)")
    args = ap.parse_args(argv)
    clock = _ab.clock_of(args)
    cycnn.set_num_threads(args.threads)
    _ab.print_header("fewc", args, conv.simd_name(), "before (set_fewc_mode(0))",
                     "few-channel kernel", "kernel B")
    for name in args.shapes.split(","):
        flops, parts = _parts(SHAPES[name], args.threads, args.dy_offset)
        res = {m: {p: [] for p in parts} for m in (0, 1)}
        kern = {}
        for f in parts.values():       # warm up both
            for m in (0, 1):
                conv.set_fewc_mode(m)
                f()
        for _ in range(args.rounds):
            for m in (0, 1):
                conv.set_fewc_mode(m)
                for p, f in parts.items():
                    res[m][p].append(_ab.median_time(f, args.reps, clock))
                    if m == 1:
                        kern[p] = ("fewc" if conv.last_dw_fewc() else "other") if p == "dw" \
                            else conv.last_conv_kernel()
        conv.set_fewc_mode(1)
        tot = {0: 0.0, 1: 0.0}
        for p in parts:
            a, b = (float(np.median(res[m][p])) for m in (0, 1))
            tot[0] += a
            tot[1] += b
            print(f"{name:10s} {p:8s} {a * 1e3:8.3f} {flops / a / 1e9:7.1f} {b * 1e3:8.3f} "
                  f"{flops / b / 1e9:7.1f} {a / b:8.2f}x  {kern[p]}")
        print(f"{name:10s} {'fwd+bwd':8s} {tot[0] * 1e3:8.3f} {3 * flops / tot[0] / 1e9:7.1f} "
              f"{tot[1] * 1e3:8.3f} {3 * flops / tot[1] / 1e9:7.1f} {tot[0] / tot[1]:8.2f}x")


if __name__ == "__main__":
    main()
