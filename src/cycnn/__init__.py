"""cycnn: a fast CPU engine for convolutional neural networks with a NumPy API.

Kernels (conv2d, pooling) are Cython + OpenMP over C with run-time SIMD dispatch;
``cycnn.reference`` holds the same ops in plain NumPy.
"""
__version__ = "0.1.0"

from ._random import seed, get_rng  # noqa: F401
from ._threads import get_num_threads, set_num_threads  # noqa: F401
from ._scratch import release_scratch, scratch_bytes  # noqa: F401
from . import ops, reference  # noqa: F401
from . import augment, datasets, initializers, layers, losses, optim, utils  # noqa: F401
from . import models  # noqa: F401
from .models import Input, Model, Sequential, load_model  # noqa: F401
from .models import callbacks  # noqa: F401


def build_info():
    """How this copy of cycnn was built and what it runs on.

    Keys: version, openmp (bool), simd (GEMM micro-kernel in use), simd_supported (paths this
    CPU can run), compiler, num_threads.
    """
    from ._kernels import _openmp, conv
    return {
        "version": __version__,
        "openmp": _openmp.openmp_enabled(),
        "simd": conv.simd_name(),
        "simd_supported": [p for p in conv.SIMD_PATHS if conv.simd_supported(p)],
        "compiler": _openmp.compiler(),
        "num_threads": get_num_threads(),
    }
