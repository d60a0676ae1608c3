"""``--resume OLD.png``: continue the run that OLD.png names, with everything its loss depends on.

The command line's options that were not typed are taken from the settings stored in OLD.png
(see :mod:`nstutils.provenance`), each checked exactly like a typed option, so a damaged or
crafted file is refused with one line instead of bypassing the checks. The style images are
loaded at their stored sizes, the weights and the settings that only the Python API sets
(layers, layer weights, TV kind, L-BFGS history) are restored; what cannot be restored (a mask,
weights from an unnamed file) must be given again, else the run is refused.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from pathlib import Path
from typing import Callable

from .images import image_size
from .layers import check_layers
from .losses import TV_KINDS
from .provenance import SavedResult, read_result
from .validate import UsageError, check_choice, check_int, check_number

# Command-line options (argparse dests) restored from the stored settings: {dest: params key}.
OPTIONS = {"steps": "steps", "optimizer": "optimizer", "lr": "lr", "content_weight": "content_weight",
           "style_weight": "style_weight", "tv_weight": "tv_weight", "seed": "seed",
           "pyramid": "pyramid", "precision": "precision", "color": "color", "pooling": "pooling",
           "blend": "style_blend", "style_scale": "style_scale"}
WEIGHTS = (("caffe", "caffe"), ("torchvision", "torchvision"), ("random", "random"))
MAX_SIDE = 1 << 16


def flag(dest: str) -> str:
    """The option that sets argparse's ``dest``: "style_scale" -> "--style-scale"."""
    return {"pyramid": "--no-pyramid", "content": "CONTENT", "style": "STYLE"}.get(
        dest, "--" + dest.replace("_", "-"))


def restore(args, given: set[str], checks: dict[str, Callable]) -> SavedResult:
    """Fill the options of ``args`` that are not in ``given`` from the PNG ``args.resume``.

    Sets args.init_image, args.style_sizes (a (H, W) per style image, or None to use
    --style-size), args.extra (API-only settings for stylize) and args.weights. Raises
    UsageError naming the file and the option for anything unusable or impossible to restore.
    """
    saved = read_result(args.resume)
    name, p = Path(args.resume).name, saved.params
    if "size" in given:
        raise UsageError(f"--size cannot change on --resume: the run continues at the size of "
                         f"{name} ({saved.image.shape[-1]}x{saved.image.shape[-2]} px); leave --size out")
    for dest, key in OPTIONS.items():
        if dest not in given and key in p:
            try:
                setattr(args, dest, checks[dest](p[key]))
            except (ValueError, TypeError, ArgumentTypeError) as err:
                raise UsageError(f"{name} stores an unusable {flag(dest)} ({err}); give {flag(dest)} "
                                 "yourself or resume from another file") from None
    if p.get("masks") is True and not args.mask:
        raise UsageError(f"{name} was made with --mask, which the PNG does not keep; give the same "
                         "--mask IMAGE again")
    if "weights" not in given:
        args.weights = _weights(p, saved.sources, name)
    args.style_sizes = None if "style_size" in given else _style_sizes(p.get("style_size"), args.style, name)
    args.extra = _api_settings(p, name)
    args.init_image = saved.image
    return saved


def _weights(p: dict, sources: dict, name: str) -> str:
    if isinstance(sources.get("weights"), str):  # the --weights the command line was given
        return sources["weights"]
    wid = str(p.get("weights", ""))
    for prefix, option in WEIGHTS:
        if wid.startswith(prefix):
            return option
    raise UsageError(f"{name} was made with the weights {wid!r}; give them again with --weights PATH")


def _style_sizes(stored, styles: list[str], name: str) -> list[tuple[int, int]] | None:
    """The stored (H, W) of each style image, checked against the files given."""
    if stored is None:
        return None
    items = [stored] if isinstance(stored, list) and len(stored) == 2 and not isinstance(stored[0], list) else stored
    try:
        sizes = [(check_int(h, "", 1), check_int(w, "", 1)) for h, w in items]
        if max(max(s) for s in sizes) > MAX_SIDE:
            raise ValueError(f"sides up to {MAX_SIDE} px")
    except (ValueError, TypeError) as err:
        raise UsageError(f"{name} stores an unusable style image size {stored!r} ({err})") from None
    if len(sizes) != len(styles):
        raise UsageError(f"{name} was made with {len(sizes)} style image(s), but {len(styles)} are given; "
                         "give the same style images in the same order")
    for path, (h, w) in zip(styles, sizes):
        fh, fw = image_size(path)
        if abs(fw * h / fh - w) > 1.5 and abs(fh * w / fw - h) > 1.5:
            raise UsageError(f"{path} ({fw}x{fh} px) has another shape than the style image of {name} "
                             f"({w}x{h} px); give the same style images in the same order")
    return sizes


def _api_settings(p: dict, name: str) -> dict:
    """The stored settings that only the Python API sets, checked; missing ones keep the defaults."""
    out = {}
    try:
        for key in ("content_layers", "style_layers"):
            if key in p:
                if not isinstance(p[key], list) or not all(isinstance(n, str) for n in p[key]):
                    raise ValueError(f"{key} must be a list of layer names")
                out[key] = check_layers(p[key])
        if isinstance(p.get("style_layer_weights"), dict):
            out["style_layer_weights"] = {str(k): check_number(v, f"style_layer_weights[{k!r}]")
                                          for k, v in p["style_layer_weights"].items()}
            check_layers(tuple(out["style_layer_weights"]))
        if "tv_kind" in p:
            out["tv_kind"] = check_choice(p["tv_kind"], "tv_kind", TV_KINDS)
        if "lbfgs_history" in p:
            out["lbfgs_history"] = check_int(p["lbfgs_history"], "lbfgs_history", 1)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{name} stores unusable settings ({err})") from None
    return out
