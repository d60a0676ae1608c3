"""One evaluation of the default loss (forward and backward), this tree's Winograd convolutions against a git revision's.

    python benchmarks/evaluation.py --against 5abaf4b                     # 512 px
    python benchmarks/evaluation.py --against 5abaf4b --size 256 128 --json benchmarks/results/evaluation_epyc.json

An evaluation is what L-BFGS asks for at every step and line-search probe: the loss of the
default layers and weights (Tübingen and The Starry Night at ``--size``, float32, the extractor
that ``stylize(conv="auto")`` builds on the CPU) and its gradient with respect to the image.
``nstutils/winograd.py`` as it is at ``--against`` is loaded beside this tree's, and the two
alternate, evaluation by evaluation, in one process, so that both see the same machine: a
comparison of seconds from two invocations would mostly measure the host. Printed and saved:
the median seconds of each, their ratio, and how far the two gradients lie apart (rounding only,
when both compute the same convolution).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the machine description, images and weights)
import nstutils as nu  # noqa: E402
import nstutils.winograd as ours  # noqa: E402
from nstutils.heap import kept_heap  # noqa: E402


def module_at(rev: str):
    """nstutils/winograd.py as it is at git revision ``rev``, imported under another name."""
    source = subprocess.run(["git", "show", f"{rev}:nstutils/winograd.py"], cwd=HERE.parent, check=True,
                            capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:  # the module is in memory once executed
        path = Path(tmp) / "winograd_at_rev.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("winograd_at_rev", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def compare(extractor, side: int, conv3x3s: dict, rounds: int) -> dict:
    content, style = bench.images(side)
    targets = nu.make_targets(extractor, content, style, content_layers=bench.D.content_layers,
                              style_layers=bench.D.style_layers)
    img = content.clone().requires_grad_(True)

    def evaluation():
        img.grad = None
        nu.loss_terms(img, extractor, targets, **bench.WEIGHTS)["total"].backward()
        return img.grad.clone()

    times, grads = {k: [] for k in conv3x3s}, {}
    for i in range(rounds + 2):  # two rounds of warm-up: the transformed weights, the heap
        for name, f in conv3x3s.items():
            ours.conv3x3 = f  # what WinogradConv2d calls
            start = time.perf_counter()
            grads[name] = evaluation()
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    ours.conv3x3 = conv3x3s["this tree"]
    med = {k: statistics.median(v) for k, v in times.items()}
    (a, ga), (b, gb) = grads.items()
    out = dict(side=side, median=med, seconds=times, ratio=med[a] / med[b],
               gradient_difference=float((ga - gb).abs().max() / gb.abs().max()))
    print(f"{side:5d} px: " + ", ".join(f"{k} {v:.3f} s" for k, v in med.items())
          + f"; {a} / {b} = {out['ratio']:.3f}; gradients differ by {out['gradient_difference']:.1e} of the largest",
          flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, metavar="REV", help="a git revision of this repository")
    ap.add_argument("--size", type=int, nargs="+", default=[512])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    machine = bench.machine()
    print(f"machine: {machine}", flush=True)
    conv3x3s = {f"at {args.against}": module_at(args.against).conv3x3, "this tree": ours.conv3x3}
    with kept_heap():
        extractor = nu.VGGFeatures(nu.load_vgg19(), layers=bench.LAYERS).winograd()
        rows = [compare(extractor, side, conv3x3s, args.rounds) for side in args.size]
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=machine, against=args.against, rows=rows), indent=1))


if __name__ == "__main__":
    main()
