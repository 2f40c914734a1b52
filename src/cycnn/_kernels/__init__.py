"""Compiled kernels (Cython over the C in csrc/). Call them through cycnn.ops, which validates."""
