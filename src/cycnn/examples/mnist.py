"""Train the reference CNN on MNIST.

    python -m cycnn.examples.mnist [--data DIR] [--epochs N] [--batch-size B] [--threads T]
                                   [--out DIR] [--limit N] [--test-limit N] [--seed S]

Network: Conv2D(32, 5, same, relu) - MaxPool2D(2) - Conv2D(64, 5, same, relu) - MaxPool2D(2)
- Flatten - Dense(1000, relu) - Dense(10), trained with Adam(1e-3) on cross-entropy (logits).
Prints progress, the test accuracy and images/s of every epoch, saves the model
(``mnist_cnn.cyc`` in --out) and, when matplotlib is installed, plots the learning curves
(``mnist_curves.png``).
"""
import os
import sys

from cycnn import distributed, layers, optim
from cycnn.models import Sequential

from . import _train


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


def parse_args(argv=None):
    return _train.parser("python -m cycnn.examples.mnist", "Train the reference CNN on MNIST.",
                         epochs=10).parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    train, test = _train.setup(args)
    model = build_model()
    history = _train.train_and_report(model, args, train, test, "mnist_cnn.cyc")
    if not distributed.is_main():   # rank 0 reports and writes files
        return 0
    plot_path = os.path.join(args.out, "mnist_curves.png")
    if plot_history(history, plot_path):
        print(f"saved the learning curves to {plot_path}")
    else:
        print("matplotlib is not installed: no learning-curve plot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
