"""What a result keeps of the photo and of the painting, and a style weight chosen per pair.

Two cheap measures, run on any finished image:
- :func:`structure_kept`: how much of the photo's layout survives, as the correlation of the
  luminance edge strengths (Sobel) of photo and result at a coarse scale (1 = the same edges).
- :func:`style_kept`: how much of the painting arrived, as the share of the photo's style error
  that the result removed (1 = the painting's Gram matrices exactly, 0 = no closer than the photo).

:func:`auto_style_weight` searches, for the pair at hand, the largest style weight whose result
keeps ``structure_kept`` above a threshold; ``stylize(..., style_weight="auto")`` calls it with
probes that are the run's own first pyramid level (128 px, where a step is cheap), judged by
:func:`structure_forecast`, and keeps the chosen weight's first level as the run's. None of this is in Gatys et al.: they
fix one weight ratio. Taught in notebooks/05_experiments.ipynb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .features import VGGFeatures
from .losses import gram, relative_weights, style_loss
from .pyramid import resize

STRUCTURE_SIZE = 128  # structure_kept compares edges at this longer side: the main shapes, not the strokes
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 luminance weights of R, G, B
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def edges(img: Tensor, size: int = STRUCTURE_SIZE) -> Tensor:
    """Return the Sobel edge strength of the luminance, |grad Y|, at longer side ``size``.

    Y = 0.299 R + 0.587 G + 0.114 B; E = sqrt(S_x(Y)^2 + S_y(Y)^2) with the 3x3 Sobel kernels
    S_x, S_y = S_x^T (replicated borders). Args: img (1, 3, H, W) in [0, 1]. Returns (1, 1, h, w)
    with max(h, w) = size (antialiased downsampling first; never upsampled).
    """
    h, w = img.shape[-2:]
    factor = min(1.0, size / max(h, w))
    small = resize(img.float(), (max(3, round(h * factor)), max(3, round(w * factor))))
    y = (small * small.new_tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)  # (1, 1, h, w)
    kx = small.new_tensor(SOBEL_X).view(1, 1, 3, 3)
    k = torch.cat([kx, kx.transpose(-1, -2)])  # (2, 1, 3, 3): S_x and S_y
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), k)  # (1, 2, h, w)
    return g.pow(2).sum(dim=1, keepdim=True).sqrt()


def structure_kept(content: Tensor, result: Tensor, *, size: int = STRUCTURE_SIZE) -> float:
    """Return the Pearson correlation of the edge strengths of ``content`` and ``result``.

    r = sum_p (E_c(p) - mean E_c)(E_r(p) - mean E_r) / sqrt(sum_p (E_c - mean E_c)^2 sum_p (E_r - mean E_r)^2)
    with E = :func:`edges` at longer side ``size``. 1: the same edges where the photo had them
    (any brightness or contrast scaling of the result gives 1 too); about 0: edges unrelated to
    the photo's, or none at all (0 when E varies by less than 1e-6). Edge strength ignores
    polarity, so a sky turned from light to dark above a ridge still counts as the ridge kept.
    Args: content, result: (1, 3, H, W) in [0, 1], same size. Returns a float in [-1, 1].
    """
    if content.shape != result.shape:
        raise ValueError(f"content {tuple(content.shape)} and result {tuple(result.shape)} differ in shape")
    a, b = edges(content, size).flatten().double(), edges(result, size).flatten().double()
    a, b = a - a.mean(), b - b.mean()
    if min(float(a.std()), float(b.std())) < 1e-6:  # no edges (up to rounding): nothing kept
        return 0.0
    return float((a * b).sum() / (a.norm() * b.norm()))


def style_error(img: Tensor, style: Tensor, extractor: VGGFeatures,
                layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")) -> float:
    """Return the unweighted style loss of ``img`` against ``style``: what stylize weighs by beta.

    L = sum_l w_l mean((G_l(img) - A_l)^2), w_l = 1 / (|layers| mean(A_l^2)) (relative errors,
    :func:`nstutils.relative_weights`). It does not scale with the style weight, so results made
    with different weights compare. Args: img (1, 3, H, W), style (1, 3, H', W'). Returns a float.
    """
    with torch.no_grad():
        grams = {n: gram(f) for n, f in extractor(style, layers=layers).items()}
        return float(style_loss(extractor(img, layers=layers), grams, relative_weights(grams)))


def style_kept(content: Tensor, result: Tensor, style: Tensor, extractor: VGGFeatures,
               layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")) -> float:
    """Return the share of the photo's style error that the result removed.

    s = 1 - L_style(result) / L_style(content), with L_style = :func:`style_error`: 0 when the
    result is as far from the painting's Gram matrices as the photo was, 1 when it matches them.
    Args: content, result: (1, 3, H, W); style: (1, 3, H', W'). Returns a float (<= 1).
    """
    base = style_error(content, style, extractor, layers)
    return 1.0 - style_error(result, style, extractor, layers) / base if base > 0 else 1.0


# Chosen from the contact sheet (docs/contact_sheet_before.jpg, notebooks/05): see README.
STRUCTURE_THRESHOLD = 0.6
# A try's forecast (structure_forecast) against the final S of the same run, over the 32 pairs of
# the contact sheet at 256 px: final - forecast was -0.007 to +0.082 (sd 0.024); S of the first
# level's image itself fell short by +0.058 to +0.266 (sd 0.054) and would have asked for far
# less style than needed (scripts/structure_by_level.py, docs/structure_by_level.json). So a try
# must forecast threshold + margin; a run of one level is its own forecast. With three levels
# (512 px, all 32 pairs: docs/contact_sheet_after_512.json) the finer two mostly repair more,
# +0.004 to +0.142 (mean 0.063), but not always: a margin of -0.02 there left Arches x Picabia
# at S 0.578 from a forecast of 0.586 (docs/forecast_margin_trial_512.json), and Grace Hopper x
# The Scream would end at 0.570 from 0.579 (docs/auto_tradeoff_512.json). So one margin serves
# every number of levels.
FORECAST_MARGIN = 0.01
AUTO_RANGE = (1.0, 30.0)  # the search's style weights: 30 was the fixed default before "auto"
AUTO_PROBES = 4  # first levels run at most, one per weight tried
AUTO_CHECK_EVERY = 8  # steps between forecasts in a try (a resize and a Sobel: no cost to speak of)


def structure_forecast(content: Tensor, first: Tensor) -> float:
    """Forecast the final ``structure_kept`` of a pyramid run from its first level's image.

    F = S(C, up(x_0) + C - up(C_0)): the first level's image x_0 upsampled to the content's size,
    with the content's own detail that the first level could not hold added back (C_0: the
    content at x_0's size; up: bicubic), which is where the finer levels start from (see
    ``optimize._upsample``); clamped to [0, 1]. With one level (x_0 at full size) F = S(C, x_0).
    Args: content (1, 3, H, W); first (1, 3, h, w), h <= H. Returns a float in [-1, 1].
    """
    size = tuple(content.shape[-2:])
    start = resize(first, size) + content - resize(resize(content, tuple(first.shape[-2:])), size)
    return structure_kept(content, start.clamp(0, 1))


def probe_threshold(levels: int, threshold: float = STRUCTURE_THRESHOLD) -> float:
    """The forecast a try (the first of ``levels`` pyramid levels) must reach for the result to keep ``threshold``."""
    return threshold if levels == 1 else threshold + FORECAST_MARGIN


@dataclass(frozen=True)
class AutoWeight:
    """What :func:`auto_style_weight` found: the weight, and every (weight, structure) it probed."""

    style_weight: float
    probes: tuple[tuple[float, float], ...]
    threshold: float


def auto_style_weight(probe: Callable[[float], float], *, threshold: float = STRUCTURE_THRESHOLD,
                      weight_range=AUTO_RANGE, probes: int = AUTO_PROBES) -> AutoWeight:
    """Return the largest style weight in ``weight_range`` whose probe keeps the structure.

    Finds beta* = max {beta in [lo, hi] : S(beta) >= threshold}, where S(beta) = ``probe(beta)``
    (``stylize(style_weight="auto")`` runs its first pyramid level with beta and measures
    :func:`structure_kept` there), assuming S falls as beta grows (more style weight, fewer of
    the photo's edges). Probes hi first and keeps it if it passes; else bisects log(beta)
    between lo (taken to pass, never probed) and hi with the probes left, and returns the
    largest weight that passed: within a factor (hi / lo)^(1 / 2^(probes - 1)) below beta*
    (1.53 for the defaults), or lo when none passed. More style weight keeps more of the
    painting, so this keeps as much of it as the threshold allows. (Interpolating S in
    log(beta) instead stalled on one side: S falls steeply at small weights and slowly at large
    ones.) Returns an AutoWeight with every (beta, S) probed, in order.
    """
    lo, hi = float(weight_range[0]), float(weight_range[1])
    if not 0 < lo <= hi or probes < 1:
        raise ValueError(f"weight_range must be 0 < lo <= hi and probes >= 1, got {weight_range}, {probes}")
    seen: dict[float, float] = {}
    good, bad = lo, hi
    for k in range(probes):
        beta = hi if k == 0 else float(f"{math.sqrt(good * bad):.3g}")  # 3 digits: readable, exact on rerun
        seen[beta] = float(probe(beta))
        if seen[beta] >= threshold:
            good = beta
            if k == 0:
                break
        else:
            bad = beta
    return AutoWeight(good, tuple(seen.items()), threshold)
