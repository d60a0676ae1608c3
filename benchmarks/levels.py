"""Where the default run's time goes, level by level, and what other step splits would cost.

    python benchmarks/levels.py                         # the default split at 512 px
    python benchmarks/levels.py --split 72,48,24 96,36,12 --size 512
    python benchmarks/levels.py --first-step torch grey   # L-BFGS's first step: torch's, then ours
    python benchmarks/levels.py --conv direct winograd direct winograd   # the convolutions' algorithm
    python benchmarks/levels.py --heap plain kept --min-in-channels 64 128   # before and after two changes
    python benchmarks/levels.py --split 72,48,24 96,24,24 --range free clamped   # the losses' clamp, two splits
    python benchmarks/levels.py --textbook-steps 0 --pair petra_tomb_facade:munch_the_scream --split 72,48,24 96,24,24
    python benchmarks/levels.py --start-level no yes --pair ...   # the pyramid's start level (64 px at 512 px)
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/levels.py   # AVX2 class, approximately

For each split (the steps of each pyramid level, coarsest first) one ``nu.stylize`` of Tübingen x
The Starry Night (or each ``--pair`` of data/content and data/style images) at the defaults, reporting per level: steps, forward+backward evaluations (L-BFGS's
line search may need more than one per step), seconds, seconds per evaluation; then the run's
seconds, the fp32 loss of the saved PNG (the score of benchmarks/bench.py) and the run's seconds in
textbook-step times (one step of bench.py's baseline loop, timed in this same run).
``--first-step`` runs each split with the first L-BFGS step of every level as torch starts it
("torch": lr / |g|_1) and as nstutils does ("grey": about one grey level per pixel value;
optimize.LBFGS_FIRST_CHANGE), alternating, so the two compare within one run; ``--conv`` likewise
runs each with torch's direct convolutions and with Winograd's (``stylize(conv=...)``).
``--heap plain`` runs with glibc's malloc as it is (``nstutils.heap.kept_heap`` off; in this one
process, after a kept run, glibc's defaults are back but its threshold for fresh mmaps no longer
adapts), and ``--min-in-channels`` sets the fewest input channels for which a layer computes by
Winograd's algorithm (``nstutils.winograd.MIN_IN_CHANNELS``); the two options' values pair up
in order (``--heap plain kept --min-in-channels 64 128``: before and after both changes).
``--range free`` scores the optimizer's pixels as they are, without the clamp to [0, 1] that
stylize's losses apply (``optimize.as_saved``); ``clamped`` is stylize's way. ``--start-level no``
leaves out the level that ``stylize`` puts before a pyramid's coarsest (``pyramid.add_start_level``);
a ``--split`` must have as many levels as the pyramid run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the baseline, images, scorer and machine description)
import nstutils as nu  # noqa: E402
from nstutils import features, optimize, pyramid  # noqa: E402


def run_split(content, style, extractor, split: list[int] | None, score, conv: str = "auto",
              start_level: bool = True) -> dict:
    """One default stylize with the given level steps (None: the defaults); its per-level costs.

    ``start_level``: False leaves out the pyramid's start level (``pyramid.add_start_level``).
    """
    evals: list[int] = []
    extractor_hook = extractor.register_forward_hook(
        lambda m, args, out: evals.append(args[0].shape[-1]) if torch.is_grad_enabled() else None)
    stamps: list[tuple[int, float]] = []
    real_levels, keep_start = optimize.levels, start_level

    def levels(full, layers, steps, pyramid, start_level=True):
        sizes, level_steps = real_levels(full, layers, steps, pyramid, start_level and keep_start)
        if split is not None:
            if len(split) != len(sizes):
                raise SystemExit(f"split {split} has {len(split)} levels; this size has {len(sizes)}: {sizes}")
            level_steps = list(split)
        return sizes, level_steps

    try:
        with mock.patch.object(optimize, "levels", levels):
            start = time.perf_counter()
            result = nu.stylize(content, style, extractor, steps=sum(split) if split else nu.DEFAULTS.steps, conv=conv,
                                callback=lambda info: stamps.append((info.record.level, time.perf_counter())))
            seconds = time.perf_counter() - start
    finally:
        extractor_hook.remove()
    loss = bench.saved_loss(result.image, score)
    rows, last = [], start
    for level, (size, n) in enumerate(zip(result.params["levels"], result.params["level_steps"])):
        ends = [t for lv, t in stamps if lv == level]
        width = size[1]
        ev = sum(1 for w in evals if w == width)
        secs = ends[-1] - last if ends else 0.0
        last = ends[-1] if ends else last
        rows.append(dict(size=size, steps=n, evaluations=ev, seconds=secs,
                         per_evaluation=secs / ev if ev else None))
    return dict(split=result.params["level_steps"], seconds=seconds, loss=loss, levels=rows,
                image=result.image)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--split", nargs="*", default=[None], type=lambda s: [int(v) for v in s.split(",")],
                    help="steps per level, coarsest first, e.g. 72,48,24 (default: the package's split)")
    ap.add_argument("--textbook-steps", type=int, default=4, help="baseline steps timed (0: skip)")
    ap.add_argument("--factor", type=float, help="the pyramid's factor between levels (default: the package's, 2)")
    ap.add_argument("--first-step", nargs="+", choices=("torch", "grey"), default=["grey"],
                    help="L-BFGS's first step at each level: torch's own or nstutils' (default)")
    ap.add_argument("--conv", nargs="+", choices=("auto", "direct", "winograd"), default=["auto"],
                    help="the convolutions' algorithm, one run each in this order (default: auto)")
    ap.add_argument("--heap", nargs="+", choices=("kept", "plain"), default=["kept"],
                    help="freed memory kept in the process during a run (default, as stylize) or glibc's malloc as it is")
    ap.add_argument("--min-in-channels", nargs="+", type=int, default=[features.MIN_IN_CHANNELS],
                    help="fewest input channels for Winograd's convolutions, paired with --heap")
    ap.add_argument("--range", nargs="+", choices=("clamped", "free"), default=["clamped"],
                    help="the losses score the pixels clamped to [0, 1] (default, as stylize) or as they are")
    ap.add_argument("--start-level", nargs="+", choices=("yes", "no"), default=["yes"],
                    help="the pyramid's start level at half the coarsest's sides (default, as stylize) or not")
    ap.add_argument("--pair", nargs="+", default=["tubingen_neckarfront:van_gogh_starry_night"],
                    metavar="CONTENT:STYLE", help="photo and painting, file names in data/content and data/style without .jpg")
    ap.add_argument("--save", metavar="DIR", help="save each result as DIR/<split>.png")
    ap.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    if len(args.heap) != len(args.min_in_channels):
        if 1 not in (len(args.heap), len(args.min_in_channels)):
            raise SystemExit("--heap and --min-in-channels pair up: give as many of each, or one")
        n = max(len(args.heap), len(args.min_in_channels))
        args.heap, args.min_in_channels = (v * n if len(v) == 1 else v for v in (args.heap, args.min_in_channels))
    machine = bench.machine()
    print(f"machine: {machine}", flush=True)
    vgg = nu.load_vgg19()
    extractor = nu.VGGFeatures(vgg, layers=bench.LAYERS)
    pairs = [bench.images(args.size, *pair.split(":")) for pair in args.pair]
    scores = [bench.scorer(content, style, extractor) for content, style in pairs]  # targets once per pair
    content, style = pairs[0]
    step = None
    if args.textbook_steps:
        step = statistics.median(bench.step_times(
            lambda cb: bench.baseline_stylize(content, style, vgg, args.textbook_steps, cb), 1))
        print(f"textbook step: {step:.2f} s", flush=True)
    out = []
    if args.factor:
        pyramid.PYRAMID_FACTOR = args.factor  # read by pyramid_sizes at each call
    first_changes = {"torch": None, "grey": optimize.LBFGS_FIRST_CHANGE}
    memory = list(zip(args.heap, args.min_in_channels))
    for pair, start, split, first, conv, (heap, channels), bounds in [
            (p, st, sp, f, c, m, b) for p in range(len(pairs)) for st in args.start_level for sp in args.split
            for f in args.first_step for c in args.conv for m in memory for b in args.range]:
        (content, style), score = pairs[pair], scores[pair]
        optimize.LBFGS_FIRST_CHANGE = first_changes[first]  # read by _make_optimizer at each level
        features.MIN_IN_CHANNELS = channels  # read by VGGFeatures.winograd at each stylize
        plain = mock.patch.object(optimize, "kept_heap", lambda: contextlib.nullcontext(False))
        free = mock.patch.object(optimize, "as_saved", lambda img: img)  # the raw pixels, as before 2026-12-04
        with (plain if heap == "plain" else contextlib.nullcontext(),
              free if bounds == "free" else contextlib.nullcontext()):
            r = run_split(content, style, extractor, split, score, conv, start == "yes")
        image = r.pop("image")
        name = (("" if len(pairs) == 1 else f"{args.pair[pair].replace(':', '_')}_")
                + "-".join(map(str, r["split"])) + ("" if args.first_step == ["grey"] else f"_{first}")
                + ("" if args.conv == ["auto"] else f"_{conv}")
                + ("" if len(memory) == 1 else f"_{heap}_{channels}")
                + ("" if args.range == ["clamped"] else f"_{bounds}")
                + ("" if args.start_level == ["yes"] else f"_start_{start}"))
        r["first_step"], r["conv"], r["heap"], r["min_in_channels"], r["range"] = first, conv, heap, channels, bounds
        r["pair"], r["start_level"] = args.pair[pair], start
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            nu.save_image(image, Path(args.save) / f"{name}.png")
        ratio = f" = {r['seconds'] / step:.1f} textbook steps" if step else ""
        print(f"split {name}: {r['seconds']:.1f} s{ratio}, loss {r['loss']:.4f}"
              f" ({sum(lv['evaluations'] for lv in r['levels'])} evaluations)", flush=True)
        for lv in r["levels"]:
            per = f"{lv['per_evaluation']:.3f}" if lv["per_evaluation"] else "-"
            print(f"   {lv['size'][0]:4d}x{lv['size'][1]:<4d} {lv['steps']:4d} steps "
                  f"{lv['evaluations']:4d} evaluations {lv['seconds']:7.1f} s  {per} s/evaluation", flush=True)
        out.append(dict(r, textbook_step=step))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=machine, runs=out), indent=1))


if __name__ == "__main__":
    main()
