"""The style-transfer objective: targets computed once, and the weighted loss of an image.

L(x) = alpha * L_content(x) + beta * L_style(x) + gamma * L_tv(x), each term normalized as
described in :mod:`nstutils.losses` and :func:`nstutils.losses.relative_weights`.
Taught in notebooks/03_losses.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import Tensor

from .features import VGGFeatures
from .layers import check_layers
from .losses import content_loss, gram, relative_weights, style_loss, tv_loss


@dataclass(frozen=True)
class Targets:
    """What the image is pulled towards, computed once from the content and style images.

    content: {layer: (1, C, H, W)} content features P_l; grams: {layer: (1, C, C)} style Grams
    A_l; content_weights / style_weights: absolute per-layer weights (relative weights divided
    by each target's mean square, see ``relative_weights``).
    """

    content: dict[str, Tensor]
    grams: dict[str, Tensor]
    content_weights: dict[str, float]
    style_weights: dict[str, float]


def make_targets(extractor: VGGFeatures, content: Tensor, style: Tensor, *,
                 content_layers=("relu4_2",), style_layers=("relu1_1",),
                 style_layer_weights: Mapping[str, float] | None = None) -> Targets:
    """Compute content features and style Gram matrices once, without gradients.

    Args: content (1, 3, H, W) and style (1, 3, H', W') images in [0, 1]; any sizes.
    """
    content_layers, style_layers = check_layers(content_layers), check_layers(style_layers)
    with torch.no_grad():
        cf = extractor(content, layers=content_layers)
        sf = extractor(style, layers=style_layers)
        targets = {n: cf[n].detach() for n in content_layers}
        grams = {n: gram(sf[n]).detach() for n in style_layers}
    return Targets(targets, grams, relative_weights(targets), relative_weights(grams, style_layer_weights))


def loss_terms(img: Tensor, extractor: VGGFeatures, targets: Targets, *, content_weight: float,
               style_weight: float, tv_weight: float, tv_kind: str = "squared") -> dict[str, Tensor]:
    """Return the weighted terms {"content", "style", "tv", "total"} (scalars) for ``img`` (1, 3, H, W)."""
    layers = tuple(dict.fromkeys((*targets.content, *targets.grams)))
    feats = extractor(img, layers=layers)
    c = sum(w * content_loss(feats[n], targets.content[n]) for n, w in targets.content_weights.items())
    s = style_loss(feats, targets.grams, targets.style_weights)
    t = tv_loss(img, tv_kind)
    terms = {"content": content_weight * c, "style": style_weight * s, "tv": tv_weight * t}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    return terms
