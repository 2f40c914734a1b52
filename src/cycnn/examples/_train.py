"""What the MNIST examples share: command-line options, data loading, training with a per-epoch
report (test accuracy, images/s) and saving the model."""
import argparse
import os
import time

import cycnn
from cycnn import datasets, distributed


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def parser(prog, description, epochs):
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--data", default=None,
                   help="folder holding the four MNIST IDX .gz files "
                        "(default: load_mnist's lookup)")
    p.add_argument("--epochs", type=_positive, default=epochs,
                   help=f"training epochs (default {epochs})")
    p.add_argument("--batch-size", type=_positive, default=64, help="batch size (default 64)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="kernel threads (default: OMP_NUM_THREADS, else all usable CPUs)")
    p.add_argument("--out", default=".", help="folder for the saved model (default: cwd)")
    p.add_argument("--limit", type=_positive, default=None,
                   help="train on the first N training images only (smoke runs)")
    p.add_argument("--test-limit", type=_positive, default=None,
                   help="evaluate on the first N test images only (default: all 10,000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks (run under mpiexec; --batch-size is the "
                        "global batch; needs mpi4py)")
    return p


def say(*args, **kwargs):
    """print on the main rank only (every rank when not distributed)."""
    if distributed.is_main():
        print(*args, **kwargs)


def setup(args):
    """MPI (--distributed), threads, seed and the MNIST arrays ((x_train, y_train),
    (x_test, y_test)) as asked."""
    if getattr(args, "distributed", False):
        distributed.init()
        say(f"data-parallel over {distributed.size()} MPI ranks, "
            f"{cycnn.get_num_threads()} threads each; global batch {args.batch_size}")
    if args.threads is not None:
        cycnn.set_num_threads(args.threads)
    cycnn.seed(args.seed)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(root=args.data)
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    if getattr(args, "test_limit", None) is not None:
        x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
    say(f"MNIST: {len(x_train)} training images, {len(x_test)} test images "
          f"(uint8, scaled to [0, 1] batch by batch)")
    return (x_train, y_train), (x_test, y_test)


def train_and_report(model, args, train, test, filename, callbacks=None):
    """fit with the test set as validation data, print the per-epoch table and save the
    model to ``args.out/filename``; returns the History."""
    model.summary(print_fn=say)
    t0 = time.perf_counter()
    history = model.fit(*train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=test, callbacks=callbacks,
                        verbose=2 if args.quiet else 1)
    total = time.perf_counter() - t0
    h = history.history
    say("epoch  test accuracy  images/s")
    for e, acc, ips in zip(history.epoch, h["val_accuracy"], h["images_per_sec"]):
        say(f"{e + 1:>5}  {100 * acc:>12.2f}%  {ips:>8,.0f}")
    say(f"final test accuracy {100 * h['val_accuracy'][-1]:.2f}% after {len(history.epoch)} "
          f"epoch(s), {total:.1f}s in all")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, filename)
    model.save(path)
    say(f"saved the model to {path}")
    return history
