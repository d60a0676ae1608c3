"""Model answers, in the signatures the exercises ask for.

The checkers compare against these, and :class:`nstutils.check.Exercises` hands them out when
a learner skips an exercise. Where nstutils already has the function, the answer calls it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..color import luminance_swap as _luminance_swap
from ..color import match_luminance
from ..features import deprocess, preprocess
from ..images import load_image
from ..layers import LAYER_INDEX, VGG19_LAYERS, check_layers, layer_table


def to_tensor(arr: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 array -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(arr)).permute(2, 0, 1).unsqueeze(0).float() / 255


def caffe_preprocess(img: Tensor) -> Tensor:
    """RGB in [0, 1] -> BGR, 0-255, minus Caffe's mean pixel: ``preprocess(img, "caffe")``."""
    return preprocess(img, "caffe")


def caffe_deprocess(x: Tensor) -> Tensor:
    """The exact inverse of :func:`caffe_preprocess`: ``deprocess(x, "caffe")``."""
    return deprocess(x, "caffe")


def extract(net: nn.Sequential, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
    """Run ``x`` through ``net`` (torchvision's VGG19 layout) and keep the named layers' outputs.

    Every ReLU runs out of place, so a conv output kept as a feature is never overwritten.
    """
    layers = check_layers(layers)  # one name or several; unknown names raise ValueError
    wanted, last, feats = set(layers), max(LAYER_INDEX[n] for n in layers), {}
    for name, module in zip(VGG19_LAYERS[: last + 1], net):
        x = torch.relu(x) if isinstance(module, nn.ReLU) else module(x)
        if name in wanted:
            feats[name] = x
    return feats


def adam_loop(x0: Tensor, loss_fn: Callable[[Tensor], Tensor], steps: int, lr: float) -> Tensor:
    """Optimize a copy of ``x0`` with Adam for ``steps`` steps; clamp to [0, 1] after each step."""
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)  # after the step: safe with Adam, which keeps no model of the loss
    return x.detach()


def make_closure(x: Tensor, opt: torch.optim.Optimizer, loss_fn: Callable[[Tensor], Tensor]):
    """Return the closure that ``torch.optim.LBFGS.step`` calls: the loss at x, gradient in x.grad.

    No clamping inside: L-BFGS must see the image it moved (clamp once, at the end).
    """
    def closure() -> Tensor:
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss
    return closure


def resume_init(path, content: Tensor) -> Tensor:
    """Load a saved result as the start image of a new run: the content's size and device."""
    return load_image(path, size=tuple(content.shape[-2:]), device=content.device)


def receptive_field(name: str) -> int:
    """The side in input pixels that one position of layer ``name`` sees ("relu3_1" -> 24)."""
    return next(row.receptive_field for row in layer_table() if row.name == check_layers([name])[0])


def luminance_swap(x: Tensor, c: Tensor) -> Tensor:
    """RGB(Y of x, I and Q of c) in YIQ, clamped to [0, 1]; x and c of the same size (B, 3, H, W)."""
    return _luminance_swap(x, c, "yiq")


__all__ = ["to_tensor", "caffe_preprocess", "caffe_deprocess", "extract", "adam_loop", "make_closure",
           "resume_init", "receptive_field", "luminance_swap", "match_luminance"]
