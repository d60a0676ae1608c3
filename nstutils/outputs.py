"""Where the command line writes: checked before the run, written whole, rescued when it fails.

An output path that cannot be written, that is a directory or that names one of the inputs is
refused before any compute (:func:`check_output`); snapshots are written as they are taken
(:func:`snapshot_writer`); a result whose target cannot be written at the end is saved to a
fallback path instead (:func:`save_or_rescue`). Every write is atomic (:func:`save_image`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from torch import Tensor

from .images import image_format, save_image
from .validate import UsageError


def snapshot_path(out: Path, step: int) -> Path:
    """OUT_stepNNNN.png beside OUT."""
    return out.with_name(f"{out.stem}_step{step:04d}{out.suffix}")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out: Path, inputs: dict[str, str | None], snapshots: bool = False) -> None:
    """Refuse an output that would fail or destroy an input, before the run starts.

    Raises UsageError (a bad -o) for a bad suffix, a directory, or a path (or, with
    ``snapshots``, a snapshot name) that is one of ``inputs`` {role: path}; OSError when the
    output's folder cannot be created or written.
    """
    if out.is_dir():
        raise UsageError(f"-o {out} is a directory; give a file name, e.g. {out / 'result.png'}")
    try:
        image_format(out)
    except ValueError as err:
        raise UsageError(str(err)) from None
    pattern = re.compile(re.escape(out.stem) + r"_step\d{4,}" + re.escape(out.suffix) + "$")
    for role, path in inputs.items():
        if not path:
            continue
        p = Path(path)
        if _same(out, p) or out.resolve() == p.resolve():
            raise UsageError(f"-o {out} is also the {role} image: it would be replaced; choose "
                             "another output name")
        if snapshots and p.parent.resolve() == out.parent.resolve() and pattern.match(p.name):
            raise UsageError(f"--save-every would write {p.name}, which is the {role} image; "
                             "choose another output name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OSError(f"cannot write -o {out}: {err.strerror or err}; choose a folder you can "
                      "write to") from None


def rescue_paths(out: Path) -> list[Path]:
    """Where a result goes when ``out`` cannot be written: the working, home and temp folders."""
    name = f"{out.stem}-rescued-{time.strftime('%Y%m%d-%H%M%S')}{out.suffix}"
    return [Path.cwd() / name, Path.home() / name, Path(tempfile.gettempdir()) / name]


def save_or_rescue(img: Tensor, out: Path, metadata: dict[str, str]) -> tuple[Path, OSError | None]:
    """Save to ``out``; if that fails, to the first :func:`rescue_paths` that works.

    Returns (the path written, the error that ``out`` gave or None). Raises the first error if
    nowhere could be written.
    """
    try:
        return save_image(img, out, metadata=metadata), None
    except OSError as err:
        first = err
    for path in rescue_paths(out):
        try:
            return save_image(img, path, metadata=metadata, overwrite=False), first
        except OSError:
            continue
    raise first


def snapshot_writer(out: Path, every: int | None, meta: Callable[[dict | None], dict[str, str]]):
    """Return a function of a StepInfo that writes OUT_stepNNNN.png every ``every`` steps.

    Each snapshot is written when it is taken (atomically), so a killed run leaves them on disk.
    A snapshot that cannot be written prints one warning and the run goes on.
    """
    failed = []

    def write(info) -> None:
        if not every or info.step % every or failed:
            return
        try:
            save_image(info.image, snapshot_path(out, info.step), metadata=meta(info.params))
        except OSError as err:
            failed.append(err)
            print(f"\nwarning: could not write snapshot {snapshot_path(out, info.step).name} "
                  f"({err.strerror or err}); no more snapshots, the run goes on", file=sys.stderr)

    return write
