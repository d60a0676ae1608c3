"""Regenerate the README gallery: default ``stylize`` on the sample pairs at 512 px.

Usage: python scripts/make_gallery.py [--size 512] [--steps N]
Writes docs/gallery/<content>__<style>.jpg (content | style | result) and prints one line per
pair with the time it took on this machine.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch
import torch.nn.functional as F

import nstutils as nu

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (
    ("tubingen_neckarfront", "van_gogh_starry_night"),
    ("grace_hopper_portrait", "leger_contrast_of_forms"),
    ("arches_national_park", "munch_the_scream"),
    ("petra_tomb_facade", "hokusai_great_wave"),
)


def strip(images: list[torch.Tensor], height: int) -> torch.Tensor:
    """Resize images to one height and put them side by side with a white gap."""
    out = []
    for img in images:
        w = round(img.shape[-1] * height / img.shape[-2])
        out += [F.interpolate(img, size=(height, w), mode="bilinear", antialias=True, align_corners=False),
                torch.ones(1, 3, height, 6)]
    return torch.cat(out[:-1], dim=3).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=nu.DEFAULTS.steps)
    args = parser.parse_args()
    extractor = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    out_dir = ROOT / "docs/gallery"
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for c, s in PAIRS:
        content = nu.load_image(ROOT / f"data/content/{c}.jpg", max_side=args.size)
        style = nu.load_image(ROOT / f"data/style/{s}.jpg", max_side=args.size)
        result = nu.stylize(content, style, extractor, steps=args.steps)
        nu.save_image(strip([content, style, result.image], args.size), out_dir / f"{c}__{s}.jpg")
        print(f"{c} x {s}: {result.status}, {args.steps} steps in {result.seconds:.0f}s, "
              f"loss {result.history[0].total:.3g} -> {result.history[-1].total:.3g}", flush=True)


if __name__ == "__main__":
    main()
