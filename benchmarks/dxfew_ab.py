"""A/B of the few-channel dx kernel (csrc/conv/sconv_dxfew.c) against the kernel the same float32
calls ran before it (conv.set_dxfew_mode(0): col2im for 1-2 input channels, the few-channel
kernel's channels-last path for 3-4), alternating A B A B in one process.

    PYTHONPATH=src OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/dxfew_ab.py [--threads 1]
        [--reps 15] [--rounds 5] [--shapes lenet-c1,rgb64-3x3] [--clock wall|cpu]

Parts, timed through the kernel entry points of cycnn._kernels.conv on the given thread count
(run it pinned, e.g. taskset -c 0 with --threads 1):
  dx      conv2d_backward with need_dw=False: dx alone (B: the kernel on its own image loop)
  dw      conv2d_backward with dx=None: dw + db alone (the same kernel in A and B)
  bwd     conv2d_backward: dx + dw + db (B: dx fused into the weight gradient's image loop)
  dx|bwd  bwd - dw: what dx adds to the backward pass
  fwd+bwd conv2d_forward (bias + ReLU) + bwd
GFLOP/s count 2*N*K*Ho*Wo*C*R*S per pass (fwd+bwd: three). Medians over rounds of the
per-round medians.
"""
import numpy as np

import _ab

import cycnn
from cycnn import ops
from cycnn._kernels import conv

SHAPES = {   # N, C, H, W, K, R, padding
    "lenet-c1": (64, 1, 28, 28, 32, 5, 2),
    "rgb64-3x3": (64, 3, 32, 32, 64, 3, 1),
    "rgb-3x3": (32, 3, 32, 32, 32, 3, 1),
    "rgb-5x5": (32, 3, 32, 32, 32, 5, 2),
    "gray-3x3": (64, 1, 32, 32, 32, 3, 1),
    "c2-5x5": (64, 2, 28, 28, 32, 5, 2),
}


def _parts(shape, nt):
    n, c, h, w_, k, r, p = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w_), dtype=np.float32)
    w = rng.standard_normal((k, c, r, r), dtype=np.float32) * 0.1
    b = rng.standard_normal(k, dtype=np.float32)
    y = ops.conv2d(x, w, b, padding=p)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty_like(b)
    geom = (1, 1, p, p, 1, 1)
    flops = 2 * n * k * c * r * r * y.shape[2] * y.shape[3]

    def fwd():
        conv.conv2d_forward(x, w, b, True, y, *geom, nt, True)

    def bwd():
        conv.conv2d_backward(dy, x, w, dx, dw, db, *geom, nt)

    def both():
        fwd()
        bwd()

    return flops, {
        "dx": (flops, lambda: conv.conv2d_backward(dy, x, w, dx, dw, db, *geom, nt, False)),
        "dw": (flops, lambda: conv.conv2d_backward(dy, x, w, None, dw, db, *geom, nt)),
        "bwd": (2 * flops, bwd),
        "fwd+bwd": (3 * flops, both),
    }


def main(argv=None):
    args = _ab.parser(__doc__, "lenet-c1,rgb64-3x3").parse_args(argv)
    clock = _ab.clock_of(args)
    cycnn.set_num_threads(args.threads)
    _ab.print_header("dxfew", args, conv.simd_name(), "before (set_dxfew_mode(0))",
                     "the few-channel dx kernel", "dx kernel A/B")
    for name in args.shapes.split(","):
        flops, parts = _parts(SHAPES[name], args.threads)
        res = {m: {p: [] for p in parts} for m in (0, 1)}
        kern = {}
        old = conv.set_dxfew_mode(1)
        try:
            for m in (0, 1):                          # warm up; the dx kernel each mode runs
                conv.set_dxfew_mode(m)
                for _, f in parts.values():
                    f()
                parts["dx"][1]()
                kern[m] = conv.last_conv_kernel()
            for _ in range(args.rounds):
                for m in (0, 1):
                    conv.set_dxfew_mode(m)
                    for p, (_, f) in parts.items():
                        res[m][p].append(_ab.median_time(f, args.reps, clock))
        finally:
            conv.set_dxfew_mode(old)
        med = {m: {p: float(np.median(v)) for p, v in res[m].items()} for m in (0, 1)}
        for m in (0, 1):
            med[m]["dx|bwd"] = med[m]["bwd"] - med[m]["dw"]
        fl = {p: f for p, (f, _) in parts.items()}
        fl["dx|bwd"] = flops
        for p in ("dx", "dw", "bwd", "dx|bwd", "fwd+bwd"):
            a, b = med[0][p], med[1][p]
            print(f"{name:10s} {p:8s} {a * 1e3:8.3f} {fl[p] / a / 1e9:7.1f} {b * 1e3:8.3f} "
                  f"{fl[p] / b / 1e9:7.1f} {a / b:8.2f}x  {kern[0]}/{kern[1]}")


if __name__ == "__main__":
    main()
