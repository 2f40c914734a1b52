"""Train a small ResNet on MNIST (functional API: residual blocks with Add).

    python -m cycnn.examples.resnet [--epochs N] [--limit N] [--test-limit N] [--batch-size B]
                                    [--threads T] [--data DIR] [--out DIR] [--seed S]

Network (He et al. 2016, "basic" blocks, scaled down for 28x28 digits): a 3x3 stem of 16
channels, then three stages of one residual block each (16, 32 and 64 channels; the last two
halve the resolution with stride 2 and a 1x1 projection shortcut), global average pooling and a
Dense(10) on the logits. Block: conv3x3 - BN - ReLU - conv3x3 - BN, plus the shortcut, ReLU.
Adam(1e-3), cross-entropy. Prints the test accuracy and images/s of every epoch and saves
``mnist_resnet.cyc``.
"""
import sys

import cycnn
from cycnn import layers, optim

from . import _train


def residual_block(x, filters, stride=1):
    """conv-BN-ReLU-conv-BN plus a shortcut (identity, or 1x1 conv + BN when the shape
    changes), then ReLU."""
    y = layers.Conv2D(filters, 3, stride=stride, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNorm2D()(y))
    y = layers.BatchNorm2D()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    shortcut = x
    if stride != 1 or x.sample_shape[0] != filters:
        shortcut = layers.Conv2D(filters, 1, stride=stride, use_bias=False)(x)
        shortcut = layers.BatchNorm2D()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


def build_model(input_shape=(1, 28, 28), classes=10, widths=(16, 32, 64)):
    """The small ResNet, compiled with Adam(1e-3) on cross-entropy."""
    inputs = cycnn.Input(input_shape)
    x = layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNorm2D()(x))
    for i, width in enumerate(widths):
        x = residual_block(x, width, stride=1 if i == 0 else 2)
    outputs = layers.Dense(classes)(layers.GlobalAvgPool2D()(x))
    model = cycnn.Model(inputs=inputs, outputs=outputs, name="mnist_resnet")
    model.compile(optimizer=optim.Adam(lr=1e-3), loss="cross_entropy", metrics=["accuracy"])
    return model


def main(argv=None):
    args = _train.parser("python -m cycnn.examples.resnet", "Train a small ResNet on MNIST.",
                         epochs=1).parse_args(argv)
    train, test = _train.setup(args)
    _train.train_and_report(build_model(), args, train, test, "mnist_resnet.cyc")
    return 0


if __name__ == "__main__":
    sys.exit(main())
