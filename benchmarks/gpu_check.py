"""Check the default stylization on a CUDA GPU, in each precision it offers, against float32.

    python benchmarks/gpu_check.py                 # 512 and 1024 px on the GPU (a few minutes)
    python benchmarks/gpu_check.py --sizes 64      # any sizes; on a machine without CUDA it
                                                   # says so and runs a tiny size on the CPU

For each size and precision: the default run (``nu.stylize`` with nu.DEFAULTS, seed 0) of
Tübingen x The Starry Night, its seconds per step, peak GPU memory, and the loss of the image it
returns, scored in float32 at full size with the default weights (the same scorer for every
precision), beside float32's. Precisions offered: fp32 always; bf16 where torch allows it,
marked native (compute capability 8.0 and above: what ``precision="auto"`` picks) or emulated
(a T4: there to show what auto avoids). Pictures go to --out, a markdown table to stdout and to
--out/gpu_check.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import nstutils as nu
from nstutils.device import choose, describe, probe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import images, machine, scorer  # noqa: E402  (the benchmark's images and fp32 scorer)

D = nu.DEFAULTS
CPU_SIZES = (64,)  # without CUDA: a smoke run, so that the script is tested
CPU_STEPS = 6


def precisions(device: torch.device) -> list[tuple[str, str]]:
    """Return [(precision, note)] that ``device`` can run: fp32, and bf16 native or emulated."""
    out = [("fp32", "reference")]
    auto = choose(device, "auto")[1]
    if auto == "bf16":
        out.append(("bf16", "native: what auto picks"))
    elif device.type == "cuda" and torch.cuda.is_bf16_supported():
        out.append(("bf16", "emulated: auto avoids it"))
    return out


def run_one(side: int, precision: str, steps: int, device: torch.device, vgg, out: Path) -> dict:
    """One default run at ``side`` px in ``precision``; returns its row of the table."""
    content, style = (img.to(device) for img in images(side))
    extractor = nu.VGGFeatures(vgg, layers=(*D.content_layers, *D.style_layers)).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    result = nu.stylize(content, style, extractor, steps=steps, precision=precision, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    path = nu.save_image(result.image, out / f"{side}px_{precision}.png")
    return dict(side=side, precision=precision, steps=len(result.history), seconds=seconds,
                seconds_per_step=seconds / max(1, len(result.history)), status=result.status,
                loss_fp32=scorer(content, style, extractor)(result.image), peak_gpu_bytes=peak,
                image=str(path))


def table(rows: list[dict], notes: dict[str, str]) -> str:
    """Markdown table of the rows, with each loss relative to fp32's at the same size."""
    ref = {r["side"]: r["loss_fp32"] for r in rows if r["precision"] == "fp32"}
    lines = ["| size | precision | steps | s/step | total s | loss (fp32 scorer) | vs fp32 | peak GPU memory |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        peak = "-" if r["peak_gpu_bytes"] is None else f"{r['peak_gpu_bytes'] / 2**30:.2f} GB"
        rel = r["loss_fp32"] / ref[r["side"]] - 1 if r["side"] in ref else float("nan")
        lines.append(f"| {r['side']} px | {r['precision']} ({notes[r['precision']]}) | {r['steps']} | "
                     f"{r['seconds_per_step']:.3f} | {r['seconds']:.1f} | {r['loss_fp32']:.4f} | "
                     f"{rel:+.1%} | {peak} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="longer sides in px (default: 512 1024 on CUDA, 64 on the CPU)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"steps per run (default: {D.steps} on CUDA, {CPU_STEPS} on the CPU)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "gpu_check")
    args = parser.parse_args(argv)
    device, _ = choose("auto")
    cuda = device.type == "cuda"
    if not cuda:
        print("no CUDA GPU here: a smoke run on the CPU at a tiny size (the GPU path is not measured)")
    sizes = args.sizes or ((512, 1024) if cuda else CPU_SIZES)
    steps = args.steps or (D.steps if cuda else CPU_STEPS)
    args.out.mkdir(parents=True, exist_ok=True)
    print(describe(device, choose(device)[1]), "| torch", torch.__version__,
          "| capabilities", probe().cuda or "none", "| CPU", machine()["cpu"])
    vgg = nu.load_vgg19()
    offered = precisions(device)
    rows = [run_one(side, p, steps, device, vgg, args.out) for side in sizes for p, _ in offered]
    text = table(rows, dict(offered))
    print(text)
    (args.out / "gpu_check.md").write_text(text + "\n")
    info = dict(device=describe(device, choose(device)[1]), torch=torch.__version__,
                gpu=torch.cuda.get_device_name(device) if cuda else None, rows=rows)
    (args.out / "gpu_check.json").write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
