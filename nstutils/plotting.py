"""Figures for the notebooks: image grids, loss curves, feature maps and Gram matrices.

Imports matplotlib; ``import nstutils`` never imports this module. Functions return the
matplotlib Figure and never call ``plt.show()``: the notebook decides.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

from .images import to_pil


def _grid(n: int, ncols: int | None, size: float):
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)


def show_images(images: Sequence[Tensor], titles: Sequence[str] | None = None, *,
                ncols: int | None = None, size: float = 3.5, title_below: bool = False):
    """Show (1, 3, H, W) images in a grid with one title each. Returns the Figure."""
    fig, axes = _grid(len(images), ncols, size)
    for i, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(to_pil(img))
        if titles is not None:
            if title_below:
                ax.set_xlabel(titles[i], fontsize=10)
                ax.axis("on")
                ax.set_xticks([]), ax.set_yticks([])
            else:
                ax.set_title(titles[i], fontsize=10)
    fig.tight_layout()
    return fig


def show_snapshots(snapshots: Sequence[tuple[int, Tensor]], *, ncols: int | None = None,
                   size: float = 3.0):
    """Show ``result.snapshots`` as a grid with the step number under each image."""
    return show_images([img for _, img in snapshots], [f"step {s}" for s, _ in snapshots],
                       ncols=ncols, size=size, title_below=True)


def plot_history(histories: Mapping[str, Sequence], *, x: str = "step",
                 terms: Sequence[str] = ("total",), log: bool = True, ax=None):
    """Plot loss curves: {label: result.history}, against "step" or "seconds". Returns the Figure."""
    if x not in ("step", "seconds"):
        raise ValueError(f"x must be 'step' or 'seconds', got {x!r}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for label, history in histories.items():
        xs = [getattr(r, x) for r in history]
        for term in terms:
            name = label if len(terms) == 1 else f"{label}: {term}"
            ax.plot(xs, [getattr(r, term) for r in history], label=name)
    ax.set_xlabel("step" if x == "step" else "seconds")
    ax.set_ylabel("loss (weighted)")
    if log:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def show_feature_maps(feats: Tensor, *, channels: Sequence[int] | int = 8, ncols: int = 8,
                      size: float = 1.6, title: str | None = None):
    """Show some channels of one feature tensor (1, C, H, W) as greyscale pictures."""
    chans = range(channels) if isinstance(channels, int) else channels
    maps = feats[0].detach().float().cpu().numpy()
    fig, axes = _grid(len(chans), ncols, size)
    for ax, c in zip(axes, chans):
        ax.imshow(maps[c], cmap="viridis")
        ax.set_title(f"ch {c}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_gram(grams: Mapping[str, Tensor], *, size: float = 3.0, log: bool = True):
    """Show Gram matrices {label: (1, C, C)} as images (log scale of |G| by default)."""
    fig, axes = _grid(len(grams), None, size)
    for ax, (label, g) in zip(axes, grams.items()):
        m = g[0].detach().float().cpu().numpy()
        ax.imshow(np.log10(np.abs(m) + 1e-6) if log else m, cmap="magma")
        ax.set_title(f"{label} ({m.shape[0]}x{m.shape[1]})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_layer_values(values: Mapping[str, Mapping[str, float]], *, log: bool = True,
                      ylabel: str = "value", ax=None):
    """Plot per-layer numbers as grouped bars: {series: {layer: value}}, one group per layer.

    Layers appear in the order they are first met; a series that lacks a layer leaves a gap.
    Returns the Figure.
    """
    layers = list(dict.fromkeys(n for series in values.values() for n in series))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(1.2 * len(layers) + 2.5, 3.5))
    width = 0.8 / max(len(values), 1)
    for i, (label, series) in enumerate(values.items()):
        xs = [j + (i - (len(values) - 1) / 2) * width for j, n in enumerate(layers) if n in series]
        ax.bar(xs, [float(series[n]) for n in layers if n in series], width, label=label)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if len(values) > 1:
        ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def show_maps(maps: Mapping[str, Tensor], *, cmap: str = "magma", shared: bool = True,
              ncols: int | None = None, size: float = 3.0):
    """Show 2-D maps {label: (H, W), (1, H, W) or (1, 1, H, W)} as heat maps with a colour bar.

    shared=True puts every map on one colour scale, so that brightness compares across panels.
    Returns the Figure.
    """
    arrays = {k: v.detach().float().cpu().squeeze().numpy() for k, v in maps.items()}
    bad = [k for k, a in arrays.items() if a.ndim != 2]
    if bad:
        raise ValueError(f"map {bad[0]!r} is not 2-D after squeezing: shape {arrays[bad[0]].shape}")
    lo = min(float(a.min()) for a in arrays.values()) if shared else None
    hi = max(float(a.max()) for a in arrays.values()) if shared else None
    fig, axes = _grid(len(arrays), ncols, size)
    for ax, (label, a) in zip(axes, arrays.items()):
        im = ax.imshow(a, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(label, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
