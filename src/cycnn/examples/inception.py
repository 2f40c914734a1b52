"""Train an Inception-style network on MNIST (functional API: parallel branches joined by
Concatenate).

    python -m cycnn.examples.inception [--epochs N] [--limit N] [--test-limit N]
                                       [--batch-size B] [--threads T] [--data DIR] [--out DIR]

Network (after GoogLeNet's Inception module, Szegedy et al. 2015, scaled down): a 3x3 stem of
16 channels and a 2x2 max pool, then two Inception modules separated by a max pool, global
average pooling and Dense(10). Module: four branches on the same input, concatenated along the
channels -- 1x1 conv; 1x1 bottleneck then 3x3; 1x1 bottleneck then 5x5; 3x3 max pool (stride
1) then 1x1. Every conv is followed by ReLU. Adam(1e-3), cross-entropy. Prints the test accuracy
and images/s of every epoch and saves ``mnist_inception.cyc``.
"""
import sys

import cycnn
from cycnn import layers, optim

from . import _train


def inception_module(x, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
    """Four parallel branches joined along the channel axis (output channels
    c1 + c3 + c5 + pool_proj)."""
    b1 = layers.Conv2D(c1, 1, activation="relu")(x)
    b3 = layers.Conv2D(c3_reduce, 1, activation="relu")(x)
    b3 = layers.Conv2D(c3, 3, padding="same", activation="relu")(b3)
    b5 = layers.Conv2D(c5_reduce, 1, activation="relu")(x)
    b5 = layers.Conv2D(c5, 5, padding="same", activation="relu")(b5)
    bp = layers.MaxPool2D(3, stride=1, padding=1)(x)
    bp = layers.Conv2D(pool_proj, 1, activation="relu")(bp)
    return layers.Concatenate(axis=1)([b1, b3, b5, bp])


def build_model(input_shape=(1, 28, 28), classes=10):
    """The Inception-style network, compiled with Adam(1e-3) on cross-entropy."""
    inputs = cycnn.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPool2D(2)(x)                                   # 16 x 14 x 14
    x = inception_module(x, 8, 8, 12, 4, 4, 4)                   # 28 x 14 x 14
    x = layers.MaxPool2D(2)(x)                                   # 28 x 7 x 7
    x = inception_module(x, 16, 12, 24, 4, 8, 8)                 # 56 x 7 x 7
    outputs = layers.Dense(classes)(layers.GlobalAvgPool2D()(x))
    model = cycnn.Model(inputs=inputs, outputs=outputs, name="mnist_inception")
    model.compile(optimizer=optim.Adam(lr=1e-3), loss="cross_entropy", metrics=["accuracy"])
    return model


def main(argv=None):
    args = _train.parser("python -m cycnn.examples.inception",
                         "Train an Inception-style network on MNIST.", epochs=1).parse_args(argv)
    train, test = _train.setup(args)
    _train.train_and_report(build_model(), args, train, test, "mnist_inception.cyc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
