"""Checks of what a caller passes in, each raising ValueError that says what was wrong and what to do.

Used at the entry points (:func:`nstutils.stylize`, :func:`nstutils.make_targets`, the command
line), so that a wrong dtype, range, memory layout or type fails at once with a readable line
instead of deep inside torch. ``name`` is how the message names the value (``"content"``,
``"steps"``, or the command line's ``"--steps"``).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

class UsageError(ValueError):
    """A bad command-line argument, found after parsing (the command line exits with 2)."""


SEED_RANGE = (-(2 ** 63), 2 ** 64 - 1)  # what torch.Generator.manual_seed accepts
RANGE_SLACK = 0.01  # values this far outside [0, 1] are clamped (resampling overshoot), not refused


def check_image(img, name: str = "image") -> Tensor:
    """Return ``img`` as a contiguous (1, 3, H, W) float32 tensor in [0, 1], or raise ValueError.

    Refuses other dtypes (saying how to convert), NaN or infinite values, and values outside
    [0, 1] (0-255 images say "divide by 255"); values within RANGE_SLACK of it are clamped.
    Channels-last or otherwise strided tensors are made contiguous (a copy).
    """
    if not isinstance(img, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (1, 3, H, W), got {type(img).__name__}; "
                         "load it with nstutils.load_image")
    if img.dim() != 4 or img.shape[:2] != (1, 3):
        raise ValueError(f"{name} must have shape (1, 3, H, W), got {tuple(img.shape)}")
    if img.dtype != torch.float32:
        how = ("img.float() / 255" if img.dtype == torch.uint8 else
               "img.float() (and divide by 255 if its values run to 255)" if not img.dtype.is_floating_point
               else "img.float()")
        raise ValueError(f"{name} has dtype {img.dtype}; images are float32 in [0, 1]: convert with {how}")
    if min(img.shape[-2:]) < 1:
        raise ValueError(f"{name} is empty: shape {tuple(img.shape)}")
    if not bool(torch.isfinite(img).all()):
        raise ValueError(f"{name} holds NaN or infinite values; check how it was made")
    lo, hi = float(img.min()), float(img.max())
    if hi > 1 + RANGE_SLACK or lo < -RANGE_SLACK:
        hint = "divide by 255" if hi > 2 else "clamp it with .clamp(0, 1)"
        raise ValueError(f"{name} has values in [{lo:.4g}, {hi:.4g}]; images are floats in [0, 1]: {hint}")
    if lo < 0 or hi > 1:
        img = img.clamp(0, 1)
    return img.contiguous()


def check_int(value, name: str, minimum: int = 0) -> int:
    """Return ``value`` as an int >= ``minimum``; whole floats (3.0) pass, 2.5, True and "3" do not."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value, ok = int(value), True
    if not ok or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def check_number(value, name: str, *, minimum: float = 0.0, positive: bool = False,
                 maximum: float | None = None) -> float:
    """Return ``value`` as a finite float >= ``minimum`` (> it with ``positive``), <= ``maximum``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not (ok and math.isfinite(v) and (v > minimum if positive else v >= minimum)
            and (maximum is None or v <= maximum)):
        bound = f"> {minimum:g}" if positive else f">= {minimum:g}"
        bound += "" if maximum is None else f" and <= {maximum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return v


def check_seed(value, name: str = "seed") -> int:
    """Return ``value`` as an int that torch.Generator accepts (64 bits)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise ValueError(f"{name} must be a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]} "
                         f"(64 bits), got {value!r}")
    return int(value)


def check_choice(value, name: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(choices)}")
    return value
