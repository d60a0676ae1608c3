"""What a result keeps of the photo and of the painting, and a style weight chosen per pair.

Two cheap measures, run on any finished image:
- :func:`structure_kept`: how much of the photo's layout survives, as the correlation of the
  luminance edge strengths (Sobel) of photo and result at a coarse scale (1 = the same edges).
- :func:`style_kept`: how much of the painting arrived, as the share of the photo's style error
  that the result removed (1 = the painting's Gram matrices exactly, 0 = no closer than the photo).

:func:`auto_style_weight` searches, for the pair at hand, the largest style weight whose result
keeps ``structure_kept`` above a threshold, probing with short runs at the pyramid's coarsest
level. ``stylize(..., style_weight="auto")`` calls it. None of this is in Gatys et al.: they
fix one weight ratio. Taught in notebooks/05_experiments.ipynb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .features import VGGFeatures, min_side
from .losses import gram, relative_weights, style_loss
from .pyramid import PYRAMID_MIN_SIDE, rescale, resize

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
AUTO_RANGE = (1.0, 30.0)  # the search's style weights: 30 was the fixed default before "auto"
AUTO_PROBES = 4  # short probe runs, each at the pyramid's coarsest level
AUTO_PROBE_STEPS = 30  # L-BFGS steps of each probe


@dataclass(frozen=True)
class AutoWeight:
    """What :func:`auto_style_weight` found: the weight, and every (weight, structure) it probed."""

    style_weight: float
    probes: tuple[tuple[float, float], ...]
    threshold: float


def probe(content: Tensor, style, extractor: VGGFeatures, style_weight: float, *,
          steps: int = AUTO_PROBE_STEPS, **stylize_kwargs) -> float:
    """Return ``structure_kept`` of a short run at the pyramid's coarsest level (128 px).

    The content is resized to the first size of :func:`nstutils.pyramid.pyramid_sizes` and the
    style(s) by the same factor, as ``stylize`` does for its first level; the run starts from
    the content with L-BFGS. ``stylize_kwargs`` (weights, layers, style_blend, masks, ...) go to
    :func:`nstutils.stylize`. Args: content (1, 3, H, W); style: a tensor or a list of them.
    """
    from .optimize import stylize  # stylize calls auto_style_weight for style_weight="auto"
    from .pyramid import pyramid_sizes

    size = pyramid_sizes(tuple(content.shape[-2:]))[0]
    small = resize(content, size)
    if stylize_kwargs.get("style_scale") is None:  # the styles shrink with the content, as in stylize
        layers = stylize_kwargs.get("style_layers", ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
        factor, floor = size[0] / content.shape[-2], min_side(layers)
        style = rescale(style, factor, floor) if isinstance(style, Tensor) else [rescale(s, factor, floor) for s in style]
    kwargs = {**stylize_kwargs, "optimizer": "lbfgs", "lr": None, "init": "content", "pyramid": False}
    result = stylize(small, style, extractor, steps=steps, style_weight=style_weight, **kwargs)
    return structure_kept(small, result.image)


def auto_style_weight(content: Tensor, style, extractor: VGGFeatures, *,
                      threshold: float = STRUCTURE_THRESHOLD, weight_range=AUTO_RANGE,
                      probes: int = AUTO_PROBES, steps: int = AUTO_PROBE_STEPS,
                      **stylize_kwargs) -> AutoWeight:
    """Return the largest style weight in ``weight_range`` whose probe keeps the structure.

    Finds beta* = max {beta in [lo, hi] : S(beta) >= threshold}, where S(beta) is the
    :func:`structure_kept` of a probe run (:func:`probe`), assuming S falls as beta grows (more
    style weight, fewer of the photo's edges). Probes hi first and keeps it if it passes; else
    bisects log(beta) between lo (taken to pass, never probed) and hi with the probes left, and
    returns the largest weight that passed: within a factor (hi / lo)^(1 / 2^(probes - 1)) below
    beta* (1.53 for the defaults), or lo when none passed. More style weight keeps more of the
    painting, so this keeps as much of it as the threshold allows. (Interpolating S in log(beta)
    instead stalled on one side: S falls steeply at small weights and slowly at large ones.)
    Args: as :func:`probe`; probes >= 1 runs in all. Returns an AutoWeight.
    """
    lo, hi = float(weight_range[0]), float(weight_range[1])
    if not 0 < lo <= hi or probes < 1:
        raise ValueError(f"weight_range must be 0 < lo <= hi and probes >= 1, got {weight_range}, {probes}")
    seen: dict[float, float] = {}
    good, bad = lo, hi
    for k in range(probes):
        beta = hi if k == 0 else float(f"{math.sqrt(good * bad):.3g}")  # 3 digits: readable, exact on rerun
        seen[beta] = probe(content, style, extractor, beta, steps=steps, **stylize_kwargs)
        if seen[beta] >= threshold:
            good = beta
            if k == 0:
                break
        else:
            bad = beta
    return AutoWeight(good, tuple(seen.items()), threshold)
