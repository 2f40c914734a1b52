"""Layers: every class follows the :class:`Layer` contract (build / forward / backward,
``params`` / ``grads`` / ``buffers``, ``get_config`` / ``from_config``).

``get(class_name)`` returns a layer class by name (used when loading saved models).
"""
from .base import Layer, CallState, get, reset_name_counters
from .activations import ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Activation
from .conv import Conv2D, DepthwiseConv2D, Conv2DTranspose, Conv1D
from .pooling import MaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D
from .reshaping import UpSampling2D, ZeroPadding2D
from .core import Dense, Flatten, Dropout
from .normalization import BatchNorm1D, BatchNorm2D
from .merge import Add, Multiply, Concatenate

__all__ = ["Layer", "CallState", "get", "reset_name_counters",
           "Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv1D",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D",
           "UpSampling2D", "ZeroPadding2D", "Dense", "Flatten", "Dropout",
           "BatchNorm1D", "BatchNorm2D", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax",
           "Activation", "Add", "Multiply", "Concatenate"]
