"""The losses of neural style transfer, as pure functions of tensors.

Normalization (chosen so that a weight means the same at 128 px and at 1024 px): every term is
a *mean*, not a sum. The Gram matrix is divided by the number of positions H*W, the content and
style losses are mean squared errors, and the TV loss is a mean over pixels. Gatys et al. (2016)
write the style term of layer l as E_l = 1/(4 N_l^2 M_l^2) sum (G - A)^2 with unnormalized G;
with our G = G_gatys / M_l that is exactly E_l = mean((G - A)^2) / 4, so our style term is 4 E_l.
Their content loss is a sum, 1/2 sum (F - P)^2; ours is its mean (a departure, for
resolution-independent weights). Taught in notebooks/02_gram_matrices.ipynb and 03_losses.ipynb.
Guided Gram matrices (one style per image region, Gatys et al. 2017) follow the same rule: a
region's Gram is an average over that region (:func:`guided_gram`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

TV_KINDS = ("squared", "absolute", "power")


def _wide_dtype(t: Tensor) -> torch.dtype:
    """float32 for a narrower ``t`` (bfloat16), else ``t``'s own dtype (float32, float64)."""
    return torch.promote_types(t.dtype, torch.float32)


def _wide(t: Tensor) -> Tensor:
    """``t`` in :func:`_wide_dtype` (a copy only when ``t`` is narrower than float32)."""
    return t.to(_wide_dtype(t))


def gram(feats: Tensor) -> Tensor:
    """Channel Gram matrices, G[b,i,j] = sum_k F[b,i,k] F[b,j,k] / (H*W).

    Args: feats: (B, C, H, W) feature maps, float32 or bfloat16, in either memory format.
    Returns: (B, C, C), float32 (or float64 for float64 features). Dividing by H*W makes G an
    average over positions, independent of image size.
    """
    b, c, h, w = feats.shape
    return _FFt.apply(feats) / (h * w)  # (B, C, C)


def _channels_last(t: Tensor) -> bool:
    """True when ``t`` (B, C, H, W) is stored channels-last (as ``precision="bf16"`` makes it)."""
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def _flat(feats: Tensor) -> Tensor:
    """``feats`` (B, C, H, W) as F (B, C, HW), a view in either memory format: rows of
    channels for contiguous features, F = M^T of the (B, HW, C) matrix M for channels-last."""
    b, c, h, w = feats.shape
    if _channels_last(feats):
        return feats.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)
    return feats.reshape(b, c, h * w)


class _FFt(torch.autograd.Function):
    """F F^T in float32 for F = feats flattened to (B, C, HW), with the backward pass that uses
    its symmetry: dL/dF = (dG + dG^T) F.

    Autograd would treat F and F^T as two inputs and compute two products plus their sum;
    one product instead makes a Gram's backward pass about 2x cheaper. Bfloat16 features
    (``precision="bf16"``) are multiplied as they are, accumulated in float32, and the result
    is rounded to bfloat16 (relative error about 0.1%) before it is returned as float32: about
    2.5x faster than a float32 product on CPUs with AVX512-BF16, and at 512 px it cut a
    default run's time by 14% for a 0.7% higher final loss (benchmarks/).
    Channels-last features are multiplied as the (B, HW, C) matrix M = F^T they are in memory,
    G = M^T M, and their gradient keeps that layout: a product with a strided operand would
    copy it first (about 8x slower for 64 channels at 512 px).
    """

    @staticmethod
    def forward(ctx, feats: Tensor) -> Tensor:
        ctx.save_for_backward(feats)
        f = _flat(feats)
        return _wide(torch.bmm(f, f.transpose(1, 2)))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (feats,) = ctx.saved_tensors
        f = _flat(feats)
        sym = (grad + grad.transpose(1, 2)).to(feats.dtype)
        if _channels_last(feats):
            df = torch.bmm(f.transpose(1, 2), sym).transpose(1, 2)  # (M sym)^T: channels-last
        else:
            df = torch.bmm(sym, f)
        return df.view(feats.shape)


def content_loss(feats: Tensor, target: Tensor) -> Tensor:
    """Mean squared feature difference, E = mean((F - P)^2) (Gatys: 1/2 sum; we average).

    This is the raw per-layer error. The objective (:func:`nstutils.objective.loss_terms`)
    weights it by :func:`relative_weights` of the targets, so the content term that
    ``stylize`` minimizes is L_content = sum_l w'_l mean((F_l - P_l)^2) with
    w'_l = w_l / (sum_k w_k mean(P_l^2)); for one layer, sum (F - P)^2 / sum P^2.
    Args: feats, target: (B, C, H, W) of the same shape. Returns a scalar.
    Taught in notebooks/03_losses.ipynb.
    """
    if feats.shape != target.shape:
        raise ValueError(f"content features {tuple(feats.shape)} and target {tuple(target.shape)} differ")
    return torch.mean((_wide(feats) - _wide(target)) ** 2)


def style_loss(feats: Mapping[str, Tensor], target_grams: Mapping[str, Tensor],
               layer_weights: Mapping[str, float] | None = None) -> Tensor:
    """Weighted sum over layers of mean squared Gram differences.

    L = sum_l w_l mean((G_l - A_l)^2), G_l = gram(F_l), A_l the target Gram (B or 1, C, C).
    ``layer_weights`` defaults to 1 / (number of layers) for each layer (Gatys et al.'s w_l).
    """
    layers = list(target_grams)
    weights = layer_weights if layer_weights is not None else {n: 1.0 / len(layers) for n in layers}
    missing = [n for n in layers if n not in feats]
    if missing:
        raise ValueError(f"no features for style layer {missing[0]!r}; got {', '.join(feats)}")
    total = feats[layers[0]].new_zeros((), dtype=_wide_dtype(feats[layers[0]]))
    for name in layers:
        w = float(weights.get(name, 0.0))
        if w:
            total = total + w * torch.mean((gram(feats[name]) - target_grams[name]) ** 2)
    return total


def tv_loss(img: Tensor, kind: str = "squared") -> Tensor:
    """Total variation of an image, a mean over neighbouring-pixel differences.

    A mean over pixels (not a sum) keeps a TV weight meaningful across resolutions: natural
    images have a roughly scale-invariant (1/f^2) power spectrum, so the typical difference
    between neighbouring pixels of the same scene barely changes from 128 px to 1024 px.

    With dx = x[..., :, 1:] - x[..., :, :-1] and dy = x[..., 1:, :] - x[..., :-1, :]:
    squared: mean(dx^2) + mean(dy^2); absolute: mean|dx| + mean|dy| (anisotropic TV);
    power: mean((dx^2 + dy^2)^1.25), the Keras example's variant (over the (H-1) x (W-1) grid).
    Args: img (B, 3, H, W). Returns a scalar; 0 for a constant image.
    """
    dx = img[..., :, 1:] - img[..., :, :-1]
    dy = img[..., 1:, :] - img[..., :-1, :]
    if kind == "squared":
        return dx.pow(2).mean() + dy.pow(2).mean()
    if kind == "absolute":
        return dx.abs().mean() + dy.abs().mean()
    if kind == "power":
        a, b = dx[..., :-1, :].pow(2), dy[..., :, :-1].pow(2)
        return (a + b).pow(1.25).mean()
    raise ValueError(f"unknown TV kind {kind!r}; valid: {', '.join(TV_KINDS)}")


def relative_weights(targets: Mapping[str, Tensor],
                     weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Turn relative per-layer weights into absolute ones: w_l' = w_l / (sum_k w_k * mean(T_l^2)).

    Dividing each layer's squared error by the mean square of its own target makes every term a
    *relative* error. Gatys et al. use fixed w_l = 1/5 on a *normalized* VGG19 (every filter's
    mean activation 1, :func:`nstutils.features.normalize_vgg`), which brings the layers' Gram
    magnitudes within a factor of a few. We keep the network as trained, where the raw Gram
    magnitudes span five orders (relu1_1 ~1e6, relu4_1 ~1e11) and relu4_1 alone would decide the
    style, and equalize the layers here instead: a departure from the paper, exact for each
    target rather than on average over calibration images, and the same for the Caffe and the
    torchvision weights. Used for the content targets too. ``weights`` defaults to equal weights.
    Taught in notebooks/02_gram_matrices.ipynb.
    """
    layers = list(targets)
    weights = dict(weights) if weights is not None else {n: 1.0 for n in layers}
    unknown = [n for n in weights if n not in targets]
    if unknown:
        raise ValueError(f"weight given for {unknown[0]!r}, which is not a target layer; "
                         f"layers: {', '.join(layers)}")
    total = sum(float(weights.get(n, 0.0)) for n in layers)
    if total <= 0:
        raise ValueError("layer weights must have a positive sum")
    scale = {n: float(targets[n].detach().pow(2).mean()) for n in layers}
    return {n: float(weights.get(n, 0.0)) / (total * max(scale[n], 1e-12)) for n in layers}


def guided_gram(feats: Tensor, masks: Tensor) -> Tensor:
    """Guided Gram matrices, one per region: the Gram of the features inside each mask.

    G^k[i,j] = sum_p T_k(p)^2 F[i,p] F[j,p] / sum_p T_k(p)^2, i.e. the Gram of F * T_k divided
    by the region's (soft) size, so that G^k is an average over region k as gram() is over the
    whole image; an all-ones mask gives exactly gram(feats), an all-zero mask a zero matrix.
    Gatys et al. (2017) write G^k = (F * T_k)(F * T_k)^T and leave the scale to the layer
    weights; their code divides each guide by the root of its mean square, the same as our
    normalization. Args: feats (1, C, H, W); masks (K, 1, H, W) in [0, 1] at the features' size.
    Returns: (K, C, C).
    """
    if feats.dim() != 4 or feats.shape[0] != 1:
        raise ValueError(f"feats must have shape (1, C, H, W), got {tuple(feats.shape)}")
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[-2:] != feats.shape[-2:]:
        raise ValueError(f"masks must have shape (K, 1, {feats.shape[-2]}, {feats.shape[-1]}) "
                         f"to match the features, got {tuple(masks.shape)}")
    k, c, h, w = masks.shape[0], *feats.shape[1:]
    f = (_wide(feats) * masks).reshape(k, c, h * w)  # (K, C, HW): the features seen through each mask
    size = masks.pow(2).sum(dim=(1, 2, 3))  # (K,)
    size = torch.where(size > 0, size, torch.ones_like(size))  # an empty region: 0 / 1, not NaN
    return torch.bmm(f, f.transpose(1, 2)) / size.view(k, 1, 1)  # (K, C, C)


def guided_style_loss(feats: Mapping[str, Tensor], target_grams: Mapping[str, Tensor],
                      masks: Mapping[str, Tensor],
                      layer_weights: Mapping[str, Sequence[float]] | None = None) -> Tensor:
    """Style loss with one style per region (Gatys et al. 2017, spatial control).

    L = sum_l sum_k w_l^k mean((G_l^k - A_l^k)^2), G_l^k = guided_gram(F_l, T_l)[k].
    Args: feats {layer: (1, C, H_l, W_l)}; target_grams {layer: (K, C, C)}; masks {layer:
    (K, 1, H_l, W_l)} (see :func:`nstutils.masks.layer_masks`); layer_weights {layer: K floats}
    (absolute, see :func:`guided_relative_weights`), default 1 / (number of layers) each.
    Returns a scalar.
    """
    layers = list(target_grams)
    missing = [n for n in layers if n not in feats or n not in masks]
    if missing:
        raise ValueError(f"no features or masks for style layer {missing[0]!r}; features: "
                         f"{', '.join(feats)}; masks: {', '.join(masks)}")
    total = feats[layers[0]].new_zeros((), dtype=_wide_dtype(feats[layers[0]]))
    for name in layers:
        k = target_grams[name].shape[0]
        w = ([1.0 / len(layers)] * k if layer_weights is None else [float(x) for x in layer_weights[name]])
        if len(w) != k:
            raise ValueError(f"{len(w)} weights for layer {name!r} but {k} regions")
        if any(w):
            err = (guided_gram(feats[name], masks[name]) - target_grams[name]).pow(2).mean(dim=(1, 2))  # (K,)
            total = total + (err * err.new_tensor(w)).sum()
    return total


def guided_relative_weights(targets: Mapping[str, Tensor], masks: Mapping[str, Tensor],
                            weights: Mapping[str, float] | None = None) -> dict[str, tuple[float, ...]]:
    """Per-region absolute weights: w_l^k = s_l^k * w_l / (sum_j w_j * mean((A_l^k)^2)).

    The second factor is :func:`relative_weights` applied to region k alone, so each region's
    loss is a relative error as in the unmasked case. s_l^k = mean_p T_k(p)^2 is the region's
    share of the image (its masks at layer l): a guided Gram averages over its region only, so a
    pixel's gradient grows as 1/s; weighting by s gives every pixel the same style pull as
    without masks, whatever the size of its region, and keeps style_weight's meaning. (Gatys et
    al.'s code weights regions equally, 1/K each; this is a departure.)
    Args: targets {layer: (K, C, C)}; masks {layer: (K, 1, H_l, W_l)}; weights: relative
    per-layer weights (default equal). Returns {layer: (w_l^1, ..., w_l^K)}.
    """
    layers = list(targets)
    k = targets[layers[0]].shape[0]
    per_region = [relative_weights({n: targets[n][r] for n in layers}, weights) for r in range(k)]
    return {n: tuple(per_region[r][n] * float(masks[n][r].pow(2).mean()) for r in range(k))
            for n in layers}
