"""Generated code equals its generator's output; `cnncalc shapes` never imports numba."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parent.parent / "cnncalc" / "kernels"


def test_conv_tile_is_what_its_generator_writes(tmp_path):
    from cnncalc.kernels import _gen_tile

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is needed (it is in the test extra)")
    out = tmp_path / "_conv_tile.py"
    out.write_text(_gen_tile.source())
    # format with the project's settings, as the generator's docstring says
    subprocess.run(
        [
            ruff,
            "format",
            "--quiet",
            "--config",
            str(KERNELS.parent.parent / "pyproject.toml"),
            str(out),
        ],
        check=True,
    )
    assert out.read_text() == (KERNELS / "_conv_tile.py").read_text(), (
        "cnncalc/kernels/_conv_tile.py differs from `python -m cnncalc.kernels._gen_tile` "
        "followed by `ruff format`: regenerate it"
    )


def test_shapes_does_not_import_numba(tmp_path):
    code = (
        "import sys; from cnncalc.cli import main; "
        "rc = main(['shapes', '-i', '3x32x32', 'conv2d(3, 8, 3) relu maxpool2d(2)', "
        "'-f', 'json']); "
        "assert 'numba' not in sys.modules, 'numba was imported'; "
        "assert 'cnncalc.kernels' not in sys.modules; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
