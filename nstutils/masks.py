"""Masks for spatial control: which region of the image gets which style (Gatys et al. 2017).

A mask T is a (1, 1, H, W) float32 tensor with values in [0, 1] (1 = inside the region); K
masks stack into (K, 1, H, W). Soft edges are fine and avoid a visible seam. The makers here
(:func:`threshold_mask`, :func:`split_mask`, :func:`load_mask`, :func:`regions`) cover what
a notebook needs; :func:`to_masks` accepts the forms a learner is likely to pass and
:func:`layer_masks` brings masks down to the size of each VGG feature map.
Used by :func:`nstutils.make_targets` (``content_masks``, ``style_masks``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .images import load_image

SIDES = ("left", "right", "top", "bottom")
# BT.601 luma weights, the same Y as nstutils.color.luminance (not imported: color imports optimize).
_LUMA = (0.299, 0.587, 0.114)


def _check_range(mask: Tensor, what: str = "mask") -> None:
    if not torch.is_floating_point(mask):
        raise ValueError(f"{what} must be a float tensor with values in [0, 1], got dtype {mask.dtype}")
    if mask.numel() and not (mask.min() >= 0 and mask.max() <= 1):  # also rejects NaN
        raise ValueError(f"{what} values must lie in [0, 1], got [{float(mask.min()):.4g}, "
                         f"{float(mask.max()):.4g}]")


def _one_mask(mask: Tensor, what: str) -> Tensor:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (1, 1, H, W)."""
    if not isinstance(mask, Tensor):
        raise ValueError(f"{what} must be a tensor, got {type(mask).__name__}")
    if mask.dim() not in (2, 3, 4) or mask.shape[:-2] not in ((), (1,), (1, 1)):
        raise ValueError(f"{what} must have shape (H, W), (1, H, W) or (1, 1, H, W), "
                         f"got {tuple(mask.shape)} (K masks: a (K, 1, H, W) tensor or a list)")
    return mask.reshape(1, 1, *mask.shape[-2:])


def _resize(masks: Tensor, size) -> Tensor:
    """Resize (K, 1, H, W) to ``size`` with antialiased bilinear weights (non-negative, summing
    to 1, so values stay in [0, 1]); returned unchanged when the size already fits."""
    size = tuple(int(s) for s in size)
    if tuple(masks.shape[-2:]) == size:
        return masks
    return F.interpolate(masks, size=size, mode="bilinear", align_corners=False,
                         antialias=True).clamp(0, 1)


def to_masks(masks, size=None, *, what: str = "masks") -> Tensor:
    """Return K masks as one (K, 1, H, W) float32 tensor, checked and resized to ``size``.

    Args: masks: a (K, 1, H, W) tensor, one mask (H, W) / (1, 1, H, W), or a sequence of K
        masks of shape (H, W), (1, H, W) or (1, 1, H, W) (sizes may differ); values in [0, 1].
        size: (H, W) to resize to (antialiased bilinear), or None to keep the size (then every
        mask of a sequence must have the same size).
    Raises ValueError for other shapes, values outside [0, 1] or an empty sequence.
    """
    if isinstance(masks, Tensor) and masks.dim() == 4 and masks.shape[1] == 1:
        items = list(masks.split(1))  # K tensors of shape (1, 1, H, W)
    elif isinstance(masks, Tensor):
        items = [masks]
    else:
        items = list(masks)
    if not items:
        raise ValueError(f"no {what} given; pass a (K, 1, H, W) tensor or a list of K masks")
    items = [_one_mask(m, f"{what}[{k}]") for k, m in enumerate(items)]
    for k, m in enumerate(items):
        _check_range(m, f"{what}[{k}]")
    if size is None:
        sizes = {tuple(m.shape[-2:]) for m in items}
        if len(sizes) > 1:
            raise ValueError(f"{what} have different sizes {sorted(sizes)}; pass size=(H, W)")
        size = sizes.pop()
    return torch.cat([_resize(m.float(), size) for m in items])


def threshold_mask(img: Tensor, level: float = 0.5, softness: float = 0.05, *,
                   weights: Sequence[float] = _LUMA) -> Tensor:
    """Mark the pixels brighter than ``level``: T = sigmoid(4 (Y - level) / softness).

    Y = 0.299 R + 0.587 G + 0.114 B (BT.601 luma), or sum_c weights[c] * img[c] for other
    ``weights``: (-1, 0, 1) marks pixels bluer than red by more than ``level`` (a blue sky).
    The ramp has slope 1/softness at the level, like a linear ramp of width ``softness``, so
    edges are not aliased; softness=0 gives a hard step (Y > level).
    Args: img (1, 3, H, W) in [0, 1]. Returns (1, 1, H, W) in [0, 1].
    """
    if img.dim() != 4 or img.shape[:2] != (1, 3):
        raise ValueError(f"expected an image of shape (1, 3, H, W), got {tuple(img.shape)}")
    if softness < 0:
        raise ValueError(f"softness must be >= 0, got {softness}")
    if len(weights) != 3:
        raise ValueError(f"weights must be 3 numbers (R, G, B), got {len(weights)}")
    y = (img * img.new_tensor(weights).view(1, 3, 1, 1)).sum(1, keepdim=True)  # (1, 1, H, W)
    if softness == 0:
        return (y > level).to(img.dtype)
    return torch.sigmoid(4.0 * (y - level) / softness)


def split_mask(height: int, width: int, side: str = "left", at: float = 0.5,
               feather: float = 0.05) -> Tensor:
    """Mark one side of a straight cut: the part of the image on ``side`` of the line at ``at``.

    With u = (column + 0.5) / width (left/right) or (row + 0.5) / height (top/bottom), "left"
    and "top" give T = clamp((at - u) / feather + 1/2, 0, 1), "right" and "bottom" the mirror
    image, so split_mask(..., "left") + split_mask(..., "right") == 1 exactly. ``feather`` is the
    width of the linear ramp as a fraction of the image side (0: a hard edge).
    Returns (1, 1, height, width) float32 in [0, 1].
    """
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; valid: {', '.join(SIDES)}")
    if height < 1 or width < 1:
        raise ValueError(f"mask size must be positive, got {height}x{width}")
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    n = width if side in ("left", "right") else height
    u = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    d = (at - u) if side in ("left", "top") else (u - at)  # > 0 inside the region
    ramp = (d > 0).float() if feather == 0 else (d / feather + 0.5).clamp(0, 1)
    if side in ("left", "right"):
        return ramp.view(1, 1, 1, width).expand(1, 1, height, width).contiguous()
    return ramp.view(1, 1, height, 1).expand(1, 1, height, width).contiguous()


def load_mask(path, size=None) -> Tensor:
    """Load a mask from an image file (white = 1, black = 0, grey in between).

    Any image mode works (colour is turned into its BT.601 luma; transparency is composited over
    white, as in :func:`nstutils.load_image`). size: (H, W) to resize to (Lanczos), e.g.
    ``content.shape[-2:]``; None keeps the file's size. Returns (1, 1, H, W) float32 in [0, 1].
    """
    img = load_image(path, size=None if size is None else tuple(int(s) for s in size))
    return (img * img.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True).clamp(0, 1)


def complement(mask: Tensor) -> Tensor:
    """Return 1 - mask (same shape): the rest of the image."""
    _check_range(mask)
    return 1.0 - mask


def regions(mask: Tensor) -> Tensor:
    """Return the two regions [mask, 1 - mask] as (2, 1, H, W), for the common two-style case.

    Args: mask (H, W), (1, H, W) or (1, 1, H, W) in [0, 1].
    """
    mask = _one_mask(mask, "mask")
    _check_range(mask)
    return torch.cat([mask, 1.0 - mask])


def _halvings(size: tuple[int, int], target: tuple[int, int]) -> int | None:
    """Return p with size // 2**p == target in both dimensions (VGG's floor pooling), else None."""
    (h, w), p = size, 0
    while h >= 1 and w >= 1:
        if (h, w) == target:
            return p
        h, w, p = h // 2, w // 2, p + 1
    return None


def layer_masks(masks: Tensor, layer_shapes: Mapping[str, Sequence[int] | Tensor]) -> dict[str, Tensor]:
    """Bring masks (K, 1, H, W) down to each layer's feature size: {layer: (K, 1, H_l, W_l)}.

    layer_shapes: {layer: (H_l, W_l)}, best taken from the features themselves, e.g.
    ``{n: f.shape[-2:] for n, f in feats.items()}`` (a feature tensor is accepted as well).
    Each feature position of a layer behind p 2x2 poolings covers one 2^p x 2^p block of pixels
    (VGG pools with floor, dropping an odd last row or column); its mask value is the mean of the
    mask over that block (an area average, so soft edges stay soft and no region vanishes).
    Sizes that are not such a halving of (H, W) fall back to adaptive average pooling.
    Gatys et al. (2017) also propagate masks by keeping only the neurons whose receptive field
    lies inside the region (an "eroded" guide, with sharper borders between styles); we use this
    simple downsampling, under which neurons on a border count for both regions, in proportion.
    """
    if masks.dim() != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must have shape (K, 1, H, W), got {tuple(masks.shape)}")
    out = {}
    for name, shape in layer_shapes.items():
        hl, wl = (int(s) for s in (shape.shape[-2:] if isinstance(shape, Tensor) else shape))
        p = _halvings(tuple(masks.shape[-2:]), (hl, wl))
        if p is None:
            out[name] = F.adaptive_avg_pool2d(masks, (hl, wl))
        elif p == 0:
            out[name] = masks
        else:
            k = 2 ** p
            out[name] = F.avg_pool2d(masks[..., : hl * k, : wl * k], k)  # (K, 1, H_l, W_l)
    return out
