"""``njit`` for the kernel modules: numba's, with on-disk caching switched off when the
kernel cache directory is unusable (see :mod:`cnncalc.cache`)."""

import numba

from .. import cache as _cache


def njit(*args, **kwargs):
    """``numba.njit``; ``cache=True`` is dropped when the cache directory is unusable (a
    cached dispatcher without a writable location would fall back to the package's
    ``__pycache__`` or fail)."""
    if _cache.configure().directory is None:
        kwargs["cache"] = False
    return numba.njit(*args, **kwargs)
