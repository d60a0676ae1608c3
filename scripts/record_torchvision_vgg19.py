"""Regenerate tests/data/torchvision_vgg19_features.json: torchvision's ``vgg19().features``.

Usage: python scripts/record_torchvision_vgg19.py   (needs torchvision)
The tests check nstutils' layer names, indices and weight layout against torchvision's VGG19.
torchvision is not a dependency of nstutils, and its PyPI build cannot be imported beside a
CPU-only torch, so the tests rebuild the network from this record when torchvision is missing
and compare the record with torchvision itself when it is there.
"""

from __future__ import annotations

import json
from pathlib import Path

import torchvision

OUT = Path(__file__).resolve().parents[1] / "tests/data/torchvision_vgg19_features.json"


def main() -> None:
    features = torchvision.models.vgg19(weights=None).features
    record = {
        "source": f"torchvision {torchvision.__version__}: torchvision.models.vgg19(weights=None).features",
        "modules": [repr(m) for m in features],
    }
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {len(record['modules'])} modules to {OUT}")


if __name__ == "__main__":
    main()
