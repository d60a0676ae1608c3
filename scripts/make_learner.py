"""Make the learner's notebooks (notebooks/) from the worked solutions (solutions/).

Usage: python scripts/make_learner.py [--check]    (or: make learner)

solutions/ is the one source of truth. Each learner notebook is its solution with every region
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` replaced by a stub, by nbgrader's
ClearSolutions preprocessor (the tool nbgrader's own ``generate_assignment`` uses); code regions
become ``# YOUR CODE HERE`` / ``raise NotImplementedError()``, markdown regions "YOUR ANSWER
HERE". Then, for the learner:

- every cleared code cell is tagged ``raises-exception``, so nbval runs the learner notebook
  top to bottom with the exercises skipped (the check cell after each says "not done yet" and
  later cells use nstutils' version);
- the Colab badge and the Colab setup cell point at notebooks/ instead of solutions/;
- the banner under the title (:func:`banner`) says where the worked solutions are.

``--check`` writes nothing and exits 1 naming each learner notebook that is out of date
(tests/test_learner.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, LEARNER = ROOT / "solutions", ROOT / "notebooks"
STUB_TAG = "raises-exception"


def banner(name: str, solved: bool) -> str:
    """The line under each notebook's title that links the two versions of ``name``."""
    if solved:
        return (f"> **Worked solutions.** Every *Your turn* cell is filled in here. The version to work "
                f"through yourself is [notebooks/{name}](../notebooks/{name}).")
    return (f"> **Your turn** cells are yours to fill in; the cell after each checks your code and says "
            f"what is wrong. Skip any of them and the notebook still runs. Stuck? The worked solutions "
            f"are in [solutions/{name}](../solutions/{name}).")


def learner_version(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Return the learner's notebook made from ``solution`` (not modified)."""
    nb = copy.deepcopy(solution)
    before = [c.source for c in nb.cells]
    nb, _ = ClearSolutions(enforce_metadata=False).preprocess(nb, {})
    for cell, old in zip(nb.cells, before):
        if cell.source != old and cell.cell_type == "code":
            tags = cell.metadata.setdefault("tags", [])
            if STUB_TAG not in tags:
                tags.append(STUB_TAG)
            cell.outputs, cell.execution_count = [], None
    first = nb.cells[0]
    solved, learner = banner(name, True), banner(name, False)
    if solved not in first.source:
        raise ValueError(f"solutions/{name}: the first cell lacks the banner line:\n{solved}")
    first.source = first.source.replace(solved, learner).replace(
        "blob/main/solutions/", "blob/main/notebooks/")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = cell.source.replace("/content/nst-course/solutions", "/content/nst-course/notebooks")
    return nb


def expected() -> dict[Path, str]:
    """{learner path: its text as generated from solutions/} for every numbered solution notebook."""
    out = {}
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        nb = learner_version(nbformat.read(path, as_version=4), path.name)
        out[LEARNER / path.name] = nbformat.writes(nb) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if out of date")
    args = parser.parse_args(argv)
    wanted = expected()
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    extra = sorted(set(LEARNER.glob("[0-9][0-9]_*.ipynb")) - set(wanted))
    if args.check:
        for p in stale:
            print(f"out of date: notebooks/{p.name} (run: make learner)")
        for p in extra:
            print(f"no solution for notebooks/{p.name}: add solutions/{p.name} or delete it")
        return 1 if stale or extra else 0
    LEARNER.mkdir(exist_ok=True)
    for p in stale:
        p.write_text(wanted[p])
        print(f"wrote notebooks/{p.name}")
    for p in extra:
        p.unlink()
        print(f"deleted notebooks/{p.name} (no solution)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
