"""Command line: ``python -m nstutils stylize CONTENT STYLE -o OUT.png [options]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .color import COLOR_MODES, stylize_with_color
from . import masks
from .device import PRECISIONS, choose, choose_precision
from .features import VGGFeatures
from .images import image_format, load_image, save_image
from .provenance import read_result, result_metadata
from .memory import GB, available_memory, estimate_memory
from .optimize import DEFAULTS, INITS, OPTIMIZERS, StepInfo
from .pyramid import pyramid_sizes, split_steps
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


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser(defaults: dict | None = None) -> argparse.ArgumentParser:
    """Build the parser; ``defaults`` replace the stylize options' defaults (used by --resume)."""
    parser = argparse.ArgumentParser(prog="python -m nstutils",
                                     description="Neural style transfer (Gatys et al.) on your images.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stylize", help="paint CONTENT in the style of STYLE",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("content", help="content image (photo)")
    p.add_argument("style", nargs="+", help="style image (painting); several are mixed (see --blend) "
                                            "or, with --mask, given one region each")
    p.add_argument("-o", "--output", required=True, help="output .png or .jpg")
    p.add_argument("--size", type=_positive_int, default=384, help="longer side of the result in pixels")
    p.add_argument("--style-size", type=_positive_int, default=None,
                   help="longer side of the style image (default: --size)")
    p.add_argument("--blend", type=_non_negative, nargs="+", default=None, metavar="W",
                   help="one weight per style image (default: equal)")
    p.add_argument("--style-scale", type=_positive_float, default=None, metavar="S",
                   help="resize the style image(s) to S times the result's longer side "
                        "(smaller: finer brush strokes)")
    p.add_argument("--mask", default=None, metavar="IMAGE",
                   help="with two style images: white areas of IMAGE get the first, black the second")
    p.add_argument("--steps", type=_positive_int, default=DEFAULTS.steps)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS.optimizer)
    p.add_argument("--lr", type=_non_negative, default=None, help="default: 1 for lbfgs, 0.02 for adam")
    p.add_argument("--content-weight", type=_non_negative, default=DEFAULTS.content_weight)
    p.add_argument("--style-weight", type=_non_negative, default=DEFAULTS.style_weight)
    p.add_argument("--tv-weight", type=_non_negative, default=DEFAULTS.tv_weight)
    p.add_argument("--color", choices=COLOR_MODES, default="none",
                   help="keep the photo's colours: swap or luminance; or recolour the painting "
                        "first: histogram, chol, pca, sym")
    p.add_argument("--init", choices=INITS, default=DEFAULTS.init)
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--weights", default="caffe", help="caffe, torchvision, random, or a state-dict path")
    p.add_argument("--pooling", choices=("max", "avg"), default="max")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, ...")
    p.add_argument("--no-pyramid", dest="pyramid", action="store_false",
                   help="run every step at full size (the textbook method) instead of coarse-to-fine")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default=DEFAULTS.precision,
                   help="bf16 runs the network in bfloat16 where the device supports it natively")
    p.add_argument("--estimate", action="store_true",
                   help="print the estimated peak memory and the available memory, and exit")
    p.add_argument("--save-every", type=_positive_int, default=None, metavar="N",
                   help="also write OUT_stepNNNN.png every N steps")
    p.add_argument("--resume", metavar="PNG", default=None,
                   help="continue from a PNG written by nstutils: start from its image, at its size, "
                        "with its settings (options given here override them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(**{"init_image": None, **(defaults or {})})
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
    image_format(out)  # a bad suffix fails now, not after the run
    device, _ = choose(args.device, args.precision)  # one line of error if the device is missing
    if args.init_image is not None:  # resuming: the content at exactly the saved image's size
        args.init_image = args.init_image.to(device)
        content = load_image(args.content, size=tuple(args.init_image.shape[-2:]), device=device)
    else:
        content = load_image(args.content, max_side=args.size, device=device)
    styles = [load_image(p, max_side=args.style_size or args.size, device=device) for p in args.style]
    regions = None
    if args.mask is not None:
        if len(styles) != 2:
            raise ValueError(f"--mask needs exactly two style images (white, black), got {len(styles)}")
        regions = masks.regions(masks.load_mask(args.mask, size=tuple(content.shape[-2:])).to(device))
    layers = (*DEFAULTS.content_layers, *DEFAULTS.style_layers)
    if args.estimate:
        return _estimate(args, content, layers, device)
    extractor = VGGFeatures(load_vgg19(args.weights), layers=layers, pooling=args.pooling).to(device)
    callback, close = _progress(args.steps, args.quiet)
    try:
        init = args.init if args.init_image is None else args.init_image
        result = stylize_with_color(content, styles if len(styles) > 1 else styles[0], extractor,
                                    color=args.color, style_blend=args.blend,
                                    style_scale=args.style_scale, content_masks=regions, steps=args.steps,
                                    optimizer=args.optimizer, lr=args.lr,
                                    content_weight=args.content_weight,
                                    style_weight=args.style_weight, tv_weight=args.tv_weight,
                                    init=init, seed=args.seed, snapshot_every=args.save_every,
                                    callback=callback, pyramid=args.pyramid, precision=args.precision)
    finally:
        close()
    sources = {"content": str(args.content), "style": ", ".join(map(str, args.style))}
    if args.mask:
        sources["mask"] = str(args.mask)
    meta = result_metadata(result, sources)
    save_image(result.image, out, metadata=meta)
    for step, img in result.snapshots:
        if step:
            save_image(img, out.with_name(f"{out.stem}_step{step:04d}{out.suffix}"), metadata=meta)
    last = result.history[-1].total if result.history else float("nan")
    h, w = result.image.shape[-2:]
    print(f"{result.status}: {len(result.history)} steps in {result.seconds:.1f}s, loss {last:.4g}, "
          f"{w}x{h} -> {out}" + ("" if result.status == "completed" else f" ({result.message})"))
    return {"completed": EXIT_OK, "stopped": EXIT_OK, "diverged": EXIT_DIVERGED}.get(result.status, EXIT_INTERRUPTED)


def _estimate(args, content, layers, device) -> int:
    """Print what a run would need against what the device has free; exit 1 if it cannot fit."""
    size = tuple(content.shape[-2:])
    precision = choose_precision(device, args.precision)
    n = len(pyramid_sizes(size)) if args.pyramid else 1
    need = estimate_memory(size, layers=layers, precision=precision, optimizer=args.optimizer,
                           steps=split_steps(args.steps, n)[-1])
    free = available_memory(device)
    fits = free is None or need <= free
    print(f"{size[1]}x{size[0]} on {device} ({precision}): needs about {need / GB:.2f} GB; "
          + ("available: unknown" if free is None else f"available: {free / GB:.2f} GB")
          + ("" if fits else " - too much"))
    return EXIT_OK if fits else EXIT_ERROR


# Settings stored by a saved result that are also command-line options (same names).
RESUMABLE = ("steps", "optimizer", "lr", "content_weight", "style_weight", "tv_weight", "seed",
             "pyramid", "precision", "color")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; with --resume, the saved settings become the defaults, so given options win."""
    args = build_parser().parse_args(argv)
    if args.resume:
        saved = read_result(args.resume)
        stored = {k: saved.params[k] for k in RESUMABLE if k in saved.params}
        args = build_parser({**stored, "init_image": saved.image}).parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
        return _stylize(args)
    except (FileNotFoundError, ValueError, RuntimeError, OSError, MemoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
