"""Command line: ``python -m nstutils stylize CONTENT STYLE -o OUT.png [options]``.

Exit codes: 0 done, 1 error (unreadable file, not enough memory, ...), 2 bad arguments,
3 diverged (the best image so far is saved), 130 interrupted (Ctrl-C, SIGTERM or SIGHUP after
the first step: the best image so far is saved). Every error is one line; ``--debug`` (or the
environment variable NSTUTILS_DEBUG=1) shows the traceback instead, for a bug report.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path

from . import interrupts
from .interrupts import EXIT_INTERRUPTED
from .validate import UsageError, check_seed

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3


def _positive_int(text) -> int:
    try:
        value = int(text) if isinstance(text, str) else text
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _non_negative(text) -> float:
    value = float(text) if isinstance(text, (str, int, float)) and not isinstance(text, bool) else math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _style_weight(text: str) -> float | str:
    """ "auto" (chosen per pair, see nstutils.balance) or a number >= 0."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _non_negative(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a number >= 0, got {text}") from None


def _threads(text: str) -> int | str:
    """ "auto" (see nstutils.threads) or a whole number >= 1."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a positive whole number, got {text}") from None


def _positive_float(text, maximum: float = math.inf) -> float:
    value = float(text) if isinstance(text, (str, int, float)) and not isinstance(text, bool) else math.nan
    if not (math.isfinite(value) and 0 < value <= maximum):
        raise argparse.ArgumentTypeError(f"must be a number > 0{'' if maximum == math.inf else f' and <= {maximum:g}'}"
                                         f", got {text}")
    return value


def _style_scale(text) -> float:
    from .optimize import MAX_STYLE_SCALE  # stylize's own bound, so typed and API values agree

    return _positive_float(text, MAX_STYLE_SCALE)


def _seed(text) -> int:
    try:
        return check_seed(int(text) if isinstance(text, str) else text, "")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).strip()) from None


def _blend(values) -> list[float]:
    if not isinstance(values, list) or not values:
        raise argparse.ArgumentTypeError(f"must be a list of weights >= 0, got {values!r}")
    return [_non_negative(v) for v in values]


def _choice(*choices):
    def check(value):
        if value not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value

    return check


def _checks() -> dict:
    """How each restorable option is checked: the same functions as typed options (see resume)."""
    from .color import COLOR_MODES
    from .device import PRECISIONS
    from .optimize import OPTIMIZERS
    from .winograd import CONVS

    return {"steps": _positive_int, "optimizer": _choice(*OPTIMIZERS), "seed": _seed,
            "lr": lambda v: None if v is None else _positive_float(v),
            "content_weight": _non_negative, "tv_weight": _non_negative,
            "style_weight": lambda v: _style_weight(v) if isinstance(v, str) else _non_negative(v),
            "pyramid": _choice(True, False), "precision": _choice("auto", *PRECISIONS),
            "conv": _choice("auto", *CONVS),
            "color": _choice(*COLOR_MODES), "pooling": _choice("max", "avg"),
            "blend": lambda v: None if v is None else _blend(v),
            "style_scale": lambda v: None if v is None else _style_scale(v)}


def build_parser(defaults: dict | None = None) -> argparse.ArgumentParser:
    """Build the parser; ``defaults`` replace the stylize options' defaults."""
    from .color import COLOR_MODES
    from .device import PRECISIONS
    from .optimize import DEFAULTS, INITS, OPTIMIZERS
    from .winograd import CONVS

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
    p.add_argument("--style-scale", type=_style_scale, default=None, metavar="S",
                   help="resize the style image(s) to S times the result's longer side "
                        "(smaller: finer brush strokes)")
    p.add_argument("--mask", default=None, metavar="IMAGE",
                   help="with two style images: white areas of IMAGE get the first, black the second")
    p.add_argument("--steps", type=_positive_int, default=DEFAULTS.steps)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=DEFAULTS.optimizer)
    p.add_argument("--lr", type=_positive_float, default=None, help="default: 1 for lbfgs, 0.02 for adam")
    p.add_argument("--content-weight", type=_non_negative, default=DEFAULTS.content_weight)
    p.add_argument("--style-weight", type=_style_weight, default=DEFAULTS.app_style_weight,
                   help="a number, or 'auto' (the default): the largest weight in [1, 30] that keeps the "
                        "photo's structure, chosen for the pair and recorded in the PNG's settings")
    p.add_argument("--tv-weight", type=_non_negative, default=DEFAULTS.tv_weight)
    p.add_argument("--color", choices=COLOR_MODES, default="none",
                   help="keep the photo's colours: swap or luminance; or recolour the painting "
                        "first: histogram, chol, pca, sym")
    p.add_argument("--init", choices=INITS, default=DEFAULTS.init)
    p.add_argument("--seed", type=_seed, default=DEFAULTS.seed)
    p.add_argument("--weights", default="caffe", help="caffe, torchvision, random, or a state-dict path")
    p.add_argument("--pooling", choices=("max", "avg"), default="max")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, ...")
    p.add_argument("--no-pyramid", dest="pyramid", action="store_false",
                   help="run every step at full size (the textbook method) instead of coarse-to-fine")
    p.add_argument("--precision", choices=("auto", *PRECISIONS), default=DEFAULTS.precision,
                   help="bf16 runs the network in bfloat16 where the device supports it natively")
    p.add_argument("--conv", choices=("auto", *CONVS), default=DEFAULTS.conv,
                   help="winograd: Winograd's F(4x4, 3x3) convolutions, a run about 1.4x faster in float32 "
                        "on the CPU; auto uses them there; direct: torch's")
    p.add_argument("--threads", type=_threads, default=DEFAULTS.threads,
                   help="CPU threads: auto uses all of them while the run gets its cores, and one more "
                        "or fewer (whichever gets more CPU time) while another program takes them; "
                        "or a number")
    p.add_argument("--estimate", action="store_true",
                   help="print the estimated peak memory and the available memory, and exit")
    p.add_argument("--save-every", type=_positive_int, default=None, metavar="N",
                   help="also write OUT_stepNNNN.png every N steps")
    p.add_argument("--resume", metavar="PNG", default=None,
                   help="continue from a PNG written by nstutils: start from its image, at its size, "
                        "with its settings and style image sizes (options given here override them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true",
                   help="show Python tracebacks instead of one-line errors (also NSTUTILS_DEBUG=1)")
    p.set_defaults(**{"init_image": None, "style_sizes": None, "extra": {}, **(defaults or {})})
    return parser


def _progress(total: int, quiet: bool, also=None):
    """Return (callback, close): a tqdm bar with the current loss terms; ``also(info)`` runs first.

    Steps of a style weight that "auto" tries (``info.probe``) only show in the bar's text;
    ``also`` sees them too (outputs.snapshot_writer). The kept try is the run's first level, so
    the bar jumps over its steps when the next level starts, and ``close(done)`` moves it to
    ``done`` steps (a run of one level is all one try).
    """
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", dynamic_ncols=True, file=sys.stderr)

    def callback(info) -> None:
        if also is not None:
            also(info)
        if info.probe is not None:  # "auto" trying a style weight: the run's steps start once it is chosen
            if bar is not None:
                bar.set_postfix_str(f"choosing the style weight: trying {info.probe:g}, step {info.step}")
            return
        if bar is not None:
            r = info.record
            bar.set_postfix_str(f"loss {r.total:.3g} (content {r.content:.3g}, style {r.style:.3g}, tv {r.tv:.3g})")
            bar.update(max(1, info.step - bar.n))  # after "auto": the kept try's steps too

    def close(done: int | None = None) -> None:
        if bar is not None:
            if done is not None and done > bar.n:
                bar.update(done - bar.n)
            bar.close()

    return callback, close


def _inputs(args) -> dict[str, str | None]:
    """Every file the run reads, by role (an output must be none of them)."""
    files = {"content": args.content, "mask": args.mask, "--resume": args.resume,
             **{f"style {i + 1}" if len(args.style) > 1 else "style": s for i, s in enumerate(args.style)}}
    if args.weights not in ("caffe", "torchvision", "random"):
        files["--weights"] = args.weights
    return files


def _plan(args, device, precision, conv, layers):
    """Check the run before loading anything heavy; return (content (H, W), bytes needed, bytes free).

    Sizes come from the image headers and the options, never from decoding, so an 8000 px
    estimate costs nothing and a run that cannot fit fails before the weights load.
    """
    from .features import min_side
    from .images import image_size
    from .memory import available_memory, estimate_memory
    from .optimize import levels

    if args.init_image is not None:
        size = tuple(args.init_image.shape[-2:])
    else:
        size = image_size(args.content, max_side=args.size)
    style_sizes = args.style_sizes or [image_size(s, max_side=args.style_size or args.size) for s in args.style]
    if args.style_scale is not None:  # what stylize will resize them to
        style_sizes = [(max(1, round(h * f)), max(1, round(w * f))) for h, w in style_sizes
                       for f in [args.style_scale * max(size) / max(h, w)]]
    if args.mask is not None:
        image_size(args.mask)  # unreadable masks fail now
    need_side = min_side(layers)
    for what, (h, w) in [(f"the content image {args.content}", size),
                         *((f"the style image {s}", z) for s, z in zip(args.style, style_sizes))]:
        if min(h, w) < need_side:
            raise ValueError(f"{what} would be {w}x{h} px, too small: the network's style layers need "
                             f"at least {need_side} px a side; raise --size (or --style-size, "
                             "--style-scale) or crop it less elongated")
    sizes, level_steps = levels(size, layers, args.steps, args.pyramid and args.init_image is None)
    need = max([estimate_memory(size, layers=layers, precision=precision, conv=conv, optimizer=args.optimizer,
                                steps=level_steps[-1])]
               + [estimate_memory(s, layers=layers, precision=precision, optimizer="adam") for s in style_sizes])
    return size, need, available_memory(device)


def _stylize(args) -> int:
    from .color import stylize_with_color
    from .memory import GB, check_memory
    from .optimize import DEFAULTS
    from .outputs import check_output, save_or_rescue, snapshot_writer
    from .provenance import metadata, result_metadata

    out = Path(args.output)
    try:
        from .device import choose

        from .winograd import choose_conv

        device, precision = choose(args.device, args.precision)  # one line of error if the device is missing
        conv = choose_conv(device, precision, args.conv)  # and if --conv winograd cannot run here
    except ValueError as err:
        raise UsageError(str(err)) from None
    check_output(out, _inputs(args), snapshots=bool(args.save_every))  # before any compute
    if args.mask is not None and len(args.style) != 2:
        raise UsageError(f"--mask needs exactly two style images (white, black), got {len(args.style)}")
    content_layers = args.extra.get("content_layers", DEFAULTS.content_layers)
    style_layers = args.extra.get("style_layers", DEFAULTS.style_layers)
    layers = tuple(dict.fromkeys((*content_layers, *style_layers)))
    size, need, free = _plan(args, device, precision, conv, layers)
    if args.estimate:
        fits = free is None or need <= free
        print(f"{size[1]}x{size[0]} on {device} ({precision}): needs about {need / GB:.2f} GB; "
              + ("available: unknown" if free is None else f"available: {free / GB:.2f} GB")
              + ("" if fits else " - too much"))
        return EXIT_OK if fits else EXIT_ERROR
    check_memory(need, free, size)
    content, styles, regions = _load(args, size, device)
    extractor = _extractor(args, layers, device)
    sources = {"content": str(args.content), "style": ", ".join(map(str, args.style)), "weights": str(args.weights)}
    if args.mask:
        sources["mask"] = str(args.mask)
    snapshots = snapshot_writer(out, args.save_every, lambda params: metadata(params or {}, sources))
    callback, close = _progress(args.steps, args.quiet, snapshots)
    result = None
    try:
        interrupts.check()  # an interrupt that a library caught while loading is still one
        init = args.init if args.init_image is None else args.init_image
        result = stylize_with_color(content, styles if len(styles) > 1 else styles[0], extractor,
                                    color=args.color, style_blend=args.blend,
                                    style_scale=args.style_scale, content_masks=regions, steps=args.steps,
                                    optimizer=args.optimizer, lr=args.lr,
                                    content_weight=args.content_weight,
                                    style_weight=args.style_weight, tv_weight=args.tv_weight,
                                    init=init, seed=args.seed, callback=callback, pyramid=args.pyramid,
                                    precision=args.precision, conv=args.conv, threads=args.threads,
                                    **args.extra)
    finally:
        close(len(result.history) if result is not None else None)
    if result is not None:
        snapshots(None, result.params)  # a run of one level: its snapshots were all a try's
    if result.status == "interrupted" and not result.history:
        raise KeyboardInterrupt  # before the first step: the start image is no result to save
    with interrupts.deferred(raise_after=False) as held:  # a Ctrl-C now waits until the file is whole
        written, error = save_or_rescue(result.image, out, result_metadata(result, sources))
    return _report(result, out, written, error, held.signal, getattr(args, "saved_loss", None))


def _load(args, size, device):
    """Load the content at ``size``, the styles (at their stored sizes when resuming) and the mask."""
    from . import masks
    from .images import load_image

    content = load_image(args.content, size=size, device=device)
    if args.style_sizes:
        styles = [load_image(s, size=z, device=device) for s, z in zip(args.style, args.style_sizes)]
    else:
        styles = [load_image(s, max_side=args.style_size or args.size, device=device) for s in args.style]
    if args.init_image is not None:
        args.init_image = args.init_image.to(device)
    if args.mask is None:
        return content, styles, None
    mask = masks.load_mask(args.mask, size=size).to(device)
    for part, region in (("white", mask), ("black", 1 - mask)):
        if not bool(region.amax() > 0):
            raise ValueError(f"--mask {args.mask} has no {part} area at {size[1]}x{size[0]} px, so "
                             f"the {'first' if part == 'white' else 'second'} style would get no region; "
                             "paint both areas, or give one style image without --mask")
    return content, styles, masks.regions(mask)


def _extractor(args, layers, device):
    """Build the extractor; on --resume, refuse weights other than the saved run's unless typed."""
    from .features import VGGFeatures
    from .weights import load_vgg19

    extractor = VGGFeatures(load_vgg19(args.weights), layers=layers, pooling=args.pooling).to(device)
    stored = getattr(args, "saved_weights", None)
    if stored and stored != extractor.weights_id:
        raise UsageError(f"--resume {Path(args.resume).name} was made with the weights {stored}, but "
                         f"--weights {args.weights} gives {extractor.weights_id}; give --weights to "
                         "continue with other weights on purpose")
    return extractor


def _report(result, out: Path, written: Path, error: OSError | None, signal: str,
            saved_loss: dict | None = None) -> int:
    """Print the one-line summary; return the exit code."""
    loss = f"loss {result.loss['total']:.4g}" if result.loss else "loss not measured"
    if result.params.get("style_weight_auto"):  # the number to give --style-weight for the same run
        loss += f", style weight {result.params['style_weight']:.3g} (auto)"
    h, w = result.image.shape[-2:]
    status = "interrupted" if signal and result.status != "interrupted" else result.status
    note = "" if result.status == "completed" else f" ({result.message})"
    if saved_loss and result.history:  # --resume: where this run started against where the saved one ended
        note += f" (resumed at loss {result.history[0].total:.4g}; the saved image had {saved_loss['total']:.4g})"
    if signal and result.status != "interrupted":
        note += f" (interrupted by {signal} while saving; the file is whole)"
    print(f"{status}: {len(result.history)} steps in {result.seconds:.1f}s, {loss}, "
          f"{w}x{h} -> {written}{note}")
    if error is not None:
        print(f"error: could not write {out} ({error.strerror or error}); "
              f"the result is saved as {written} instead", file=sys.stderr)
        return EXIT_ERROR if status != "interrupted" else EXIT_INTERRUPTED
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return {"completed": EXIT_OK, "stopped": EXIT_OK, "diverged": EXIT_DIVERGED}.get(status, EXIT_ERROR)


_UNSET = object()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; with --resume, the saved settings fill every option not given, checked as typed."""
    args = build_parser().parse_args(argv)
    if args.resume:
        from .resume import restore

        marked = build_parser({dest: _UNSET for dest in vars(args)}).parse_args(argv)
        given = {dest for dest, value in vars(marked).items() if value is not _UNSET}
        saved = restore(args, given, _checks())
        if "weights" not in given:
            args.saved_weights = saved.params.get("weights")
        if isinstance(saved.loss, dict) and isinstance(saved.loss.get("total"), (int, float)):
            args.saved_loss = saved.loss
    return args


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or {MemoryError: "not enough memory"}.get(type(err), "")
    return text or type(err).__name__


def entry() -> None:
    """``python -m nstutils`` and the ``nstutils`` console script: run :func:`main`, exit with its code.

    After an interrupt the process leaves with 130 at once: when a KeyboardInterrupt has escaped
    code run by ``exec()`` (dataclasses and namedtuple build their methods that way, so a Ctrl-C
    during an import can land there), CPython kills itself with SIGINT at exit even though
    :func:`main` caught it, and the shell would see "killed by SIGINT" instead of 130.
    """
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code. Errors are one line (tracebacks with --debug)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or bool(os.environ.get("NSTUTILS_DEBUG"))
    interrupts.install(debug)
    try:
        interrupts.check()  # a Ctrl-C while `python -m nstutils` imported torch, swallowed there
        return _stylize(_parse(argv))
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(interrupts.interrupted_line(), file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError, RuntimeError, MemoryError) as err:  # files, sizes, memory: one line
        if debug:
            traceback.print_exc()
        if interrupts.last_signal():  # the error is what an interrupt left behind (a half-made import)
            print(interrupts.interrupted_line(), file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a bug: still one line, with how to get the details
        if debug:
            raise
        print(f"error: {type(err).__name__}: {_one_line(err)} (a bug? run again with --debug and "
              "report the traceback)", file=sys.stderr)
        return EXIT_ERROR
