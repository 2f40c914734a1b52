"""Two builds of cycnn's Winograd convolution side by side: training's forward, dx and dw on
the GUIDE's shapes that take it (lenet-c2, cifar-3x3, vgg-3x3), each build in its own
process, the processes alternating A B B A ..., medians over the rounds.

    cp -r src/cycnn /tmp/cycnn-old/       # a copy of the build before a change (with its .so)
    ... change, rebuild ...
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/winograd_ab.py --old /tmp/cycnn-old \\
        --new src [--threads 1] [--rounds 7]

--old and --new are directories holding a built `cycnn` package (put on PYTHONPATH in turn).
A process times `--reps` calls of each pass (the median counts): with one thread count of 1,
on its own CPU time (time.process_time: a core shared with other jobs inflates wall time, not
that), else on wall time. Passes: "fwd" ops.conv2d; "dx" the kernel's
dx alone (need_dw=False); "dw" ops.conv2d_backward(..., compute_dx=False) (dw and db);
"fwd+bwd" ops.conv2d then ops.conv2d_backward (dx, dw, db), as a training step has them.
With --threads 1,2 it also prints each build's 1-thread / 2-thread ratio of fwd+bwd.

--ratio: instead, each process alternates 1 and 2 threads on fwd+bwd call by call (the two
timings of a pair see the same machine) and reports the median of the pairs' ratios, wall
time; the builds' processes alternate as above:
    taskset -c 0,1 python benchmarks/winograd_ab.py --old OLD --new src --ratio --rounds 5 \
        --shapes cifar-3x3
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

SHAPES = {   # N, C, H, W, K, R, pad
    "lenet-c2": (64, 32, 14, 14, 64, 5, 2),
    "cifar-3x3": (64, 64, 32, 32, 64, 3, 1),
    "vgg-3x3": (32, 128, 28, 28, 128, 3, 1),
}
PASSES = ("fwd", "dx", "dw", "fwd+bwd")

WORKER = r"""
import json, sys, time
import numpy as np
import cycnn
from cycnn import ops
from cycnn._kernels import conv
threads, reps, shapes = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
cycnn.set_num_threads(threads)
clock = time.process_time if sys.argv[4] == "cpu" else time.perf_counter
rng = np.random.default_rng(0)
out = {}
for name, (n, c, h, w, k, r, pad) in shapes.items():
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = (rng.standard_normal((k, c, r, r)) / np.sqrt(c * r * r)).astype(np.float32)
    y = ops.conv2d(x, wt, padding=pad)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    dx = np.empty_like(x)
    fns = {
        "fwd": lambda: ops.conv2d(x, wt, padding=pad),
        "dx": lambda: conv.conv2d_backward(dy, x, wt, dx, None, None, 1, 1, pad, pad, 1, 1,
                                           threads, need_dw=False),
        "dw": lambda: ops.conv2d_backward(dy, x, wt, padding=pad, compute_dx=False),
        "fwd+bwd": lambda: (ops.conv2d(x, wt, padding=pad),
                            ops.conv2d_backward(dy, x, wt, padding=pad)),
    }
    out[name] = {}
    for p, fn in fns.items():
        fn()                                     # warm: scratch buffers, caches
        times = []
        for _ in range(reps):
            t = clock()
            fn()
            times.append(clock() - t)
        out[name][p] = float(np.median(times))
print(json.dumps(out))
"""


RATIO_WORKER = r"""
import json, sys, time
import numpy as np
import cycnn
from cycnn import ops
reps, shapes = int(sys.argv[1]), json.loads(sys.argv[2])
rng = np.random.default_rng(0)
out = {}
for name, (n, c, h, w, k, r, pad) in shapes.items():
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = (rng.standard_normal((k, c, r, r)) / np.sqrt(c * r * r)).astype(np.float32)
    dy = rng.standard_normal(ops.conv2d(x, wt, padding=pad).shape, dtype=np.float32)
    def fb():
        ops.conv2d(x, wt, padding=pad)
        ops.conv2d_backward(dy, x, wt, padding=pad)
    for t in (1, 2):
        cycnn.set_num_threads(t)
        fb()
    ratios, times = [], {1: [], 2: []}
    for i in range(reps):
        for t in ((1, 2) if i % 2 == 0 else (2, 1)):
            cycnn.set_num_threads(t)
            a = time.perf_counter()
            fb()
            times[t].append(time.perf_counter() - a)
        ratios.append(times[1][-1] / times[2][-1])
    out[name] = [float(np.median(ratios)), float(np.median(times[1])),
                 float(np.median(times[2]))]
print(json.dumps(out))
"""


def run_ratio(path, reps, shapes):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
    env.pop("OMP_NUM_THREADS", None)
    res = subprocess.run([sys.executable, "-c", RATIO_WORKER, str(reps), json.dumps(shapes)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def ratios(args, shapes):
    res = {"old": [], "new": []}
    for r in range(args.rounds):
        for b in (("old", "new") if r % 2 == 0 else ("new", "old")):
            res[b].append(run_ratio(getattr(args, b), max(args.reps, 6), shapes))
    print(f"old {args.old}, new {args.new}; fwd+bwd, 1 and 2 threads alternating call by call "
          f"in each process ({max(args.reps, 6)} pairs), {args.rounds} processes per build; "
          f"per process: median of the pairs' 1-thread / 2-thread ratios (wall time)")
    print("| shape | build | ratio per process | 1-thread ms | 2-thread ms |\n"
          "|---|---|---|--:|--:|")
    for s in shapes:
        for b in ("old", "new"):
            rs = " ".join(f"{x[s][0]:.2f}" for x in res[b])
            t1 = np.median([x[s][1] for x in res[b]]) * 1e3
            t2 = np.median([x[s][2] for x in res[b]]) * 1e3
            print(f"| {s} | {b} | {rs} | {t1:.1f} | {t2:.1f} |")


def run(path, threads, reps, shapes, clock):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(path), OMP_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(reps),
                          json.dumps(shapes), clock], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", required=True, help="directory holding the old cycnn package")
    p.add_argument("--new", required=True, help="directory holding the new cycnn package")
    p.add_argument("--threads", default="1", help="thread counts, comma-separated")
    p.add_argument("--rounds", type=int, default=7, help="A/B rounds (medians over them)")
    p.add_argument("--reps", type=int, default=5, help="calls per pass in a round")
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--ratio", action="store_true",
                   help="1-thread / 2-thread ratio of fwd+bwd, threads alternating per call")
    args = p.parse_args()
    shapes = {s: SHAPES[s] for s in args.shapes.split(",")}
    if args.ratio:
        ratios(args, shapes)
        return
    threads = [int(t) for t in args.threads.split(",")]
    clock = "cpu" if threads == [1] else "wall"
    res = {(b, t): [] for b in ("old", "new") for t in threads}
    for r in range(args.rounds):
        for t in threads:
            for b in (("old", "new") if r % 2 == 0 else ("new", "old")):
                res[b, t].append(run(getattr(args, b), t, args.reps, shapes, clock))

    def med(b, t, s, q):
        return float(np.median([x[s][q] for x in res[b, t]])) * 1e3

    print(f"old {args.old}, new {args.new}; {args.rounds} rounds x {args.reps} calls, "
          f"medians (ms, {'process CPU' if clock == 'cpu' else 'wall'} time)")
    for t in threads:
        print(f"\n{t} thread(s)\n| shape | pass | old ms | new ms | old / new |\n"
              "|---|---|--:|--:|--:|")
        for s in shapes:
            for q in PASSES:
                o, n = med("old", t, s, q), med("new", t, s, q)
                print(f"| {s} | {q} | {o:.2f} | {n:.2f} | {o / n:.2f}x |")
    if len(threads) > 1 and 1 in threads:
        t2 = max(threads)
        print(f"\nfwd+bwd, 1-thread time / {t2}-thread time\n| shape | old | new |\n|---|--:|--:|")
        for s in shapes:
            row = [f"{med(b, 1, s, 'fwd+bwd') / med(b, t2, s, 'fwd+bwd'):.2f}x"
                   for b in ("old", "new")]
            print(f"| {s} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
