"""Benchmark contenders in worker processes of their own, so that no two thread pools (cycnn's
OpenMP, PyTorch's, ONNX Runtime's, a BLAS) share a process: the parent starts ``python -m MODULE
--worker NAME`` (:class:`Worker`), the worker answers one JSON object per line on stdin with one
on stdout (:func:`serve`) and times blocks of calls (:func:`time_calls`). Used by the kernel
benchmark (``cycnn.bench``) and the inference benchmark (``cycnn._bench_inference``).
"""
import gc
import json
import os
import subprocess
import sys
import time

SETTLE_S = 0.02    # pause before each contender's turn (other workers' threads stop spinning)


def serve(handle):
    """Answer requests from stdin, one JSON object per line, with ``handle(request) -> dict``
    until ``{"cmd": "quit"}``; an exception is answered as ``{"error": ...}`` (see Worker)."""
    reply_to = sys.stdout
    sys.stdout = sys.stderr          # stray prints must not corrupt the protocol
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            answer = handle(cmd)
        except Exception as exc:  # reported to the parent, which prints it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        reply_to.write(json.dumps(answer) + "\n")
        reply_to.flush()
    return 0


def time_calls(fn, reps, warm=0):
    """Seconds of each of ``reps`` calls of ``fn()``, after ``warm`` untimed ones, garbage
    collector off."""
    times = []
    gc.disable()
    try:
        for _ in range(warm):
            fn()
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return times


class WorkerError(RuntimeError):
    """A contender's worker process failed a request (the message is its exception)."""


class Worker:
    """A contender in its own process: ``python -m MODULE --worker IMPL`` (the kernel
    benchmark's unless told), importing the same cycnn as this process; ``env`` adds
    environment variables (e.g. OMP_NUM_THREADS, read when the OpenMP runtime starts)."""

    def __init__(self, impl, module="cycnn.bench", env=None):
        self.impl = impl
        env = dict(os.environ, **(env or {}))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", module, "--worker", impl],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True, bufsize=1)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"the {self.impl} worker exited (code {self.proc.wait()})")
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(answer["error"])
        return answer

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
            self.proc.wait()
