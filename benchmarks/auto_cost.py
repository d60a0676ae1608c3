"""The extra time of ``style_weight="auto"`` against a plain run with a fixed weight, at 512 px.

    python benchmarks/auto_cost.py [--size 512] [--pairs N] [--quick] [--start-level]

For each pair (default: the README gallery's first two), runs ``nu.stylize`` with the fixed
weight 30 and with "auto", every other setting the default, and prints both wall times, the
time of the tries that "auto" did not keep, the ratio, and what each result keeps
(nstutils.balance). Prints the CPU (from lscpu) and the precision that "auto" chose for the
convolutions first. The tries not kept are the extra work (the kept one is the run's first
level); the two full runs differ also by the line searches' evaluations at their weights, and
on a shared machine by the load, so "extra / fixed" is the steadier measure of the cost.
``--start-level`` also runs "auto" with ``start_level=True`` (each try runs the 64 px start level
and the 128 px level at 512 px, instead of the 128 px level alone) and prints the same columns for it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import torch

import nstutils as nu
from nstutils.balance import structure_kept, style_kept
from nstutils.device import choose_precision

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (("tubingen_neckarfront", "van_gogh_starry_night"), ("arches_national_park", "munch_the_scream"),
         ("grace_hopper_portrait", "leger_contrast_of_forms"), ("petra_tomb_facade", "hokusai_great_wave"))


def cpu_line() -> str:
    """The CPU model and whether it has AVX512-BF16, from lscpu (or /proc/cpuinfo)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith(("Model name", "model name"))), "?")
    bf16 = "avx512_bf16" in text
    caps = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if os.environ.get(k)]
    return (f"{model}, {os.cpu_count()} cores, avx512_bf16: {'yes' if bf16 else 'no'}"
            + (f" (capped: {', '.join(caps)})" if caps else ""))


def timed(content, style, extractor, **kw):
    start = time.perf_counter()
    result = nu.stylize(content, style, extractor, **kw)
    return result, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="64 px and 6 steps: checks that it runs")
    ap.add_argument("--start-level", action="store_true", help="also auto with start_level=True")
    args = ap.parse_args()
    size, steps = (64, 6) if args.quick else (args.size, nu.DEFAULTS.steps)
    print(f"CPU: {cpu_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"precision auto -> {choose_precision('cpu', 'auto')}; load average {os.getloadavg()[0]:.1f}")
    extractor = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    nu.stylize(*(nu.load_image(ROOT / f"data/{k}/{n}.jpg", max_side=64) for k, n in zip(("content", "style"), PAIRS[0])),
               extractor, steps=2)  # warm-up
    print(f"{'pair':48s} {'fixed 30 s':>10s} {'auto s':>8s} {'extra s':>8s} {'ratio':>6s} {'extra/fixed':>6s} {'weight':>7s}  "
          "structure fixed/auto  painting fixed/auto")
    variants = {"auto": {}, **({"auto, start level": {"start_level": True}} if args.start_level else {})}
    for c_name, s_name in PAIRS[:args.pairs]:
        content = nu.load_image(ROOT / f"data/content/{c_name}.jpg", max_side=size)
        style = nu.load_image(ROOT / f"data/style/{s_name}.jpg", max_side=size)
        fixed, t_fixed = timed(content, style, extractor, steps=steps, style_weight=30.0)
        s_fixed, p_fixed = structure_kept(content, fixed.image), style_kept(content, fixed.image, style, extractor)
        for name, kw in variants.items():
            auto, t_auto = timed(content, style, extractor, steps=steps, style_weight="auto", **kw)
            s, p = structure_kept(content, auto.image), style_kept(content, auto.image, style, extractor)
            label = c_name + " x " + s_name + ("" if name == "auto" else f" ({name})")
            print(f"{label:48s} {t_fixed:10.1f} {t_auto:8.1f} {auto.params['style_weight_seconds']:8.1f} "
                  f"{t_auto / t_fixed:6.2f} {auto.params['style_weight_seconds'] / t_fixed:6.2f} {auto.params['style_weight']:7.3g}  "
                  f"{s_fixed:.3f} / {s:.3f}         {p_fixed:.3f} / {p:.3f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
