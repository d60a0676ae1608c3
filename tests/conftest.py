"""Shared fixtures: the real Caffe VGG19 weights (loaded once), small images, torchvision's VGG19."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nstutils as nu

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TORCHVISION_RECORD = Path(__file__).resolve().parent / "data/torchvision_vgg19_features.json"


def live_torchvision():
    """Return the torchvision module, or None where it is missing or cannot load.

    PyPI's torchvision is built against CUDA torch: beside a CPU-only torch its import raises
    RuntimeError, not ImportError.
    """
    try:
        import torchvision
    except Exception:  # noqa: BLE001
        return None
    return torchvision


@pytest.fixture(scope="session")
def torchvision_features() -> torch.nn.Sequential:
    """torchvision's ``vgg19(weights=None).features``: live if torchvision loads, else rebuilt
    from the modules recorded in tests/data (scripts/record_torchvision_vgg19.py)."""
    tv = live_torchvision()
    if tv is not None:
        return tv.models.vgg19(weights=None).features
    allowed = {"Conv2d": torch.nn.Conv2d, "ReLU": torch.nn.ReLU, "MaxPool2d": torch.nn.MaxPool2d}
    modules = json.loads(TORCHVISION_RECORD.read_text())["modules"]
    return torch.nn.Sequential(*(eval(m, {"__builtins__": {}}, allowed) for m in modules))


@pytest.fixture(scope="session")
def vgg():
    return nu.load_vgg19("caffe")


@pytest.fixture(scope="session")
def extractor(vgg):
    return nu.VGGFeatures(vgg, layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))


@pytest.fixture(scope="session")
def content():
    return nu.load_image(DATA / "content/tubingen_neckarfront.jpg", max_side=64)


@pytest.fixture(scope="session")
def style():
    return nu.load_image(DATA / "style/van_gogh_starry_night.jpg", max_side=48)


def pattern(h: int = 32, w: int = 40) -> torch.Tensor:
    """A deterministic smooth colour pattern (1, 3, h, w) in [0, 1], the same on every machine."""
    y = torch.linspace(0, 1, h).view(h, 1)
    x = torch.linspace(0, 1, w).view(1, w)
    r = 0.5 + 0.5 * torch.sin(6.0 * x + 2.0 * y)
    g = 0.5 + 0.5 * torch.cos(4.0 * y - 3.0 * x)
    b = (x * y).expand(h, w)
    return torch.stack([r, g, b]).unsqueeze(0).contiguous()
