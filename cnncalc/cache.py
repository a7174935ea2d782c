"""Where cnncalc's compiled numba kernels live, and what is in there.

The kernels are compiled on first use and cached on disk, in the user's cache directory —
never inside the installed package (read-only in system, Docker and shared installs):

* ``$CNNCALC_CACHE_DIR`` when set;
* else ``$XDG_CACHE_HOME/cnncalc`` (``~/.cache/cnncalc``) on Linux and other Unixes,
  ``~/Library/Caches/cnncalc`` on macOS, ``%LOCALAPPDATA%\\cnncalc\\Cache`` on Windows.

numba writes its files under ``<cache dir>/kernels/<source directory>_<hash>/`` (one
sub-directory per installed copy of cnncalc, so two installs never share stale code), with a
temporary name then an atomic rename: two processes compiling the same kernel both succeed,
and an interrupted compile leaves at most a ``*.tmp.*`` file that nothing reads. A cache
directory that cannot be created or written makes :func:`configure` turn caching off (the
kernels are then compiled in memory, every run) with one :class:`CacheWarning`.

This module never imports numba: ``cnncalc cache`` and ``cnncalc shapes`` stay fast.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

ENV = "CNNCALC_CACHE_DIR"
KERNELS = "kernels"  # numba's CACHE_DIR inside the cache directory


class CacheWarning(UserWarning):
    """The kernel cache cannot be used; kernels are compiled in memory."""


def cache_dir() -> Path:
    """The cache directory (it may not exist yet)."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "cnncalc" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "cnncalc"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "cnncalc"


def kernel_dir() -> Path:
    """The directory numba caches cnncalc's kernels in (``NUMBA_CACHE_DIR``)."""
    return cache_dir() / KERNELS


def usable(path: Path) -> str | None:
    """None when ``path`` can hold the cache (created if missing), else why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


@dataclass(frozen=True)
class Setting:
    """What :func:`configure` decided: the directory, or None when caching is off."""

    directory: Path | None
    problem: str | None = None


_setting: Setting | None = None


def configure() -> Setting:
    """Decide where numba caches the kernels (once per process; see the module doc)."""
    global _setting
    if _setting is None:
        path = kernel_dir()
        why = usable(path)
        if why is None:
            _setting = Setting(path)
        else:
            _setting = Setting(
                None,
                f"the kernel cache {path} cannot be used ({why}): kernels "
                f"are compiled in memory on every run; set {ENV} to a "
                "writable directory to keep them",
            )
            warnings.warn(_setting.problem, CacheWarning, stacklevel=2)
    return _setting


# --------------------------------------------------------------------------- inspection


@dataclass(frozen=True)
class Entry:
    """One cached kernel: ``module.function`` and its compiled signatures (dtypes, ...)."""

    kernel: str
    signatures: int
    bytes: int


@dataclass(frozen=True)
class Contents:
    directory: Path
    exists: bool
    bytes: int
    entries: tuple[Entry, ...]
    stale: int  # leftovers of interrupted writes (``*.tmp.*``)


def contents(directory: Path | None = None) -> Contents:
    """What the kernel cache holds (default :func:`kernel_dir`): its size and, per kernel,
    how many signatures (dtypes, argument kinds) are compiled."""
    root = kernel_dir() if directory is None else directory
    if not root.is_dir():
        return Contents(root, False, 0, (), 0)
    kernels: dict[str, list[int]] = {}
    total = stale = 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        try:
            size = path.stat().st_size
        except OSError:  # removed meanwhile (another process, --clear)
            continue
        total += size
        name = path.name
        if ".tmp." in name:
            stale += 1
            continue
        # numba's names: <module>.<function>-<line>.py311.nbi (index), ....<n>.nbc (code)
        stem = name.split("-", 1)[0]
        entry = kernels.setdefault(stem.lstrip("_").replace("._", "."), [0, 0])
        entry[0] += name.endswith(".nbc")
        entry[1] += size
    entries = tuple(Entry(k, n, b) for k, (n, b) in sorted(kernels.items()))
    return Contents(root, True, total, entries, stale)


def clear(directory: Path | None = None) -> int:
    """Delete the kernel cache (default :func:`kernel_dir`; nothing else in the cache
    directory, which ``CNNCALC_CACHE_DIR`` may point anywhere); returns the bytes freed."""
    found = contents(directory)
    if not found.exists:
        return 0
    for child in found.directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    return found.bytes
