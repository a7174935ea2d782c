"""Argument normalisation shared by the public wrappers (pure Python, no numba)."""

import threading

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, name="input"):
    """Return ``x`` as a float32/float64 ndarray (ValueError otherwise)."""
    a = np.asarray(x)
    if a.dtype not in _FLOATS:
        raise ValueError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    return a


def like(x, ref, name):
    """``x`` as an array of ``ref``'s dtype (None stays None)."""
    if x is None:
        return None
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=ref.dtype)


def is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def ntuple(v, n, name, minimum=None):
    """Expand an int or a length-1/length-n sequence into an n-tuple of ints."""
    if is_int(v):
        t = (int(v),) * n
    else:
        try:
            t = tuple(v)
        except TypeError:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}") from None
        if len(t) == 1:
            t = t * n
        if len(t) != n or not all(is_int(e) for e in t):
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}")
        t = tuple(int(e) for e in t)
    if minimum is not None and any(e < minimum for e in t):
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return t


_local = threading.local()


def conv_weight(x, weight, groups, nd, fname):
    """Check a conv weight (C_out, C_in/groups, *kernel) against a batched input x;
    returns (weight as x's dtype, groups as int). Shared by the forward and backward."""
    w = like(weight, x, "weight")
    if w is None or w.ndim != nd + 2:
        raise ValueError(f"{fname}: weight must be {nd + 2}-D (C_out, C_in/groups, *kernel)")
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{fname}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    c_in, (c_out, c_group) = x.shape[1], w.shape[:2]
    if c_in != c_group * groups:
        raise ValueError(
            f"{fname}: input has {c_in} channels but weight expects {c_group} * groups={groups}"
        )
    if c_out % groups:
        raise ValueError(f"{fname}: out_channels={c_out} is not divisible by groups={groups}")
    return w, groups


def scratch(tag, shape, dtype):
    """A per-thread reusable scratch buffer (contents undefined).

    One flat buffer per (tag, dtype) is kept and grown when needed, so layers
    of different sizes share it; ``clear_scratch()`` releases the memory.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    size = 1
    for s in shape:
        size *= s
    key = (tag, dtype.str)
    buf = cache.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1), dtype)
        cache[key] = buf
    return buf[:size].reshape(shape)


def clear_scratch():
    """Release the per-thread scratch buffers."""
    _local.cache = {}


# below this many elements touched, a kernel runs on the calling thread alone: waking a
# worker costs more than it saves, and under CPU contention (another process busy on every
# core) a parallel region waits for a worker that may not be scheduled for milliseconds
SERIAL_WORK = 1 << 17


class _Serial:
    """Context manager: numba runs the next kernels on one thread (thread-local setting)."""

    def __enter__(self):
        import numba

        self.saved = numba.get_num_threads()
        if self.saved > 1:
            numba.set_num_threads(1)

    def __exit__(self, *exc):
        if self.saved > 1:
            import numba

            numba.set_num_threads(self.saved)


def chunked(items, per_thread=8, work=None):
    """Context manager: dynamic scheduling of the next prange loops with about
    ``per_thread`` chunks per thread, so that a thread slowed down by another
    process (or by BLAS threads) does not hold up the whole kernel; one thread
    when ``work`` (elements touched) is below ``SERIAL_WORK``."""
    import numba

    if work is not None and work < SERIAL_WORK:
        return _Serial()
    n = numba.get_num_threads()
    return numba.parallel_chunksize(max(1, int(items) // (n * per_thread)) if n > 1 else 0)


def serial_if_small(work):
    """``_Serial()`` when ``work`` (elements touched) is below ``SERIAL_WORK``, else a no-op."""
    import contextlib

    return _Serial() if work < SERIAL_WORK else contextlib.nullcontext()
