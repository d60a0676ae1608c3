"""Strip notebook outputs except in cells marked ``# NBVAL_CHECK_OUTPUT``.

Usage: python scripts/strip_outputs.py solutions/*.ipynb   (then make learner)
Checked cells keep their outputs because nbval compares them; every other output is removed
(CI executes the notebooks), as are execution counts of unchecked cells and widget state.
"""

from __future__ import annotations

import sys

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"


def strip(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if MARK in cell.source:
            # Keep text outputs only: images differ between matplotlib versions.
            cell.outputs = [o for o in cell.outputs if o.get("output_type") in ("stream", "execute_result")
                            and "image/png" not in o.get("data", {})]
        else:
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        strip(p)
