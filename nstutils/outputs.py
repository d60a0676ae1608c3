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
    """Return ``write(info)``, which writes OUT_stepNNNN.png every ``every`` steps of a run.

    Each snapshot is written when it is taken (atomically), so a killed run leaves them on disk.
    While ``style_weight="auto"`` tries weights (``info.probe`` set), each try's snapshots are
    written too (with the weight tried in their settings) and kept in memory: the kept try is the
    run's first level, so once the weight is chosen, at the run's next step or by
    ``write(None, params)`` with the finished result's params (a run of one level is all one
    try), its snapshots are written again over those of the tries not kept. A snapshot that
    cannot be written prints one warning and the run goes on.
    """
    failed, held = [], {}  # held: the tried weight -> [(step, image, params), ...]

    def save(step: int, image, params) -> None:
        if failed:
            return
        try:
            save_image(image, snapshot_path(out, step), metadata=meta(params))
        except OSError as err:
            failed.append(err)
            print(f"\nwarning: could not write snapshot {snapshot_path(out, step).name} "
                  f"({err.strerror or err}); no more snapshots, the run goes on", file=sys.stderr)

    def write(info, params: dict | None = None) -> None:
        due = bool(every) and info is not None and info.step % every == 0
        if info is not None and info.probe is not None:
            if due:
                snap = (info.step, info.image.detach().cpu().clone(), {**(info.params or {}), "style_weight": info.probe})
                held.setdefault(info.probe, []).append(snap)
                save(*snap)
            return
        if held:  # the weight is chosen: its try was the first level, and its snapshots are the run's
            chosen = ((info.params if info is not None else params) or {}).get("style_weight")
            for step, image, try_params in held.get(chosen, []):
                save(step, image, try_params)
            held.clear()
        if due:
            save(info.step, info.image, info.params)

    return write
