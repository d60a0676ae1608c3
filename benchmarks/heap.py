"""What keeping freed memory in the process (nstutils.heap.kept_heap) saves, on this machine.

    python benchmarks/heap.py                   # 6 full-size steps at 512 px, 2 rounds
    python benchmarks/heap.py --rounds 3 --steps 4 --json benchmarks/results/heap_512.json

1. A fresh 50 MB ``torch.zeros`` (new memory, mapped page by page) against zeroing 50 MB that the
   process already holds: the cost the kept heap removes, as the median of 5.
2. ``nu.stylize`` of Tübingen x The Starry Night at 384 x 512 for ``--steps`` L-BFGS steps on one
   level (``pyramid=False``), with the heap kept (as stylize runs) and without (kept_heap
   replaced by a no-op), for each convolution algorithm, every run in a fresh process and the
   conditions alternating, so that all of them see the same machine. Reports seconds per run
   (the targets' cost included), the ratio of the medians, and each run's peak resident memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the images and the machine description)
import nstutils as nu  # noqa: E402
from nstutils import optimize  # noqa: E402

MB50 = 50 * 2 ** 20 // 4  # floats in 50 MB: a 64-channel activation at 384 x 512 is 48 MB


def page_cost() -> dict:
    """Seconds for a fresh 50 MB zeros against re-zeroing 50 MB already held (medians of 5)."""
    fresh = []
    for _ in range(5):
        start = time.perf_counter()
        a = torch.zeros(MB50)
        fresh.append(time.perf_counter() - start)
        del a
    held, again = torch.zeros(MB50), []
    for _ in range(5):
        start = time.perf_counter()
        held.zero_()
        again.append(time.perf_counter() - start)
    return dict(fresh=statistics.median(fresh), held=statistics.median(again))


def child(kept: bool, conv: str, steps: int) -> float:
    """One stylize run in this process; its seconds (the peak memory: bench.peak_rss)."""
    content, style = bench.images(512)
    extractor = nu.VGGFeatures(nu.load_vgg19())
    off = mock.patch.object(optimize, "kept_heap", lambda: contextlib.nullcontext(False))
    with contextlib.nullcontext() if kept else off:
        start = time.perf_counter()
        nu.stylize(content, style, extractor, steps=steps, pyramid=False, conv=conv)
        return time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conv", nargs="+", default=["winograd", "direct"], choices=["winograd", "direct"])
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", nargs=3, metavar=("KEPT", "CONV", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        seconds = child(args.child[0] == "kept", args.child[1], int(args.child[2]))
        print(seconds, bench.peak_rss())
        return
    machine = bench.machine()
    print(f"machine: {machine}", flush=True)
    pages = page_cost()
    print(f"50 MB zeros: fresh {pages['fresh'] * 1e3:.1f} ms, held {pages['held'] * 1e3:.1f} ms", flush=True)
    runs = {(c, k): [] for c in args.conv for k in ("kept", "plain")}
    peaks = {key: [] for key in runs}
    for _ in range(args.rounds):
        for conv, kept in runs:
            out = subprocess.run([sys.executable, __file__, "--child", kept, conv, str(args.steps)],
                                 capture_output=True, text=True, check=True)
            seconds, peak = out.stdout.split()[-2:]
            runs[conv, kept].append(float(seconds))
            peaks[conv, kept].append(int(peak))
            print(f"{conv:8s} {kept:5s} {float(seconds):6.2f} s, peak memory {int(peak) / 2 ** 20:.0f} MB", flush=True)
    rows = []
    for conv in args.conv:
        kept, plain = statistics.median(runs[conv, "kept"]), statistics.median(runs[conv, "plain"])
        rows.append(dict(conv=conv, kept=runs[conv, "kept"], plain=runs[conv, "plain"], ratio=plain / kept,
                         peak_kept=peaks[conv, "kept"], peak_plain=peaks[conv, "plain"]))
        print(f"{conv}: {args.steps} steps at 384 x 512, median {plain:.2f} s without the kept heap, "
              f"{kept:.2f} s with it: {plain / kept:.2f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=machine, steps=args.steps, pages=pages, runs=rows), indent=1))


if __name__ == "__main__":
    main()
