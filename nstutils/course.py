"""Settings that the course notebooks share: quick mode, the data folder and the repository URL.

Quick mode (``NSTUTILS_QUICK=1`` in the environment) shrinks image sizes and step counts so CI
can execute every notebook in minutes; the real VGG19 weights stay on. A learner who does not
set it gets the full settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

REPO_URL = "https://github.com/nst-course/nst-course"
"""The one place the repository address lives; a test checks every badge and install cell."""

REPO_ENV = "NST_COURSE_REPO"
"""Overrides the address in the notebooks' Colab install cell (the rehearsal points it at a local clone)."""

QUICK_ENV = "NSTUTILS_QUICK"


def is_quick(environ: Mapping[str, str] | None = None) -> bool:
    """Return True when ``NSTUTILS_QUICK`` is set to 1/true/yes in ``environ`` (default os.environ)."""
    value = (os.environ if environ is None else environ).get(QUICK_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def pick(full, quick, *, environ: Mapping[str, str] | None = None):
    """Return ``quick`` in quick mode and ``full`` otherwise (for a notebook's parameters cell)."""
    return quick if is_quick(environ) else full


def mode_line(environ: Mapping[str, str] | None = None) -> str:
    """Return a one-line description of the active mode, for notebooks to print."""
    if is_quick(environ):
        return f"QUICK mode ({QUICK_ENV}=1): small images and few steps, for testing only."
    return f"FULL mode: the real settings. Set {QUICK_ENV}=1 for a fast smoke run."


def find_data(start: str | Path | None = None) -> Path:
    """Return the course's ``data/`` folder, searching ``start`` (default: cwd) and its parents."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "data" / "content").is_dir() and (folder / "data" / "style").is_dir():
            return folder / "data"
    raise FileNotFoundError(f"no data/ folder with content/ and style/ in {here} or its parents; "
                            "run the notebook from inside the nst-course checkout")


def samples(data: Path, kind: str) -> dict[str, Path]:
    """Return {name: path} of the sample images in ``data/<kind>`` (kind: "content" or "style")."""
    if kind not in ("content", "style"):
        raise ValueError(f"unknown kind {kind!r}; valid: content, style")
    return {p.stem: p for p in sorted((Path(data) / kind).glob("*.jpg"))}
