"""The course's shared settings and the shape every notebook must have."""

import re
from pathlib import Path

import nbformat
import pytest

from nstutils import course

ROOT = Path(__file__).resolve().parents[1]
# Both versions of every notebook: the worked solutions and the learner's (generated from them).
NOTEBOOKS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")) + sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SLUG = course.REPO_URL.removeprefix("https://github.com/")


def test_quick_mode_switch():
    assert course.is_quick({"NSTUTILS_QUICK": "1"}) and course.is_quick({"NSTUTILS_QUICK": "true"})
    assert not course.is_quick({}) and not course.is_quick({"NSTUTILS_QUICK": "0"})
    assert course.pick(384, 64, environ={"NSTUTILS_QUICK": "1"}) == 64
    assert course.pick(384, 64, environ={}) == 384
    assert "QUICK" in course.mode_line({"NSTUTILS_QUICK": "1"}) and "FULL" in course.mode_line({})


def test_find_data_and_samples(tmp_path):
    data = course.find_data(ROOT / "notebooks")
    assert data == ROOT / "data"
    assert "tubingen_neckarfront" in course.samples(data, "content")
    assert len(course.samples(data, "style")) == 8
    with pytest.raises(FileNotFoundError, match="no data/ folder"):
        course.find_data(tmp_path)


def test_repository_url_is_the_same_everywhere():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'Homepage = "{course.REPO_URL}"' in pyproject
    readme = (ROOT / "README.md").read_text()
    assert f"colab.research.google.com/github/{SLUG}/blob/main/notebooks/" in readme


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 12


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_skeleton(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    folder = path.parent.name
    badge = f"(https://colab.research.google.com/github/{SLUG}/blob/main/{folder}/{path.name})"
    assert badge in first.source, "Colab badge must point at this notebook in the repository"
    assert re.search(r"Expected time: about \d+ (min|s)\b", first.source), "Expected time must give a number of minutes or seconds"
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[0].source
    assert 'if "google.colab" in sys.modules:' in setup
    # The address has one default, course.REPO_URL; NST_COURSE_REPO overrides it (the Colab rehearsal).
    assert f'REPO = os.environ.get("{course.REPO_ENV}", "{course.REPO_URL}")' in setup
    assert "git clone -q --depth 1 {REPO} /content/nst-course" in setup
    # Every extra a notebook needs, installed from the clone (not editable: Colab's way).
    assert '%pip install -q "/content/nst-course[notebooks,fast]"' in setup and "pip install -e" not in setup
    assert f"%cd /content/nst-course/{folder}" in setup
    sources = "\n".join(c.source for c in code)
    assert "DEVICE, PRECISION = choose()" in sources, "one device, chosen by nstutils.device.choose"
    assert 'torch.cuda.is_available()' not in sources, "the device is chosen in one place"
    assert "mode_line()" in sources and "pick(" in sources, "a parameters cell with quick mode"
    headings = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any(h.lstrip().startswith("## Summary") for h in headings)
    assert any(h.lstrip().startswith("## Exercises") for h in headings)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_only_checked_cells_keep_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" not in cell.source:
            assert not cell.outputs, f"unchecked cell has outputs: {cell.source[:60]!r}"
