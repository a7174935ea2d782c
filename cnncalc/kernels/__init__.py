"""Numba kernels for CNN inference: numpy in, numpy out, batch-first layouts.

Names, arguments and semantics follow ``torch.nn.functional``.  Nothing is
compiled at import; each kernel is compiled (and cached on disk) on first use
for each dtype.  LLVM's SLP vectoriser is switched on for the kernels compiled
here (numba ships with it off) unless NUMBA_SLP_VECTORIZE is set explicitly.
"""

import os as _os

if "NUMBA_SLP_VECTORIZE" not in _os.environ:
    _os.environ["NUMBA_SLP_VECTORIZE"] = "1"

import numba as _numba  # noqa: E402
from numba.core import config as _config  # noqa: E402

_config.SLP_VECTORIZE = int(_os.environ["NUMBA_SLP_VECTORIZE"])

from ._common import clear_scratch  # noqa: E402
from ._conv import (  # noqa: E402
    conv1d,
    conv2d,
    conv2d_table,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
)
from ._dense import batch_norm, linear, rbf  # noqa: E402
from ._elementwise import (  # noqa: E402
    add,
    cat,
    celu,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    interpolate,
    leaky_relu,
    log_softmax,
    mish,
    pad,
    prelu,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from ._pool import (  # noqa: E402
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    subsample2d,
)


def set_num_threads(n):
    """Set the number of numba threads used by the kernels (1..NUMBA_NUM_THREADS).

    BLAS threads (1x1 convolutions, linear) are also limited to ``n`` when
    threadpoolctl is installed; otherwise they are left alone.
    """
    n = int(n)
    if n < 1:
        raise ValueError("set_num_threads: n must be >= 1")
    _numba.set_num_threads(min(n, _numba.config.NUMBA_NUM_THREADS))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of numba threads currently used."""
    return _numba.get_num_threads()


__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "add", "avg_pool1d", "avg_pool2d", "batch_norm", "cat",
    "celu", "clear_scratch", "conv1d", "conv2d", "conv2d_table", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "elu", "gelu", "get_num_threads",
    "hardsigmoid", "hardswish", "hardtanh", "interpolate", "leaky_relu", "linear",
    "log_softmax", "max_pool1d", "max_pool2d", "mish", "pad", "prelu", "rbf", "relu",
    "relu6", "selu", "set_num_threads", "sigmoid", "silu", "softmax", "softplus",
    "subsample2d", "tanh",
]  # fmt: skip
