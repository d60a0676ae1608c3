"""Command line: ``python -m nstutils stylize CONTENT STYLE -o OUT.png [options]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .features import VGGFeatures
from .images import load_image, save_image
from .optimize import DEFAULTS, INITS, OPTIMIZERS, StepInfo, stylize
from .weights import load_vgg19

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nstutils",
                                     description="Neural style transfer (Gatys et al.) on your images.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stylize", help="paint CONTENT in the style of STYLE",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("content", help="content image (photo)")
    p.add_argument("style", help="style image (painting)")
    p.add_argument("-o", "--output", required=True, help="output .png or .jpg")
    p.add_argument("--size", type=_positive_int, default=384, help="longer side of the result in pixels")
    p.add_argument("--style-size", type=_positive_int, default=None,
                   help="longer side of the style image (default: --size)")
    p.add_argument("--steps", type=_positive_int, default=DEFAULTS.steps)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS.optimizer)
    p.add_argument("--lr", type=_non_negative, default=None, help="default: 1 for lbfgs, 0.02 for adam")
    p.add_argument("--content-weight", type=_non_negative, default=DEFAULTS.content_weight)
    p.add_argument("--style-weight", type=_non_negative, default=DEFAULTS.style_weight)
    p.add_argument("--tv-weight", type=_non_negative, default=DEFAULTS.tv_weight)
    p.add_argument("--init", choices=INITS, default=DEFAULTS.init)
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--weights", default="caffe", help="caffe, torchvision, random, or a state-dict path")
    p.add_argument("--pooling", choices=("max", "avg"), default="max")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, ...")
    p.add_argument("--save-every", type=_positive_int, default=None, metavar="N",
                   help="also write OUT_stepNNNN.png every N steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _progress(total: int, quiet: bool):
    """Return (callback, close) that drive a tqdm bar with the current loss terms."""
    if quiet:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)

    def callback(info: StepInfo) -> None:
        r = info.record
        bar.set_postfix_str(f"loss {r.total:.3g} (content {r.content:.3g}, style {r.style:.3g}, tv {r.tv:.3g})")
        bar.update(1)

    return callback, bar.close


def _stylize(args) -> int:
    out = Path(args.output)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"cannot save {out.name!r}: use a .png, .jpg or .jpeg suffix")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    content = load_image(args.content, max_side=args.size, device=device)
    style = load_image(args.style, max_side=args.style_size or args.size, device=device)
    layers = (*DEFAULTS.content_layers, *DEFAULTS.style_layers)
    extractor = VGGFeatures(load_vgg19(args.weights), layers=layers, pooling=args.pooling).to(device)
    callback, close = _progress(args.steps, args.quiet)
    try:
        result = stylize(content, style, extractor, steps=args.steps, optimizer=args.optimizer,
                         lr=args.lr, content_weight=args.content_weight, style_weight=args.style_weight,
                         tv_weight=args.tv_weight, init=args.init, seed=args.seed,
                         snapshot_every=args.save_every, callback=callback)
    finally:
        close()
    meta = {"nstutils:params": json.dumps(result.params, default=str),
            "nstutils:sources": json.dumps({"content": str(args.content), "style": str(args.style)})}
    save_image(result.image, out, metadata=meta)
    for step, img in result.snapshots:
        if step:
            save_image(img, out.with_name(f"{out.stem}_step{step:04d}{out.suffix}"), metadata=meta)
    last = result.history[-1].total if result.history else float("nan")
    h, w = result.image.shape[-2:]
    print(f"{result.status}: {len(result.history)} steps in {result.seconds:.1f}s, loss {last:.4g}, "
          f"{w}x{h} -> {out}" + ("" if result.status == "completed" else f" ({result.message})"))
    return {"completed": EXIT_OK, "stopped": EXIT_OK, "diverged": EXIT_DIVERGED}.get(result.status, EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _stylize(args)
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
