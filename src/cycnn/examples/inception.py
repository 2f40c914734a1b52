"""Train an Inception-style network on MNIST (functional API: parallel branches joined by
Concatenate).

    python -m cycnn.examples.inception [--epochs N] [--limit N] [--test-limit N]
                                       [--batch-size B] [--threads T] [--data DIR] [--out DIR]

Network (after GoogLeNet's Inception module, Szegedy et al. 2015, scaled down): a 3x3 stem of
16 channels and a 2x2 max pool, then two Inception modules separated by a max pool, global
average pooling and Dense(10). Module: four branches on the same input, concatenated along the
channels -- 1x1 conv; 1x1 bottleneck then 3x3; 1x1 bottleneck then 5x5; 3x3 max pool (stride
1) then 1x1. Every conv is followed by BatchNorm and ReLU (as in BN-Inception, Ioffe & Szegedy
2015, which trains much faster than the plain version). Adam(1e-3), cross-entropy. Prints the
test accuracy and images/s of every epoch and saves ``mnist_inception.cyc``.
"""
import sys

import cycnn
from cycnn import layers, optim

from . import _train


def conv_bn_relu(x, filters, kernel_size):
    """Conv (no bias: BN's beta replaces it) - BatchNorm - ReLU, 'same' padding."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False)(x)
    return layers.ReLU()(layers.BatchNorm2D()(x))


def inception_module(x, c1, c3_reduce, c3, c5_reduce, c5, pool_proj):
    """Four parallel branches joined along the channel axis (output channels
    c1 + c3 + c5 + pool_proj)."""
    b1 = conv_bn_relu(x, c1, 1)
    b3 = conv_bn_relu(conv_bn_relu(x, c3_reduce, 1), c3, 3)
    b5 = conv_bn_relu(conv_bn_relu(x, c5_reduce, 1), c5, 5)
    bp = conv_bn_relu(layers.MaxPool2D(3, stride=1, padding=1)(x), pool_proj, 1)
    return layers.Concatenate(axis=1)([b1, b3, b5, bp])


def build_model(input_shape=(1, 28, 28), classes=10):
    """The Inception-style network, compiled with Adam(1e-3) on cross-entropy."""
    inputs = cycnn.Input(input_shape)
    x = layers.MaxPool2D(2)(conv_bn_relu(inputs, 16, 3))        # 16 x 14 x 14
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
