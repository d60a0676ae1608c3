"""Regenerate tests/data/caffe_reference.npz: Caffe VGG19 features of a fixed small image.

Usage: python scripts/make_reference.py
The image is an analytic colour pattern (no random numbers), so the reference is the same on
every machine; tests compare with a relative tolerance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nstutils as nu  # noqa: E402
from conftest import pattern  # noqa: E402

LAYERS = ("conv1_1", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "conv4_2", "relu4_2", "relu5_1")


def reference() -> dict[str, np.ndarray]:
    extractor = nu.VGGFeatures(nu.load_vgg19("caffe"), layers=LAYERS)
    with torch.no_grad():
        feats = extractor(pattern(64, 80), layers=LAYERS)
    out = {}
    for name, f in feats.items():
        f = f[0].double()
        out[f"{name}/mean"] = f.mean(dim=(1, 2)).numpy()  # (C,) channel means
        out[f"{name}/gram_diag"] = nu.gram(f[None].float())[0].diagonal().double().numpy()
        out[f"{name}/center"] = f[:, f.shape[1] // 2, f.shape[2] // 2].numpy()  # (C,)
    return out


if __name__ == "__main__":
    path = ROOT / "tests/data/caffe_reference.npz"
    np.savez_compressed(path, **reference())
    print(f"wrote {path}")
