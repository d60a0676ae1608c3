"""pyproject.toml's requires-python promises only what a static check shows.

CI runs Python 3.11; Colab runs 3.12. Older versions are not run anywhere, so the promise rests
on vermin, which finds the oldest Python whose syntax and standard library the package uses.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def promised() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'requires-python = ">=(\d+\.\d+)"', text).group(1)


def test_package_needs_nothing_newer_than_promised():
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.skip("vermin is not installed (pip install -e '.[dev]')")
    # --exclude long: vermin reads torch's Tensor.long() as Python 2's long.
    run = subprocess.run([vermin, "--no-tips", "--eval-annotations", "--violations", "--exclude", "long",
                          f"-t={promised()}-", str(ROOT / "nstutils")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_promise_is_at_least_what_ci_and_colab_cover():
    assert tuple(map(int, promised().split("."))) <= (3, 11)
