"""How much a NumPy (OpenBLAS) matmul slows the cycnn call that follows it, and what helps.

    PYTHONPATH=src python benchmarks/blas_spin.py [--reps 15] [--threads 2]

After a NumPy matmul, OpenBLAS's worker threads keep spinning for a while, waiting for more work;
a cycnn call made during that time shares the cores with them. Three loops, each timed with and
without a NumPy matmul (1024x1024 float32) right before every cycnn call (only the cycnn call is
timed):

  matmul    cycnn.ops.matmul of 1024x1024 float32 matrices
  train     one training step of the reference network (batch 64, Adam)
  predict   Model.predict on 256 images

under three settings, each in its own process (OpenBLAS reads its environment once):

  default         OpenBLAS with its default thread count
  blas-limit      the NumPy matmul inside threadpoolctl.threadpool_limits(1, user_api="blas")
  OPENBLAS_NUM_THREADS=1   set in the environment before NumPy loads

Prints median milliseconds and the after/alone ratio, and "spin": the CPU time the process burns
while idle (0.2 s of sleep) right after the NumPy matmul, i.e. OpenBLAS's spinning threads (cycnn's
own OpenMP threads are idle then: the idle time before the matmul is subtracted). Speed is
measured, never asserted.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "default": {},
    "blas-limit": {},
    "OPENBLAS_NUM_THREADS=1": {"OPENBLAS_NUM_THREADS": "1"},
}


def _worker(setting, reps, threads):
    import contextlib

    import numpy as np

    import cycnn
    from cycnn._profile import reference_network

    cycnn.set_num_threads(threads)
    limit = contextlib.nullcontext
    if setting == "blas-limit":
        from threadpoolctl import threadpool_limits

        def limit():
            return threadpool_limits(1, user_api="blas")

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    na, nb = (rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2))
    model = reference_network()
    x = rng.random((256, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 256)

    def train_step():
        out = model.forward(x[:64], training=True)
        _, dy = model.loss.value_and_grad(out, y[:64])
        model.backward(dy)
        model.optimizer.step(model.params, model.grads)

    loops = {
        "matmul": lambda: cycnn.ops.matmul(a, b),
        "train": train_step,
        "predict": lambda: model.predict(x, batch_size=256),
    }
    results = {}
    for name, fn in loops.items():
        for _ in range(2):                          # warm-up: scratch, page faults, thread pools
            fn()
        alone, after = [], []
        for _ in range(reps):                       # alternate: both see the same machine load
            t0 = time.perf_counter()
            fn()
            alone.append(time.perf_counter() - t0)
            time.sleep(0.3)                         # let spinning BLAS threads go to sleep
            with limit():
                na @ nb
            t0 = time.perf_counter()
            fn()
            after.append(time.perf_counter() - t0)
            time.sleep(0.3)
        results[name] = (statistics.median(alone), statistics.median(after))
    spins = []
    for _ in range(reps):
        time.sleep(0.3)
        c0 = time.process_time()
        time.sleep(0.2)
        idle = time.process_time() - c0
        with limit():
            na @ nb
        c0 = time.process_time()
        time.sleep(0.2)
        spins.append(time.process_time() - c0 - idle)
    results["spin"] = statistics.median(spins)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.reps, args.threads)))
        return
    print(f"cycnn on {args.threads} threads, {args.reps} reps, medians in ms "
          f"(alone -> right after a 1024x1024 NumPy matmul); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'setting':<24} {'loop':<8} {'alone':>8} {'after':>8} {'ratio':>6}")
    for setting, extra in SETTINGS.items():
        env = dict(os.environ, **extra)
        proc = subprocess.run([sys.executable, __file__, "--worker", setting, "--reps",
                               str(args.reps), "--threads", str(args.threads)],
                              env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            print(f"{setting:<24} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        results = json.loads(proc.stdout.strip().splitlines()[-1])
        spin = results.pop("spin")
        for loop, (alone, after) in results.items():
            print(f"{setting:<24} {loop:<8} {alone * 1e3:8.2f} {after * 1e3:8.2f} "
                  f"{after / alone:6.2f}")
        print(f"{setting:<24} {'spin':<8} {spin * 1e3:8.1f} ms of CPU in the 200 ms after the "
              f"NumPy matmul")


if __name__ == "__main__":
    main()
