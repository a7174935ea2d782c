"""Numba kernels for CNN inference: numpy in, numpy out, batch-first layouts.

Names, arguments and semantics follow ``torch.nn.functional``.  Nothing is
compiled at import; each kernel is compiled (and cached on disk) on first use
for each dtype.  LLVM's SLP vectoriser is switched on for the kernels compiled
here (numba ships with it off) unless NUMBA_SLP_VECTORIZE is set explicitly,
and on AVX-512 hosts 512-bit vectors are preferred (NUMBA_CPU_FEATURES = host
features + "-prefer-256-bit") unless NUMBA_CPU_FEATURES is set.  Both are
process-wide numba settings, applied only if numba has not compiled anything
before ``cnncalc.kernels`` is imported.

Compiled kernels are cached in the user's cache directory (``cnncalc.cache``:
``$CNNCALC_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnncalc`` or the platform's equivalent), never
inside the installed package: importing this module sets numba's ``NUMBA_CACHE_DIR`` (and
``numba.config.CACHE_DIR``) for the process.  An unusable directory turns caching off with
one ``cnncalc.cache.CacheWarning``.

Notes:

* float32 and float64 inputs are supported; the output has the input's dtype
  (weights and biases are cast to it).
* Threads: ``set_num_threads(n)``; the threading layer is OpenMP with
  ``OMP_WAIT_POLICY=PASSIVE`` unless those are set (see below); kernels touching
  fewer than ``_common.SERIAL_WORK`` elements run on one thread.  1x1
  convolutions and ``linear`` with more than 16 rows use numpy's BLAS, whose own
  threads spin for a moment after each call and slow down numba kernels run
  right after.
* Convolutions keep a per-thread scratch buffer (the padded, stride-phase
  split input) between calls; ``clear_scratch()`` releases it.
* Do not call the kernels concurrently from several Python threads (numba's
  OpenMP/workqueue threading layers do not support concurrent parallel
  regions).
"""

import contextlib as _contextlib
import os as _os
import sys as _sys

from .. import cache as _cache

_cache_setting = _cache.configure()
if _cache_setting.directory is not None:  # before numba reads its environment
    _os.environ["NUMBA_CACHE_DIR"] = str(_cache_setting.directory)

# Threads (unless set by the user): numba's OpenMP layer, whose idle threads sleep instead of
# spinning. With GNU OpenMP's default (spin, then sleep) a parallel kernel under CPU
# contention waits for a spinning or descheduled worker: measured on 2 busy cores, LeNet-5
# took 267 ms with 2 threads against 0.21 ms with 1; with the passive policy, 0.31 ms (the
# rest is removed by running kernels under SERIAL_WORK elements on one thread). On an idle
# machine the passive policy costs a wake-up per call: ~0.15 ms on a batch-1 pool or
# depthwise kernel called back to back (0.30 against 0.16 ms). A short spin won that back,
# but not on whole networks: ResNet-18 at 64x64 on 2 threads took 20-24 ms with
# GOMP_SPINCOUNT=10000 against 22-23 ms passive, and 33-35 ms with 30000 (the spinning
# workers take the cores from OpenBLAS's threads: 1x1 convolutions, linear).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("NUMBA_THREADING_LAYER_PRIORITY", "omp tbb workqueue")

if "NUMBA_SLP_VECTORIZE" not in _os.environ:
    _os.environ["NUMBA_SLP_VECTORIZE"] = "1"
if "NUMBA_CPU_FEATURES" not in _os.environ:
    # On AVX-512 hosts let LLVM use 512-bit vectors: the host may be reported
    # as an Intel model whose tuning prefers 256-bit ones (e.g. Zen 4 in a VM
    # seen as "rocketlake"); the register-tiled convolution gains ~12%.
    # Must be set before numba creates its CPU code generator.
    try:
        import llvmlite.binding as _ll

        _feat = _ll.get_host_cpu_features().flatten()
        if "+avx512f" in _feat.split(","):
            _os.environ["NUMBA_CPU_FEATURES"] = _feat + ",-prefer-256-bit"
    except Exception:  # pragma: no cover - feature detection is best effort
        pass

import numba as _numba  # noqa: E402
from numba.core import config as _config  # noqa: E402

_config.SLP_VECTORIZE = int(_os.environ["NUMBA_SLP_VECTORIZE"])
if _os.environ.get("CNNCALC_NUMBA_BLAS") == "0" and "numba.np.arraymath" not in _sys.modules:
    # Set by the `cnncalc` process, which runs nothing but these kernels: numba's CPU target
    # imports scipy.linalg on start-up (0.3-1 s of a 1 s warm `cnncalc run`) only to offer
    # np.dot & co. inside jitted code, which no kernel here uses.
    _sys.modules["scipy.linalg.cython_blas"] = None  # ImportError: numba goes without
    try:
        import numba.np.arraymath  # noqa: E402, F401
    finally:
        del _sys.modules["scipy.linalg.cython_blas"]
if _cache_setting.directory is not None:  # numba may have been imported before us
    _config.CACHE_DIR = str(_cache_setting.directory)

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
    leaky_relu,
    log_softmax,
    mish,
    mul,
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
from ._fold import fold, fold_backward, unfold, unfold_backward  # noqa: E402
from ._grad import (  # noqa: E402  (backward kernels, cnncalc/kernels/_grad.py)
    adaptive_avg_pool1d_backward,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool1d_backward,
    adaptive_max_pool2d_backward,
    adaptive_sum_pool1d_backward,
    adaptive_sum_pool2d_backward,
    add_backward,
    avg_pool1d_backward,
    avg_pool2d_backward,
    batch_norm_backward,
    cat_backward,
    celu_backward,
    conv1d_backward,
    conv2d_backward,
    conv2d_table_backward,
    conv_transpose1d_backward,
    conv_transpose2d_backward,
    elu_backward,
    flatten_backward,
    gelu_backward,
    hardsigmoid_backward,
    hardswish_backward,
    hardtanh_backward,
    leaky_relu_backward,
    linear_backward,
    log_softmax_backward,
    max_pool1d_backward,
    max_pool2d_backward,
    mish_backward,
    mul_backward,
    pad_backward,
    prelu_backward,
    rbf_backward,
    relu6_backward,
    relu_backward,
    selu_backward,
    sigmoid_backward,
    silu_backward,
    softmax_backward,
    softplus_backward,
    subsample2d_backward,
    sum_pool1d_backward,
    sum_pool2d_backward,
    tanh_backward,
)
from ._norm import (  # noqa: E402  (norms with their own statistics; layer scale)
    group_norm,
    group_norm_backward,
    instance_norm,
    instance_norm_backward,
    layer_norm,
    layer_norm2d,
    layer_norm2d_backward,
    layer_norm_backward,
    layer_scale,
    layer_scale_backward,
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
from ._resize import interpolate, interpolate_backward  # noqa: E402
from ._shape import (  # noqa: E402  (layers that only move elements)
    channel_shuffle,
    channel_shuffle_backward,
    permute,
    permute_backward,
    pixel_shuffle,
    pixel_shuffle_backward,
    pixel_unshuffle,
    pixel_unshuffle_backward,
    stochastic_depth,
    stochastic_depth_backward,
    unflatten,
    unflatten_backward,
)
from ._vol import (  # noqa: E402  (3-D layers and their gradients)
    adaptive_avg_pool3d,
    adaptive_avg_pool3d_backward,
    adaptive_max_pool3d,
    adaptive_max_pool3d_backward,
    adaptive_sum_pool3d_backward,
    avg_pool3d,
    avg_pool3d_backward,
    conv3d_backward,
    conv_transpose3d,
    conv_transpose3d_backward,
    max_pool3d,
    max_pool3d_backward,
    sum_pool3d_backward,
)

_FAMILY = {
    "_conv": "convolution",
    "_conv_tile": "convolution",
    "_dense": "dense",
    "_pool": "pooling",
    "_elementwise": "element-wise",
    "_grad": "backward",
}


def kernel_name(dispatcher):
    """``convolution kernel conv_tile_16x16`` for a kernel dispatcher (family from its module)."""
    func = getattr(dispatcher, "py_func", None)
    module = getattr(func, "__module__", "").rsplit(".", 1)[-1]
    name = getattr(func, "__name__", "?").lstrip("_")
    family = _FAMILY.get(module)
    return f"{family} kernel {name}" if family else f"kernel {name}"


@_contextlib.contextmanager
def compile_events(started, ended):
    """Within the block, ``started(data)`` when numba starts compiling a kernel (outermost
    compile only: the helpers it compiles on the way are part of it) and ``ended(data, ok)``
    when it is done (``ok``: compiled); ``data``: numba's event data (``dispatcher``,
    ``args``). If ``started`` raises, the compile does not happen and the exception reaches
    the kernel's caller (numba still sends the end event). Loading a kernel from the cache is
    not a compile and is not reported."""
    from numba.core import event

    depth = [0]

    class Listener(event.Listener):
        def on_start(self, ev):
            depth[0] += 1
            if depth[0] == 1:
                started(ev.data)

        def on_end(self, ev):
            if depth[0] == 0:  # the end of a start another listener aborted (unseen here)
                return
            depth[0] -= 1
            if depth[0] == 0:
                # compiled: the dispatcher has the overload (numba's Event.is_failed is inverted)
                ended(ev.data, tuple(ev.data["args"]) in ev.data["dispatcher"].overloads)

    listener = Listener()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)


def on_compile(callback):
    """Within the block, ``callback(name, cached)`` when numba starts compiling a kernel and
    ``callback(None, cached)`` when it is done (:func:`compile_events`); ``cached``: the
    result is kept on disk."""
    cached = _cache_setting.directory is not None
    return compile_events(
        lambda data: callback(kernel_name(data.get("dispatcher")), cached),
        lambda data, ok: callback(None, cached),
    )


def set_num_threads(n):
    """Set the number of numba threads used by the kernels (1..NUMBA_NUM_THREADS); BLAS
    threads (1x1 convolutions, linear) are limited to ``n`` too (threadpoolctl)."""
    n = int(n)
    if n < 1:
        raise ValueError("set_num_threads: n must be >= 1")
    _numba.set_num_threads(min(n, _numba.config.NUMBA_NUM_THREADS))
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of numba threads currently used."""
    return _numba.get_num_threads()


def max_threads():
    """The most threads the kernels may use (NUMBA_NUM_THREADS: all cores by default)."""
    return _numba.config.NUMBA_NUM_THREADS


def usable_cores():
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(_os, "sched_getaffinity"):
        return len(_os.sched_getaffinity(0))
    return _os.cpu_count() or 1


def idle_cores():
    """Cores no other process wants right now: the cores this process may use, less the
    runnable threads of other processes (Linux: ``/proc/loadavg`` counts every runnable
    thread of the machine, this process's own are subtracted); elsewhere all of them.

    Under CPU contention a parallel kernel waits at its end for a thread that another
    process has pushed off its core (a scheduler time slice, milliseconds), which costs more
    than the second thread gains: measured on 2 cores with 2 busy processes, ResNet-18 at
    64x64 took 1.1-1.5x as long on 2 threads as on 1.
    """
    cores = usable_cores()
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            running = int(fh.read().split()[3].split("/")[0])
        own = 0
        for task in _os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat", encoding="ascii", errors="replace") as fh:
                own += fh.read().rsplit(")", 1)[-1].split()[0] == "R"
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, cores - max(0, running - own))


__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "add", "avg_pool1d", "avg_pool2d", "batch_norm", "cat",
    "celu", "clear_scratch", "compile_events", "conv1d", "conv2d", "conv2d_table", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "elu", "gelu", "get_num_threads",
    "hardsigmoid", "hardswish", "hardtanh", "idle_cores", "interpolate", "leaky_relu",
    "linear", "log_softmax", "max_pool1d", "max_pool2d", "max_threads", "mish", "mul",
    "on_compile", "pad", "prelu", "rbf", "relu",
    "relu6", "selu", "set_num_threads", "sigmoid", "silu", "softmax", "softplus",
    "subsample2d", "tanh", "usable_cores",
]  # fmt: skip
__all__ += [
    "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_sum_pool1d_backward",
    "adaptive_sum_pool2d_backward",
    "add_backward",
    "avg_pool1d_backward",
    "avg_pool2d_backward",
    "batch_norm_backward",
    "cat_backward",
    "celu_backward",
    "conv1d_backward",
    "conv2d_backward",
    "conv2d_table_backward",
    "conv_transpose1d_backward",
    "conv_transpose2d_backward",
    "elu_backward",
    "flatten_backward",
    "gelu_backward",
    "hardsigmoid_backward",
    "hardswish_backward",
    "hardtanh_backward",
    "interpolate_backward",
    "leaky_relu_backward",
    "linear_backward",
    "log_softmax_backward",
    "max_pool1d_backward",
    "max_pool2d_backward",
    "mish_backward",
    "mul_backward",
    "pad_backward",
    "prelu_backward",
    "rbf_backward",
    "relu6_backward",
    "relu_backward",
    "selu_backward",
    "sigmoid_backward",
    "silu_backward",
    "softmax_backward",
    "softplus_backward",
    "subsample2d_backward",
    "sum_pool1d_backward",
    "sum_pool2d_backward",
    "tanh_backward",
]  # backward kernels
__all__ += [
    "channel_shuffle",
    "channel_shuffle_backward",
    "group_norm",
    "group_norm_backward",
    "instance_norm",
    "instance_norm_backward",
    "layer_norm",
    "layer_norm2d",
    "layer_norm2d_backward",
    "layer_norm_backward",
    "layer_scale",
    "layer_scale_backward",
    "permute",
    "permute_backward",
    "pixel_shuffle",
    "pixel_shuffle_backward",
    "pixel_unshuffle",
    "pixel_unshuffle_backward",
    "stochastic_depth",
    "stochastic_depth_backward",
    "unflatten",
    "unflatten_backward",
]  # norms and element moves (cnncalc/kernels/_norm.py, _shape.py)
__all__ += [
    "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward", "adaptive_max_pool3d",
    "adaptive_max_pool3d_backward", "adaptive_sum_pool3d_backward", "avg_pool3d",
    "avg_pool3d_backward", "conv3d_backward", "conv_transpose3d", "conv_transpose3d_backward",
    "fold", "fold_backward", "max_pool3d", "max_pool3d_backward", "sum_pool3d_backward",
    "unfold", "unfold_backward",
]  # fmt: skip
