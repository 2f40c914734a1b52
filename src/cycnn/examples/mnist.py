"""Train the reference CNN on MNIST.

    python -m cycnn.examples.mnist [--data DIR] [--epochs N] [--batch-size B] [--threads T]
                                   [--out DIR] [--limit N] [--seed S]

Network: Conv2D(32, 5, same, relu) - MaxPool2D(2) - Conv2D(64, 5, same, relu) - MaxPool2D(2)
- Flatten - Dense(1000, relu) - Dense(10), trained with Adam(1e-3) on cross-entropy (logits).
Prints progress, the test accuracy and images/s of every epoch, saves the model
(``mnist_cnn.cyc`` in --out) and, when matplotlib is installed, plots the learning curves
(``mnist_curves.png``).
"""
import argparse
import os
import sys
import time

import cycnn
from cycnn import datasets, layers, optim
from cycnn.models import Sequential


def build_model():
    """The reference network for (1, 28, 28) inputs, compiled with Adam(1e-3)."""
    model = Sequential([
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPool2D(2),
        layers.Conv2D(64, 5, padding="same", activation="relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(1000, activation="relu"),
        layers.Dense(10),
    ], input_shape=(1, 28, 28), name="mnist_cnn")
    model.compile(optimizer=optim.Adam(lr=1e-3), loss="cross_entropy", metrics=["accuracy"])
    return model


def plot_history(history, path):
    """Loss and accuracy curves to a PNG; returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    h = history.history
    epochs = [e + 1 for e in history.epoch]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, h["loss"], "o-", label="train")
    ax_loss.plot(epochs, h["val_loss"], "o-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, h["accuracy"], "o-", label="train")
    ax_acc.plot(epochs, h["val_accuracy"], "o-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m cycnn.examples.mnist",
                                description="Train the reference CNN on MNIST.")
    p.add_argument("--data", default=None,
                   help="folder holding the four MNIST IDX .gz files "
                        "(default: load_mnist's lookup)")
    p.add_argument("--epochs", type=_positive, default=10, help="training epochs (default 10)")
    p.add_argument("--batch-size", type=_positive, default=64, help="batch size (default 64)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="kernel threads (default: OMP_NUM_THREADS, else all usable CPUs)")
    p.add_argument("--out", default=".",
                   help="folder for mnist_cnn.cyc and the plot (default: cwd)")
    p.add_argument("--limit", type=_positive, default=None,
                   help="train on the first N training images only (smoke runs)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch, no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        cycnn.set_num_threads(args.threads)
    cycnn.seed(args.seed)

    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(root=args.data)
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    print(f"MNIST: {len(x_train)} training images, {len(x_test)} test images "
          f"(uint8, scaled to [0, 1] batch by batch)")

    model = build_model()
    model.summary()
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(x_test, y_test), verbose=2 if args.quiet else 1)
    total = time.perf_counter() - t0
    h = history.history
    print("epoch  test accuracy  images/s")
    for e, acc, ips in zip(history.epoch, h["val_accuracy"], h["images_per_sec"]):
        print(f"{e + 1:>5}  {100 * acc:>12.2f}%  {ips:>8,.0f}")
    print(f"final test accuracy {100 * h['val_accuracy'][-1]:.2f}% after {len(history.epoch)} "
          f"epoch(s), {total:.1f}s in all")

    os.makedirs(args.out, exist_ok=True)
    model_path = os.path.join(args.out, "mnist_cnn.cyc")
    model.save(model_path)
    print(f"saved the model to {model_path}")
    plot_path = os.path.join(args.out, "mnist_curves.png")
    if plot_history(history, plot_path):
        print(f"saved the learning curves to {plot_path}")
    else:
        print("matplotlib is not installed: no learning-curve plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
