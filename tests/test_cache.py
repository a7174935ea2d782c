"""The kernel cache (cnncalc/cache.py): where it is, `cnncalc cache [--clear]`, an unusable
directory, two processes compiling at once, an interrupted compile.

Tests of cold behaviour run `python -m cnncalc` in a subprocess with a temporary
CNNCALC_CACHE_DIR (the suite itself compiles into the user's cache, so that the first `run`
after the tests is warm).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnncalc import cache
from cnncalc.cli import main

ROOT = Path(__file__).resolve().parent.parent
# a spec whose kernels compile in a few seconds: max pooling and relu
SPEC = "maxpool2d(2) relu"


def cnncalc(args: list[str], cache_dir: Path, **kw) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CNNCALC_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-m", "cnncalc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNCALC_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    assert cache.kernel_dir() == tmp_path / "c" / "kernels"


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG rules")
def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNCALC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "cnncalc"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the spec says: absolute only
    assert cache.cache_dir() == Path.home() / ".cache" / "cnncalc"


def test_kernels_are_cached_in_the_cache_dir_not_in_the_package():
    import numba

    import cnncalc.kernels  # noqa: F401  (configures numba)

    assert Path(numba.config.CACHE_DIR) == cache.kernel_dir()
    assert cache.kernel_dir() != Path(cnncalc.kernels.__file__).parent


def test_cache_command_lists_then_clear_empties(tmp_path, monkeypatch, capsys):
    kernels = tmp_path / "kernels" / "kernels_0123"
    kernels.mkdir(parents=True)
    (kernels / "_pool._max_pool2d-32.py311.nbi").write_bytes(b"x" * 10)
    (kernels / "_pool._max_pool2d-32.py311.1.nbc").write_bytes(b"x" * 100)
    (kernels / "_pool._max_pool2d-32.py311.2.nbc").write_bytes(b"x" * 100)
    (kernels / "_pool._max_pool2d-32.py311.3.nbc.tmp.abc").write_bytes(b"x")
    (tmp_path / "unrelated.txt").write_text("not ours")
    monkeypatch.setenv("CNNCALC_CACHE_DIR", str(tmp_path))
    assert main(["cache", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["directory"] == str(tmp_path / "kernels")
    assert obj["bytes"] == 211 and obj["stale_files"] == 1
    assert obj["kernels"] == [{"kernel": "pool.max_pool2d", "signatures": 2, "bytes": 210}]
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "kernels") in out and "pool.max_pool2d" in out
    assert main(["cache", "--clear"]) == 0
    assert "211 B freed" in capsys.readouterr().out
    assert not any((tmp_path / "kernels").iterdir())
    assert (tmp_path / "unrelated.txt").exists()  # only the kernel cache is cleared


def test_cache_command_on_a_missing_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CNNCALC_CACHE_DIR", str(tmp_path / "none"))
    assert main(["cache"]) == 0
    assert "not created yet" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0


def test_unusable_cache_dir_compiles_in_memory_with_one_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a directory cannot be created below a file
    done = cnncalc(["run", "-i", "2x8x8", SPEC, "-f", "csv"], blocker / "cache")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "kernel cache" in warnings[0], done.stderr
    assert warnings[0].startswith("cnncalc: warning: ")
    assert done.stdout.startswith("#,name,type")


def test_two_processes_compiling_at_once_both_succeed(tmp_path):
    env = {
        **os.environ,
        "CNNCALC_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "cnncalc", "run", "-i", "2x8x8", SPEC, "-q", "-f", "json"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert json.loads(out)["totals"]["all_match"]
    found = cache.contents(tmp_path / "kernels")
    assert {"pool.max_pool2d", "elementwise.relu"} <= {e.kernel for e in found.entries}
    # a third process finds them compiled
    probe = (
        "import numpy as np, cnncalc.kernels as K\n"
        "K.relu(np.ones(4, np.float32))\n"
        "from cnncalc.kernels import _elementwise as E\n"
        "print(sum(E._relu.stats.cache_hits.values()), "
        "sum(E._relu.stats.cache_misses.values()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_compile_does_not_break_the_next_run(tmp_path, sig):
    env = {
        **os.environ,
        "CNNCALC_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "cnncalc", "run", "-i", "2x8x8", SPEC, "-q"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "kernels").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the cache directory exists once the kernels are imported
    time.sleep(1.0)  # in the middle of compiling
    p.send_signal(sig)
    p.communicate(timeout=120)
    done = cnncalc(["run", "-i", "2x8x8", SPEC, "-f", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["all_match"]
