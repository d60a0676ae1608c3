"""What the pull back into [0, 1] (nstutils.optimize.range_penalty) changes, for each weight w given.

    python benchmarks/range_penalty.py                       # w = 0 (without) and 1000 (the default)
    python benchmarks/range_penalty.py --weights 0 10 100 1000 10000 --save out/range_penalty
    python benchmarks/range_penalty.py --quick               # small sizes: checks that it runs

The losses score the image clamped to [0, 1] (optimize.as_saved), so without the pull a pixel that
L-BFGS pushes beyond the range gets no gradient and stays there. Three measurements per weight:
1. texture synthesis from noise (notebook 02: The Starry Night at 192 px, 150 steps, all five style
   layers, no content term), with the total-variation weight 0 and 10: the style loss of the result,
   the share of its values on a bound (0 or 1), and its grain (the mean absolute difference of
   neighbouring pixels; the painting's own is printed for comparison);
2. the default 512 px run (nu.stylize's defaults) on each --pair: seconds, forward+backward
   evaluations and the fp32 loss of the saved PNG (benchmarks/bench.py's score);
3. notebook 04's Question 4.9 setting: 96 px, 90 steps from noise (seed 0), the textbook settings
   (one size, float32, torch's convolutions): the loss of the returned image and its share of values
   on a bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (images, scorer, machine description)
import nstutils as nu  # noqa: E402
from nstutils import optimize  # noqa: E402
from nstutils.course import find_data  # noqa: E402


def grain(img: torch.Tensor) -> float:
    """Mean absolute difference of horizontally neighbouring values of (1, 3, H, W) ``img``."""
    return float((img[..., 1:] - img[..., :-1]).abs().mean())


def on_bound(img: torch.Tensor) -> float:
    """Share of the values of ``img`` that are exactly 0 or 1."""
    return float(((img <= 0) | (img >= 1)).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 1000.0])
    ap.add_argument("--pair", nargs="*", default=["tubingen_neckarfront:van_gogh_starry_night",
                                                   "petra_tomb_facade:munch_the_scream",
                                                   "arches_national_park:hokusai_great_wave",
                                                   "grace_hopper_portrait:kandinsky_composition_vii"],
                    metavar="CONTENT:STYLE")
    ap.add_argument("--quick", action="store_true", help="64 and 48 px, few steps: checks that it runs")
    ap.add_argument("--save", metavar="DIR", help="save every result as a PNG there")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    q = args.quick
    machine = bench.machine()
    print(f"machine: {machine}", flush=True)
    save = Path(args.save) if args.save else None
    if save:
        save.mkdir(parents=True, exist_ok=True)
    vgg = nu.load_vgg19()
    layers = nu.DEFAULTS.style_layers
    out = dict(machine=machine, texture=[], default=[], noise=[])

    painting = nu.load_image(find_data(HERE) / "style" / "van_gogh_starry_night.jpg", max_side=64 if q else 192)
    print(f"1. texture from noise, {painting.shape[-1]} px; the painting's grain {grain(painting):.4f}", flush=True)
    ex_style = nu.VGGFeatures(vgg, layers=layers)
    for w in args.weights:
        optimize.OUT_OF_RANGE_WEIGHT = w  # read by range_penalty at each evaluation
        for tv in (0.0, 10.0):
            r = nu.stylize(painting, painting, ex_style, steps=10 if q else 150, init="noise", seed=0,
                           content_weight=0, tv_weight=tv, style_layers=layers, content_layers=layers[-1:])
            row = dict(weight=w, tv_weight=tv, style=r.loss["style"], on_bound=on_bound(r.image), grain=grain(r.image))
            out["texture"].append(row)
            print(f"  w={w:g}, TV weight {tv:g}: style loss {row['style']:.4f}, {100 * row['on_bound']:.1f}% of "
                  f"values on a bound, grain {row['grain']:.4f}", flush=True)
            if save:
                nu.save_image(r.image, save / f"texture_tv{tv:g}_w{w:g}.png")

    print("2. the default run", flush=True)
    ex = nu.VGGFeatures(vgg, layers=bench.LAYERS)
    for pair in args.pair:
        content, style = bench.images(128 if q else 512, *pair.split(":"))
        score = bench.scorer(content, style, ex)
        for w in args.weights:
            optimize.OUT_OF_RANGE_WEIGHT = w
            evals: list[int] = []
            hook = ex.register_forward_hook(lambda m, a, o: evals.append(1) if torch.is_grad_enabled() else None)
            try:
                start = time.perf_counter()
                r = nu.stylize(content, style, ex, steps=12 if q else nu.DEFAULTS.steps)
                seconds = time.perf_counter() - start
            finally:
                hook.remove()
            loss = bench.saved_loss(r.image, score)
            row = dict(pair=pair, weight=w, seconds=seconds, evaluations=len(evals), loss=loss)
            out["default"].append(row)
            print(f"  {pair} w={w:g}: {seconds:.1f} s, {len(evals)} evaluations, loss of the saved PNG {loss:.4f}",
                  flush=True)
            if save:
                nu.save_image(r.image, save / f"{pair.replace(':', '_')}_w{w:g}.png")

    print("3. notebook 04, Question 4.9: from noise, the textbook settings", flush=True)
    content, style = bench.images(48 if q else 96)
    for w in args.weights:
        optimize.OUT_OF_RANGE_WEIGHT = w
        r = nu.stylize(content, style, ex, steps=6 if q else 90, init="noise", seed=0, pyramid=False,
                       precision="fp32", conv="direct")
        row = dict(weight=w, loss=r.loss["total"], on_bound=on_bound(r.image))
        out["noise"].append(row)
        print(f"  w={w:g}: loss of the returned image {row['loss']:.4f}, {100 * row['on_bound']:.1f}% of values on a bound",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
