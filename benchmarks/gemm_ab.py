"""A/B of cycnn's float32 GEMM blocking, beside NumPy's OpenBLAS, each contender in a process of
its own, alternating A B numpy, B numpy A, numpy A B, ... (the order rotated every round).

    PYTHONPATH=src OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/gemm_ab.py [--threads 1]
        [--reps 7] [--rounds 5] [--variants table/rule/MC,KC,NC] [--shapes sq1024,dense-dx,...]

A variant is a value of CYCNN_GEMM_BLOCKING, optionally suffixed "@old" to run on the tree
given by --old-src (read once when cycnn is imported, see
csrc/gemm/gemm.c): "table" = the constant {mc, kc, nc} of the path table (tuned on Zen 4, the
blocking before the cache-size rule), "rule" = the blocking derived from this CPU's cache sizes
(the default), or "mc,kc,nc" explicitly. "numpy" is NumPy's matmul (OpenBLAS limited to
--threads threads with threadpoolctl). Every shape is timed through cycnn.ops.matmul with the
operands laid out as the Dense layer passes them (src/cycnn/layers/core.py): forward
x @ kernel.T (a transposed view, which ops.matmul sends to the broadcast GEMM at batch 64, so it
does not depend on the blocking), weight gradient dy.T @ x, input gradient dy @ kernel.
GFLOP/s = 2*M*N*K / median time; a process times each shape --reps times (median), the table
shows the median over --rounds processes and the median of the per-round speed ratios. Run pinned at 1 thread on a shared machine.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

# name: (M, K, N, layout); layout: "nn" a @ b, "nt" a @ b.T (b stored N x K), "tn" a.T @ b
SHAPES = {
    "sq1024": (1024, 1024, 1024, "nn"),
    "sq512": (512, 512, 512, "nn"),
    "2048x2048x256": (2048, 256, 2048, "nn"),
    "dense-fwd": (64, 3136, 1000, "nt"),     # x (64, 3136) @ kernel.T, kernel (1000, 3136)
    "dense-dw": (1000, 64, 3136, "tn"),      # dy.T @ x, dy (64, 1000), x (64, 3136)
    "dense-dx": (64, 1000, 3136, "nn"),      # dy (64, 1000) @ kernel (1000, 3136)
}


def _operands(m, k, n, layout, rng):
    if layout == "nt":
        return (rng.standard_normal((m, k), dtype=np.float32),
                rng.standard_normal((n, k), dtype=np.float32).T)
    if layout == "tn":
        return (rng.standard_normal((k, m), dtype=np.float32).T,
                rng.standard_normal((k, n), dtype=np.float32))
    return (rng.standard_normal((m, k), dtype=np.float32),
            rng.standard_normal((k, n), dtype=np.float32))


def worker(impl, shapes, threads, reps):
    """Median seconds per shape for one contender, in this process."""
    if impl == "numpy":
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
        mm = np.matmul
    else:
        import cycnn
        from cycnn import ops
        cycnn.set_num_threads(threads)
        mm = ops.matmul
    rng = np.random.default_rng(0)
    out = {}
    for name in shapes:
        m, k, n, layout = SHAPES[name]
        a, b = _operands(m, k, n, layout, rng)
        mm(a, b)
        mm(a, b)                                   # warm: scratch buffers, page faults
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            mm(a, b)
            ts.append(time.perf_counter() - t0)
        out[name] = float(np.median(ts))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", default="table/rule",
                    help="slash-separated, e.g. table/rule/144,256,4080")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--no-numpy", action="store_true")
    ap.add_argument("--old-src", help="a second source tree's src/ (e.g. a built copy of the "
                    "code before a change): variants ending in '@old' import cycnn from it")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    shapes = args.shapes.split(",")
    for s in shapes:
        if s not in SHAPES:
            ap.error(f"unknown shape {s!r}; choose from {', '.join(SHAPES)}")
    if args.worker is not None:
        print(json.dumps(worker(args.worker, shapes, args.threads, args.reps)))
        return

    variants = args.variants.split("/") + ([] if args.no_numpy else ["numpy"])
    times = {v: {s: [] for s in shapes} for v in variants}
    for r in range(args.rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:   # rotated
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            env.pop("CYCNN_GEMM_BLOCKING", None)
            blocking = v
            if v.endswith("@old"):
                if not args.old_src:
                    ap.error(f"variant {v!r} needs --old-src")
                env["PYTHONPATH"] = args.old_src
                blocking = v[:-4]
            if blocking not in ("numpy", "rule"):
                env["CYCNN_GEMM_BLOCKING"] = blocking
            out = subprocess.run([sys.executable, __file__, "--worker",
                                  "numpy" if v == "numpy" else "cycnn",
                                  "--threads", str(args.threads), "--reps", str(args.reps),
                                  "--shapes", ",".join(shapes)],
                                 env=env, check=True, capture_output=True, text=True)
            for s, t in json.loads(out.stdout.strip().splitlines()[-1]).items():
                times[v][s].append(t)

    print(f"float32 matmul GFLOP/s, {args.threads} thread(s), median of {args.rounds} processes "
          f"x {args.reps} reps; (ratio) = median over rounds of the speed ratio variant / first "
          f"variant within the round (robust to the machine's load drifting between rounds)")
    head = f"{'shape':<15}" + "".join(f"{v:>18}" for v in variants)
    print(head)
    for s in shapes:
        m, k, n, _ = SHAPES[s]
        rates = [2 * m * n * k / np.median(times[v][s]) / 1e9 for v in variants]
        t0 = np.array(times[variants[0]][s])
        ratios = [float(np.median(t0 / np.array(times[v][s]))) for v in variants]
        cells = [f"{r:8.1f} ({q:4.2f}x)" for r, q in zip(rates, ratios)]
        print(f"{s:<15}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
