"""The style-transfer objective: targets computed once, and the weighted loss of an image.

L(x) = alpha * L_content(x) + beta * L_style(x) + gamma * L_tv(x), with
L_content = sum_l w'_l mean((F_l - P_l)^2),  w'_l = w_l / (sum_k w_k mean(P_l^2)),
L_style = sum_l v'_l mean((G_l - A_l)^2),    v'_l = v_l / (sum_k v_k mean(A_l^2)),
L_tv = the mean squared (or absolute, or power) neighbour difference of x:
every layer's term is a relative error (:func:`nstutils.losses.relative_weights`; a departure
from Gatys et al., who sum raw errors of a normalized VGG19), so a plain
``content_loss(F, P)`` of 7e5 can be a content term of about 1.
Several style images can be mixed (``style_blend``), resized relative to the content
(``style_scale``) or given each its own region of the image (``content_masks``, guided Gram
matrices of Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer").
Taught in notebooks/03_losses.ipynb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .features import VGGFeatures, min_side
from .layers import check_layers
from .losses import (content_loss, gram, guided_gram, guided_relative_weights, guided_style_loss,
                     relative_weights, style_loss, tv_loss)
from .masks import layer_masks, to_masks
from .validate import check_image


@dataclass(frozen=True)
class Targets:
    """What the image is pulled towards, computed once from the content and style images.

    content: {layer: (1, C, H, W)} content features P_l; grams: {layer: (1, C, C)} style Grams
    A_l; content_weights / style_weights: absolute per-layer weights (relative weights divided
    by each target's mean square, see ``relative_weights``).
    With ``content_masks`` (spatial control): masks {layer: (K, 1, H_l, W_l)} the content masks
    at each style layer's feature size, grams {layer: (K, C, C)} one guided Gram per region,
    region_weights {layer: (w_l^1, ..., w_l^K)} the absolute weights that the loss uses (see
    ``guided_relative_weights``) and style_weights {layer: sum_k w_l^k}. Both are None otherwise.
    """

    content: dict[str, Tensor]
    grams: dict[str, Tensor]
    content_weights: dict[str, float]
    style_weights: dict[str, float]
    masks: dict[str, Tensor] | None = None
    region_weights: dict[str, tuple[float, ...]] | None = None


def scale_style(style: Tensor, content: Tensor, scale: float) -> Tensor:
    """Resize ``style`` so that its longer side is ``scale`` times the content's longer side.

    The aspect ratio is kept; resampling is antialiased bilinear. VGG's filters have a fixed
    size in pixels, so the size of the style's brush strokes in the result follows the style
    image's pixel size: scale=0.5 gives finer strokes, 2 bigger ones (Gatys et al. 2017, scale
    control). Args: style (1, 3, H', W'), content (1, 3, H, W). Returns (1, 3, h, w) in [0, 1].
    """
    try:
        ok = math.isfinite(float(scale)) and float(scale) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"style_scale must be a number > 0 (or None), got {scale!r}")
    scale = float(scale)
    h, w = style.shape[-2:]
    factor = scale * max(content.shape[-2:]) / max(h, w)
    size = (max(1, round(h * factor)), max(1, round(w * factor)))
    if size == (h, w):
        return style
    return F.interpolate(style, size=size, mode="bilinear", align_corners=False,
                         antialias=True).clamp(0, 1)


def _style_list(style) -> list[Tensor]:
    styles = [style] if isinstance(style, Tensor) else list(style)
    if not styles:
        raise ValueError("no style image given; pass a (1, 3, H, W) tensor or a list of them")
    for k, s in enumerate(styles):
        if not isinstance(s, Tensor) or s.dim() != 4 or s.shape[:2] != (1, 3):
            shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"style {k} must have shape (1, 3, H, W), got {shape}")
    return styles


def _blend_weights(style_blend, k: int) -> list[float]:
    """Return K blend weights b_k >= 0 summing to 1 (default equal)."""
    if style_blend is None:
        return [1.0 / k] * k
    b = [float(x) for x in style_blend]
    if len(b) != k:
        raise ValueError(f"style_blend has {len(b)} weights but there are {k} style images")
    if any(not math.isfinite(x) or x < 0 for x in b) or sum(b) <= 0:
        raise ValueError(f"style_blend weights must be >= 0 with a positive sum, got {b}")
    return [x / sum(b) for x in b]


def _masks_for(masks, size, device, what: str) -> Tensor:
    """Return masks as (K, 1, H, W) at ``size`` on ``device``, each checked to be non-empty."""
    m = to_masks(masks, size, what=what).to(device)
    empty = [k for k in range(m.shape[0]) if not bool(m[k].amax() > 0)]
    if empty:
        raise ValueError(f"{what}[{empty[0]}] is all zero: that region would have no style "
                         "statistics; give it some area or leave it out (with its style image)")
    return m


def _style_masks(style_masks, styles: list[Tensor]) -> list[Tensor | None]:
    """Return one (1, 1, H'_k, W'_k) mask (or None: the whole image) per style image."""
    if style_masks is None:
        return [None] * len(styles)
    if isinstance(style_masks, Tensor):
        items = list(style_masks.split(1)) if style_masks.dim() == 4 else [style_masks]
    else:
        items = list(style_masks)
    if len(items) != len(styles):
        raise ValueError(f"{len(items)} style_masks but {len(styles)} style images; give one per "
                         "style image (None for the whole image)")
    out = [None if m is None else _masks_for(m, s.shape[-2:], s.device, f"style_masks[{k}]")
           for k, (m, s) in enumerate(zip(items, styles))]
    several = [k for k, m in enumerate(out) if m is not None and m.shape[0] != 1]
    if several:
        raise ValueError(f"style_masks[{several[0]}] holds {out[several[0]].shape[0]} masks; "
                         "give one mask per style image")
    return out


def _style_grams(extractor: VGGFeatures, style: Tensor, layers, mask: Tensor | None) -> dict[str, Tensor]:
    """{layer: (1, C, C)}: the Gram of the whole style image, or of the part inside ``mask``."""
    feats = extractor(style, layers=layers)
    if mask is None:
        return {n: gram(feats[n]).detach() for n in layers}
    masks = layer_masks(mask, {n: f.shape[-2:] for n, f in feats.items()})
    return {n: guided_gram(feats[n], masks[n]).detach() for n in layers}


def make_targets(extractor: VGGFeatures, content: Tensor, style: Tensor | Sequence[Tensor], *,
                 content_layers=("relu4_2",), style_layers=("relu1_1",),
                 style_layer_weights: Mapping[str, float] | None = None,
                 style_blend: Sequence[float] | None = None, style_scale: float | None = None,
                 content_masks=None, style_masks=None) -> Targets:
    """Compute content features and style Gram matrices once, without gradients.

    Args:
        content: (1, 3, H, W) in [0, 1]. style: a (1, 3, H', W') image in [0, 1], or a list of
            K such images (any sizes).
        style_blend: K weights b_k >= 0 (normalized to sum 1; default equal) that mix the styles
            over the whole image: A_l = sum_k b_k A_l^k. Only without content_masks.
        style_scale: None uses each style image as given; s > 0 first resizes each so that its
            longer side is s times the content's (:func:`scale_style`): stroke size follows the
            style's pixel size, so s=0.5 gives finer strokes, s=2 bigger ones.
        content_masks: K masks for the content, (K, 1, H, W) or a list of (H, W) / (1, 1, H, W)
            in [0, 1], any size (resized to H x W): region k gets style k (guided Gram
            matrices, Gatys et al. 2017). K must equal the number of style images. With K=1
            the style applies inside the mask only; outside it there is no style term.
        style_masks: K masks, one per style image (None entries: the whole image), saying which
            part of style k supplies its statistics; default the whole images. Also usable
            without content_masks.
    Returns: Targets; with content_masks, grams are (K, C, C) and ``masks`` is set.
    """
    content_layers, style_layers = check_layers(content_layers), check_layers(style_layers)
    content = check_image(content, "content")
    styles = [check_image(s, f"style {k}") for k, s in enumerate(_style_list(style))]
    if style_scale is not None:
        styles = [scale_style(s, content, style_scale) for s in styles]
        small = [k for k, s in enumerate(styles) if min(s.shape[-2:]) < min_side(style_layers)]
        if small:
            s = styles[small[0]]
            raise ValueError(f"style {small[0]} is {s.shape[-2]}x{s.shape[-1]} after style_scale="
                             f"{style_scale}, too small for {', '.join(style_layers)} (a side of at "
                             f"least {min_side(style_layers)} px); use a larger style_scale")
    with torch.no_grad():
        smasks = _style_masks(style_masks, styles)
        if content_masks is not None:
            return _masked_targets(extractor, content, styles, smasks, content_masks, content_layers,
                                   style_layers, style_layer_weights, style_blend)
        cf = extractor(content, layers=content_layers)
        targets = {n: cf[n].detach() for n in content_layers}
        per_style = [_style_grams(extractor, s, style_layers, m) for s, m in zip(styles, smasks)]
        blend = _blend_weights(style_blend, len(styles))
        # One style: its Grams unchanged (bit-identical to a plain single-style run).
        grams = per_style[0] if len(styles) == 1 else {
            n: sum(b * g[n] for b, g in zip(blend, per_style)) for n in style_layers}
    return Targets(targets, grams, relative_weights(targets), relative_weights(grams, style_layer_weights))


def _masked_targets(extractor, content, styles, smasks, content_masks, content_layers, style_layers,
                    style_layer_weights, style_blend) -> Targets:
    """Targets for spatial control: region k of the content gets the guided Grams of style k."""
    if style_blend is not None:
        raise ValueError("style_blend mixes styles over the whole image; with content_masks each "
                         "region takes its own style, so leave style_blend None")
    masks = _masks_for(content_masks, content.shape[-2:], content.device, "content_masks")
    if masks.shape[0] != len(styles):
        raise ValueError(f"{masks.shape[0]} content_masks but {len(styles)} style images; "
                         "give one mask per style image (region k gets style k)")
    # The content features at the style layers too: their sizes decide the mask sizes.
    cf = extractor(content, layers=tuple(dict.fromkeys((*content_layers, *style_layers))))
    targets = {n: cf[n].detach() for n in content_layers}
    lm = layer_masks(masks, {n: cf[n].shape[-2:] for n in style_layers})
    per_style = [_style_grams(extractor, s, style_layers, m) for s, m in zip(styles, smasks)]
    grams = {n: torch.cat([g[n] for g in per_style]) for n in style_layers}  # (K, C, C)
    region = guided_relative_weights(grams, lm, style_layer_weights)
    return Targets(targets, grams, relative_weights(targets), {n: sum(w) for n, w in region.items()},
                   masks=lm, region_weights=region)


def loss_terms(img: Tensor, extractor: VGGFeatures, targets: Targets, *, content_weight: float,
               style_weight: float, tv_weight: float, tv_kind: str = "squared") -> dict[str, Tensor]:
    """Return the weighted terms {"content", "style", "tv", "total"} (scalars) for ``img`` (1, 3, H, W).

    content = alpha * sum_l w'_l mean((F_l - P_l)^2) with w'_l = targets.content_weights[l]
    (= w_l / (sum_k w_k mean(P_l^2))); style = beta * sum_l v'_l mean((G_l - A_l)^2) with
    v'_l = targets.style_weights[l]; tv = gamma * tv_loss(img, tv_kind); total = their sum.

    With masked targets (``targets.masks`` set) the style term is the guided style loss of
    :func:`nstutils.losses.guided_style_loss`, and ``img`` must have the content's size.
    """
    layers = tuple(dict.fromkeys((*targets.content, *targets.grams)))
    feats = extractor(img, layers=layers)
    c = sum(w * content_loss(feats[n], targets.content[n]) for n, w in targets.content_weights.items())
    if targets.masks is None:
        s = style_loss(feats, targets.grams, targets.style_weights)
    else:
        s = guided_style_loss(feats, targets.grams, targets.masks, targets.region_weights)
    t = tv_loss(img, tv_kind)
    terms = {"content": content_weight * c, "style": style_weight * s, "tv": tv_weight * t}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    return terms
