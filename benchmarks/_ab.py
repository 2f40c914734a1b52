"""Shared scaffolding of the kernel A/B scripts (fewc_ab.py, dxfew_ab.py, k1x1_ab.py): their
common options and the median timer. (Run as scripts, they import it from their own folder.)"""
import argparse
import time

import numpy as np


def parser(doc, shapes, clock=True):
    """An ArgumentParser with --threads, --reps, --rounds, --shapes (default ``shapes``) and,
    with ``clock``, --clock wall|cpu; the description is the first line of ``doc``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default=shapes)
    if clock:
        ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU time (1 thread on a shared machine: time "
                             "spent waiting for the core is left out)")
    return ap


def clock_of(args):
    """The timer --clock names (perf_counter without the option)."""
    return time.process_time if getattr(args, "clock", "wall") == "cpu" else time.perf_counter


def print_header(what, args, simd, a, b, last):
    """The two header lines of the few-channel A/B scripts: what is compared (A and B) and the
    table's column names, ``last`` naming the kernel column."""
    print(f"# {what} A/B, {args.threads} thread(s), simd {simd}, {args.rounds} rounds x "
          f"{args.reps} reps, {args.clock} clock, medians; A = {a}, B = {b}")
    print(f"{'shape':10s} {'part':8s} {'A ms':>8s} {'A GF/s':>7s} {'B ms':>8s} {'B GF/s':>7s} "
          f"{'B/A speed':>9s}  {last}")


def median_time(f, reps, clock=time.perf_counter):
    """Median seconds of ``reps`` calls of ``f()`` on ``clock``."""
    ts = []
    for _ in range(reps):
        t0 = clock()
        f()
        ts.append(clock() - t0)
    return float(np.median(ts))
