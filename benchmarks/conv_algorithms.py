"""VGG19's convolutions, direct (torch/oneDNN) against Winograd's F(4x4, 3x3) (nstutils.winograd), layer by layer.

    python benchmarks/conv_algorithms.py                 # 512 px, float32, this CPU as it is
    python benchmarks/conv_algorithms.py --size 256 --json benchmarks/results/conv_algorithms_256.json
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/conv_algorithms.py

For each convolution up to conv5_1 (the default layers' deepest) at the size it has in a
``--size`` x ``--size`` image: the median seconds of one forward and backward pass (the
gradient with respect to the input only, as in stylize: the weights are frozen) with each
algorithm, alternating in one process so that both see the same machine; their ratio; and the
largest difference of the output and of the input gradient, relative to the largest value.
Run with freed memory kept in the process, as stylize runs (``nstutils.heap.kept_heap``;
``--plain-heap``: without). The real Caffe weights; inputs are ReLU-like (non-negative,
VGG-sized values). The whole run's effect is measured by ``benchmarks/levels.py --conv direct
winograd``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the machine description)
import nstutils as nu  # noqa: E402
from nstutils.layers import VGG19_LAYERS  # noqa: E402
from nstutils.heap import kept_heap  # noqa: E402
from nstutils.winograd import MIN_IN_CHANNELS, MIN_PIXELS, conv3x3, winograd_weights  # noqa: E402


def once(f, x, grad) -> tuple[float, torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    start = time.perf_counter()
    y = f(x)
    y.backward(grad)
    return time.perf_counter() - start, y.detach(), x.grad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--plain-heap", action="store_true", help="glibc's malloc as it is (stylize keeps the heap)")
    args = ap.parse_args(argv)
    with contextlib.nullcontext() if args.plain_heap else kept_heap():
        layer_times(args)


def layer_times(args):
    machine = bench.machine()
    print(f"machine: {machine}", flush=True)
    vgg = nu.load_vgg19()
    gen = torch.Generator().manual_seed(0)
    side, rows, totals = args.size, [], {"direct": 0.0, "winograd": 0.0}
    for name, conv in zip(VGG19_LAYERS[:VGG19_LAYERS.index("relu5_1")], vgg.features):
        if name.startswith("pool"):
            side //= 2
        if not name.startswith("conv"):
            continue
        conv = conv.requires_grad_(False)
        x = torch.rand(1, conv.in_channels, side, side, generator=gen) * 50
        grad = torch.randn(1, conv.out_channels, side, side, generator=gen)
        u = winograd_weights(conv.weight)
        algos = {"direct": conv, "winograd": lambda t: conv3x3(t, u, conv.bias)}
        times = {k: [] for k in algos}
        results = {k: once(f, x, grad)[1:] for k, f in algos.items()}  # also the warm-up
        for _ in range(args.repeats):
            for k, f in algos.items():
                times[k].append(once(f, x, grad)[0])
        med = {k: statistics.median(v) for k, v in times.items()}
        (y0, g0), (y1, g1) = results["direct"], results["winograd"]
        err = max(((y1 - y0).abs().max() / y0.abs().max()).item(), ((g1 - g0).abs().max() / g0.abs().max()).item())
        used = conv.in_channels >= MIN_IN_CHANNELS and side * side >= MIN_PIXELS  # what stylize does
        for k in totals:
            totals[k] += med[k] if k == "direct" or not used else med["winograd"]
        rows.append(dict(layer=name, c_in=conv.in_channels, c_out=conv.out_channels, side=side, used=used,
                         direct=med["direct"], winograd=med["winograd"], error=err))
        print(f"{name:8s} {conv.in_channels:4d}->{conv.out_channels:<4d} {side:4d} px: direct {med['direct'] * 1e3:7.1f} ms,"
              f" winograd {med['winograd'] * 1e3:7.1f} ms, {med['direct'] / med['winograd']:4.2f}x,"
              f" error {err:.1e}{'' if used else '  (stylize keeps direct)'}", flush=True)
    print(f"all convolutions: direct {totals['direct']:.3f} s, as stylize(conv='winograd') runs them "
          f"{totals['winograd']:.3f} s: {totals['direct'] / totals['winograd']:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=machine, size=args.size, layers=rows, totals=totals), indent=1))


if __name__ == "__main__":
    main()
