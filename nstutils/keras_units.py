"""The Keras example's loss weights, converted to nstutils' units for one pair of images.

The Keras example (and the first document the course follows, which uses its code) writes its
loss on 0-255 BGR inputs, with sums and its own Gram normalization::

    L_K = a * sum((F - P)^2)                                      content, at block5_conv2 (relu5_2)
        + sum_l (b / L) * sum((F F^T - A A^T)^2) / (4 * 3^2 * (HW)^2)     style, L layers
        + c * sum((dx^2 + dy^2)^1.25)                             total variation, on 0-255 pixels

where H x W is the image, the content sum runs over the N M entries of P, and F F^T is a sum over
positions. nstutils' loss is ``alpha * E_content + beta * sum_l w'_l E_l + gamma * TV``
(:func:`nstutils.loss_terms`) with relative errors: each term is divided by the mean square of
its target, E_content = mean((F - P)^2) / mean(P^2), and our Gram is F F^T / (h w).
Term by term (notebook 02's Keras factor k_l = N_l^2 M_l^2 / (36 (HW)^2) turns our mean into
Keras's style sum, 255^2.5 3 (H-1)(W-1) our power TV into Keras's)::

    L_K = s * L_ours,   s = a N M mean(P^2),   alpha = 1,
    beta = sum_l (b / L) k_l mean(A_l^2) / s,   w_l proportional to (b / L) k_l mean(A_l^2),
    gamma = c 255^2.5 3 (H-1)(W-1) / s   with tv_kind="power".

So the same Keras numbers mean a different balance at every image size and for every pair: the
content term grows with the pixels and the style terms do not (notebook 04, section 4.1, and
notebook 05, section 2.1, where the conversion is checked against the literal Keras loss).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from .layers import layer_table
from .objective import Targets


class KerasWeights(NamedTuple):
    """``weights``: keyword arguments for :func:`nstutils.stylize` (content_weight, style_weight,
    tv_weight, style_layer_weights); ``scale``: s with L_Keras = s * L_ours (same image, same layers)."""

    weights: dict
    scale: float


def keras_factors(height: int, width: int, layers: Sequence[str]) -> dict[str, float]:
    """Keras's style term divided by ours (unit weights), per layer: N^2 M^2 / (36 (HW)^2).

    N channels and M = h w positions of the layer for an H x W input; 36 = 4 * 3^2 (Keras divides
    by 4 channels^2 size^2 with channels = 3 and size = H W).
    """
    return {r.name: r.channels**2 * (r.height * r.width) ** 2 / (36 * (height * width) ** 2)
            for r in layer_table(height, width) if r.name in layers}


def keras_weights(targets: Targets, size: tuple[int, int], *, content_weight: float, style_weight: float,
                  tv_weight: float = 0.0, content_layer: str = "relu5_2") -> KerasWeights:
    """Convert the Keras example's (a, b, c) for this pair at ``size`` = (H, W) to our weights.

    ``targets``: from :func:`nstutils.make_targets` at that size, with ``content_layer`` among its
    content layers and the style layers to convert (the Keras example's five, equal: b / 5 each).
    Returns alpha = 1, beta, gamma (for ``tv_kind="power"``) and the relative style-layer weights,
    and the scale s between the two losses (see the module docstring for the equations).
    """
    height, width = size
    target = targets.content[content_layer]
    scale = content_weight * target[0].numel() * float(target.pow(2).mean())     # a N M mean(P^2)
    layers = list(targets.grams)
    k = keras_factors(height, width, layers)
    per_layer = {n: style_weight / len(layers) * k[n] * float(targets.grams[n].pow(2).mean()) for n in layers}
    total = sum(per_layer.values())
    tv = tv_weight * 255**2.5 * 3 * (height - 1) * (width - 1)
    weights = dict(content_weight=1.0, style_weight=total / scale, tv_weight=tv / scale,
                   style_layer_weights={n: v / total for n, v in per_layer.items()})
    return KerasWeights(weights, scale)
