"""Coarse-to-fine optimization: the image sizes of a pyramid and how the steps are shared.

Gatys et al. (2017, "Controlling Perceptual Factors") stylize large images coarse-to-fine: solve
at a low resolution, upsample, and refine. Most of the work then happens where a step is cheap
(a step costs time proportional to the number of pixels), and the coarse level fixes the large
structures that a full-resolution run from the content photo would take many steps to move.
Taught in notebooks/07_beyond_the_textbook.ipynb.
"""

from __future__ import annotations

import torch
from torch import Tensor

PYRAMID_MIN_SIDE = 128  # the coarsest level's longer side; below this VGG's deep layers see a few cells
PYRAMID_FACTOR = 2  # each level doubles the sides of the one before


def _coarser(size: tuple[int, int]) -> tuple[int, int]:
    """The (H, W) of the level below ``size``: its sides divided by PYRAMID_FACTOR, at least 1 px."""
    return max(1, round(size[0] / PYRAMID_FACTOR)), max(1, round(size[1] / PYRAMID_FACTOR))


def pyramid_sizes(size: tuple[int, int], min_side: int = PYRAMID_MIN_SIDE) -> list[tuple[int, int]]:
    """Return the (H, W) of each level, coarsest first; the last is ``size`` itself.

    Each level halves the sides of the next, as long as the longer side stays >= ``min_side``.
    A 512x384 image gives [(128, 96), (256, 192), (512, 384)]; one with a longer side below
    2 * min_side gives a single level (no pyramid).
    """
    h, w = int(size[0]), int(size[1])
    sizes = [(h, w)]
    while max(sizes[0]) // PYRAMID_FACTOR >= min_side:
        sizes.insert(0, _coarser(sizes[0]))
    return sizes


def split_steps(steps: int, levels: int) -> list[int]:
    """Share ``steps`` optimizer updates among ``levels`` levels, coarsest first.

    The finest level gets 1 / (1 + 2 + ... + levels) of the steps (24 of 144 on three levels),
    every level between it and the coarsest as many, and the coarsest the rest: 4:1:1 on three
    levels (144 -> [96, 24, 24]), 2:1 on two (144 -> [96, 48]), 7:1:1:1 on four. Every level
    gets at least one step when steps >= levels, and the shares add up to ``steps`` exactly.

    Why: a step costs about 4x more at each finer level, and the final loss depends most on the
    finest level's steps, then on the coarsest's (which fix the large shapes), and least on the
    levels between. Measured at 512 px with the losses of the clamped image (optimize.as_saved),
    the loss of the saved PNG on four photo/painting pairs (README; ``benchmarks/levels.py --pair``):
    96, 24, 24 against 72, 48, 24 (3:2:1, the split before) ended -0.6%, +3.1%, +4.3% and -0.5%
    apart, in about 9% less time (24 evaluations of 0.42 s at 256 px for 24 of 0.15 s at 128 px);
    48, 24, 24 ended +12% on one pair (Petra x The Scream, whose large swirls need the coarse
    steps); 72, 48, 18 ended +11% on Tübingen x The Starry Night. Runs that differ by a few
    steps end up to 5% apart, so only differences larger than that mean much.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    total = levels * (levels + 1) // 2  # the finest level's share is 1 / total, as with levels:...:2:1
    shares = [total - (levels - 1)] + [1] * (levels - 1)
    out = [int(steps * s // total) for s in shares]
    out[0] += steps - sum(out)  # the remainder goes to the cheapest level
    for i in range(levels - 1, 0, -1):  # every level gets a step, taken from the coarsest
        if out[i] == 0 and out[0] > 1:
            out[i], out[0] = 1, out[0] - 1
    return out


def add_start_level(sizes: list[tuple[int, int]], level_steps: list[int]) -> tuple[list, list[int]]:
    """Put one more level before a pyramid's coarsest: half its sides, taking half its steps.

    [(96, 128), (192, 256), (384, 512)] with [96, 24, 24] becomes [(48, 64), (96, 128), (192, 256),
    (384, 512)] with [48, 48, 24, 24]; the finer levels keep their steps. A single level (no
    pyramid), or a coarsest level of fewer than 2 steps, is returned as it is.

    Why: the coarsest level's steps place the large shapes, and at half the sides a step costs
    less than half (at 48 x 64 px 0.05 s, at 96 x 128 px 0.13 s, on a 2-core AVX2 CPU: small
    images pay fixed costs in every layer, so the 128 px level cost about 1.5x its share of the
    pixels). Measured at 512 px on three photo/painting pairs (README; ``benchmarks/levels.py
    --start-level no yes --pair ...``): the coarse levels took 8.8-10.2 s instead of 12.5-18.7 s,
    about 8% of the run, and the loss of the saved image moved by +1.3%, -0.3% and -0.4%. The
    level is added only to pyramids, whose coarsest level has a longer side of 128 px or more, so
    it is never below 64 px, where VGG's relu5_1 sees a few cells.
    """
    if len(sizes) < 2 or level_steps[0] < 2:
        return list(sizes), list(level_steps)
    first = level_steps[0]
    return [_coarser(sizes[0]), *sizes], [first - first // 2, first // 2, *level_steps[1:]]


def resize(img: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize (B, C, H, W) to (B, C, *size): antialiased bilinear down, bicubic up, clamped to [0, 1]."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    down = size[0] * size[1] < img.shape[-2] * img.shape[-1]
    out = torch.nn.functional.interpolate(img, size=size, mode="bilinear" if down else "bicubic",
                                          align_corners=False, antialias=down)
    return out.clamp(0, 1)


def rescale(img: Tensor, factor: float, min_side: int = 1) -> Tensor:
    """Resize (B, C, H, W) by ``factor`` (aspect kept), but never below ``min_side`` on its shorter side."""
    h, w = img.shape[-2:]
    factor = max(factor, min_side / min(h, w))
    return resize(img, (max(1, round(h * factor)), max(1, round(w * factor))))
