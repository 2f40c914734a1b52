"""Data-parallel training on one machine: 1 process x 2 threads vs 2 MPI ranks x 1 thread.

    python benchmarks/compare_mpi.py [--data DIR] [--steps 40] [--batch-size 64] [--repeats 3]

Trains the reference network (model.fit, Adam, real MNIST, float32) for --steps global batches
after a warm-up epoch of 5 batches, in two set-ups, alternating, each in its own process(es):
  single   python (this file) --worker, 2 kernel threads
  mpi      mpiexec -n 2 python (this file) --worker --distributed, 1 kernel thread per rank
and prints images/s (medians over --repeats) and, for MPI, the time per step spent in the
gradient allreduce (3.27 M float32 parameters = 13.1 MB per step).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys


def worker(args):
    import cycnn
    from cycnn import datasets, distributed
    from cycnn.examples.mnist import build_model
    if args.distributed:
        distributed.init()
    cycnn.set_num_threads(args.threads)
    cycnn.seed(0)
    (x, y), _ = datasets.load_mnist(root=args.data)
    model = build_model()
    n = args.batch_size * args.steps
    model.fit(x[:5 * args.batch_size], y[:5 * args.batch_size], batch_size=args.batch_size,
              verbose=0)                                   # warm-up: scratch, page faults
    dp = distributed.active()
    comm0, steps0 = (dp.comm_seconds, dp.steps) if dp else (0.0, 0)
    history = model.fit(x[:n], y[:n], batch_size=args.batch_size, verbose=0, shuffle=False)
    result = {"images_per_sec": history.history["images_per_sec"][0]}
    if dp:
        result["allreduce_ms_per_step"] = 1e3 * (dp.comm_seconds - comm0) / (dp.steps - steps0)
        result["params"] = sum(int(p.size) for p in model.params)
    if distributed.is_main():
        print("RESULT " + json.dumps(result), flush=True)


def run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{out.stdout}\n{out.stderr}")
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                           + os.environ.get("PATH", ""))
    if mpiexec is None:
        raise SystemExit("mpiexec not found: pip install mpi4py mpich")
    env = dict(os.environ)
    common = [__file__, "--worker", "--steps", str(args.steps), "--batch-size",
              str(args.batch_size)] + (["--data", args.data] if args.data else [])
    single, mpi = [], []
    for _ in range(args.repeats):
        single.append(run([sys.executable] + common + ["--threads", "2"], env))
        mpi.append(run([mpiexec, "-n", "2", sys.executable] + common
                       + ["--threads", "1", "--distributed"], env))
    s = statistics.median(r["images_per_sec"] for r in single)
    m = statistics.median(r["images_per_sec"] for r in mpi)
    comm = statistics.median(r["allreduce_ms_per_step"] for r in mpi)
    print(f"reference network, batch {args.batch_size}, {args.steps} steps, medians of "
          f"{args.repeats}")
    print(f"{'set-up':<28}{'images/s':>10}{'ms/step':>10}")
    print(f"{'1 process x 2 threads':<28}{s:>10.0f}{1e3 * args.batch_size / s:>10.1f}")
    print(f"{'2 MPI ranks x 1 thread':<28}{m:>10.0f}{1e3 * args.batch_size / m:>10.1f}")
    print(f"allreduce: {comm:.2f} ms per step ({mpi[0]['params']:,} float32 parameters, "
          f"{4 * mpi[0]['params'] / 1e6:.1f} MB)")


if __name__ == "__main__":
    sys.exit(main())
