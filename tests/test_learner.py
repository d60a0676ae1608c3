"""The learner's notebooks are generated from the worked solutions, and the exercises have a shape.

solutions/ is the source of truth; notebooks/ is made from it by scripts/make_learner.py
(``make learner``). nbval runs both folders (pyproject's testpaths).
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_learner  # noqa: E402

SOLUTIONS = sorted(make_learner.SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CALL = re.compile(r"\b(mine\.submit|check\.\w+)\(")


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def test_learner_notebooks_are_up_to_date():
    assert make_learner.main(["--check"]) == 0, "notebooks/ is out of date with solutions/: run `make learner`"


def test_every_learner_notebook_has_a_solution():
    learner = {p.name for p in make_learner.LEARNER.glob("[0-9][0-9]_*.ipynb")}
    assert learner == {p.name for p in SOLUTIONS}


def _notebook(*cells):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"language": "python", "name": "python3", "display_name": "Python 3"}})
    nb.cells = list(cells)
    return nb


def test_learner_version_clears_tags_and_relinks():
    name = "99_demo.ipynb"
    first = nbformat.v4.new_markdown_cell(
        f"[badge](https://colab.research.google.com/github/x/y/blob/main/solutions/{name})\n\n# 99 · Demo\n\n"
        + make_learner.banner(name, True))
    setup = nbformat.v4.new_code_cell("%cd /content/nst-course/solutions")
    exercise = nbformat.v4.new_code_cell(f"def gram(F):\n    {BEGIN}\n    return F @ F.T\n    {END}")
    exercise.outputs = [nbformat.v4.new_output("stream", text="old")]
    answer = nbformat.v4.new_markdown_cell(f"Why?\n\n{BEGIN}\nBecause.\n{END}")
    plain = nbformat.v4.new_code_cell("mine.submit('gram', gram)")
    solution = _notebook(first, setup, exercise, answer, plain)
    before = nbformat.writes(solution)
    nb = make_learner.learner_version(solution, name)
    assert nbformat.writes(solution) == before, "the solution must not be modified"
    assert "blob/main/notebooks/99_demo.ipynb" in nb.cells[0].source
    assert make_learner.banner(name, False) in nb.cells[0].source
    assert nb.cells[1].source == "%cd /content/nst-course/notebooks"
    stub = nb.cells[2]
    assert stub.source == "def gram(F):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert stub.metadata.tags == ["raises-exception"] and stub.outputs == []
    assert "Because" not in nb.cells[3].source and "YOUR ANSWER HERE" in nb.cells[3].source
    assert nb.cells[4].source == plain.source and "tags" not in nb.cells[4].metadata


def test_learner_version_needs_the_banner():
    nb = _notebook(nbformat.v4.new_markdown_cell("# 99 · Demo"))
    with pytest.raises(ValueError, match="banner"):
        make_learner.learner_version(nb, "99_demo.ipynb")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_exercises_are_checked(path):
    """Each solution region sits in a "Your turn" cell, is whole, and the next code cell checks it."""
    cells = _cells(path)
    for i, cell in enumerate(cells):
        if BEGIN not in cell.source or cell.cell_type != "code":
            continue
        assert cell.source.count(BEGIN) == cell.source.count(END), f"unbalanced region: {cell.source[:80]!r}"
        assert "# NBVAL_CHECK_OUTPUT" not in cell.source, "an exercise's output differs between the versions"
        intro = next(c for c in reversed(cells[:i]) if c.cell_type == "markdown")
        assert "Your turn" in intro.source, f"no 'Your turn' text before {cell.source[:80]!r}"
        nxt = next(c for c in cells[i + 1:] if c.cell_type == "code")
        assert CHECK_CALL.search(nxt.source), f"no check after {cell.source[:80]!r}"
