"""How long each notebook takes to run top to bottom, as a learner runs it (a fresh kernel each).

    python benchmarks/notebook_times.py --mode quick                 # every notebook in solutions/
    python benchmarks/notebook_times.py --mode full solutions/00_quick_start.ipynb
    python benchmarks/notebook_times.py --mode full --avx2           # approximate a CPU without bf16

Each notebook runs in a new Jupyter kernel from its own folder, with ``NSTUTILS_QUICK`` set for
``--mode quick`` and unset for ``--mode full``. The report gives, per notebook, the wall time from
kernel start to the last cell, the three slowest cells, and the CPU it ran on (model, cores,
whether it has native bfloat16, what ``precision="auto"`` chose, the load average before and after),
because the figures mean little without it. ``--save DIR`` keeps the executed notebooks, to look at
their figures.

``--avx2`` sets ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2`` for the kernels: on a CPU
with AVX-512 and bf16 this approximates the AVX2-only CPUs most laptops and Colab have (fp32, no
bf16). It is an approximation (same caches, clock and memory), and it only counts if it took
effect, so the report includes a check: oneDNN's own verbose line names the ISA it dispatched to,
and one fp32 convolution is timed with and without the cap in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}

# One fp32 3x3 convolution at VGG's 128-channel size, forward and input gradient: its GFLOP/s,
# oneDNN's ISA line and what "auto" chooses, printed as one JSON line by a fresh process.
PROBE = r"""
import json, os, re, sys, time, io
import torch
from nstutils.device import choose_precision
x = torch.randn(1, 128, 96, 128, requires_grad=True)
conv = torch.nn.Conv2d(128, 128, 3, padding=1).requires_grad_(False)
def once():
    conv(x).sum().backward()
for _ in range(3):
    once()
t0 = time.perf_counter(); n = 10
for _ in range(n):
    once()
dt = (time.perf_counter() - t0) / n
flop = 2 * 2 * 128 * 128 * 9 * 96 * 128          # forward and input gradient, 2 FLOP per MAC
print(json.dumps(dict(gflops=flop / dt / 1e9, aten=torch.backends.cpu.get_cpu_capability(),
                      precision=choose_precision("cpu"), threads=torch.get_num_threads())))
"""


def probe(env: dict[str, str]) -> dict:
    """Run PROBE in a fresh process with ``env`` added; add oneDNN's ISA from its verbose output."""
    full = {**os.environ, **env, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env=full, cwd=ROOT)
    lines = out.stdout.splitlines()
    row = json.loads(next(ln for ln in reversed(lines) if ln.startswith("{")))
    isa = next((ln.split("isa:", 1)[1].split(",")[0].strip() for ln in lines if "isa:" in ln), None)
    row["onednn_isa"] = isa
    return row


def machine() -> dict:
    """The CPU model, core count, the bf16 flags it has, and the load average now."""
    from nstutils.device import cpu_flags

    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    flags = cpu_flags()
    return dict(cpu=cpu, cores=os.cpu_count(),
                flags=[f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
                load=list(os.getloadavg()))


def run_notebook(path: Path, mode: str, env: dict[str, str], save: Path | None) -> dict:
    """Execute one notebook in a fresh kernel from its folder; wall time and the slowest cells."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    kernel_env = {k: v for k, v in os.environ.items() if k != "NSTUTILS_QUICK"}
    kernel_env.update(env, MPLBACKEND="module://matplotlib_inline.backend_inline")
    if mode == "quick":
        kernel_env["NSTUTILS_QUICK"] = "1"
    client = NotebookClient(nb, timeout=None, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(kernel_env)     # the kernel inherits this process's environment
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    try:
        client.execute()
        error = None
    except Exception as e:  # a failing notebook is reported, and the others still run
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
    finally:
        seconds = time.perf_counter() - t0
        os.environ.clear()
        os.environ.update(saved)
    cells = []
    for i, cell in enumerate(nb.cells):
        ex = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            a = datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00"))
            b = datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
            first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
            cells.append(dict(index=i, seconds=(b - a).total_seconds(), first_line=first))
    cells.sort(key=lambda c: -c["seconds"])
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / path.name)
    return dict(notebook=path.name, mode=mode, seconds=seconds, error=error, slowest=cells[:3],
                load_before=list(load0), load_after=list(os.getloadavg()))


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"Notebook times, {report['mode']} mode, {report['date']}",
             f"CPU: {m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags'])}; "
             f"kernel env {report['env'] or 'unchanged'}"]
    if report.get("probe"):
        p, q = report["probe"], report.get("probe_plain")
        line = (f"check: oneDNN ISA {p['onednn_isa']}, ATen {p['aten']}, auto precision {p['precision']}, "
                f"fp32 conv {p['gflops']:.0f} GFLOP/s")
        if q:
            line += (f" (without the env: ISA {q['onednn_isa']}, ATen {q['aten']}, {q['precision']}, "
                     f"{q['gflops']:.0f} GFLOP/s)")
        lines.append(line)
    lines += ["", "| notebook | wall time | slowest cells | load before/after |", "|---|---|---|---|"]
    for r in report["notebooks"]:
        slow = "; ".join(f"{c['seconds']:.0f} s `{c['first_line'][:40]}`" for c in r["slowest"])
        t = f"{r['seconds']:.0f} s ({r['seconds'] / 60:.1f} min)"
        if r["error"]:
            t += f" FAILED: {r['error']}"
        lines.append(f"| {r['notebook']} | {t} | {slow} | {r['load_before'][0]:.1f} / {r['load_after'][0]:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in solutions/")
    ap.add_argument("--mode", choices=("quick", "full"), default="quick")
    ap.add_argument("--avx2", action="store_true", help="cap oneDNN and ATen at AVX2 (fp32, no bf16)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VAL", help="more kernel environment")
    ap.add_argument("--save", type=Path, help="write the executed notebooks to this folder")
    ap.add_argument("--out", type=Path, help="write the report as JSON here (and .md beside it)")
    args = ap.parse_args(argv)

    env = dict(AVX2_ENV) if args.avx2 else {}
    env.update(kv.split("=", 1) for kv in args.env)
    paths = args.notebooks or sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    report = dict(mode=args.mode, env=env, machine=machine(),
                  date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), notebooks=[])
    report["probe"] = probe(env)
    if env:
        report["probe_plain"] = probe({})
    print(markdown(report), flush=True)
    for path in paths:
        row = run_notebook(path.resolve(), args.mode, env, args.save)
        report["notebooks"].append(row)
        print(f"{row['notebook']}: {row['seconds']:.1f} s" + (f"  FAILED {row['error']}" if row["error"] else ""),
              flush=True)
    text = markdown(report)
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        args.out.with_suffix(".md").write_text(text)
    return 1 if any(r["error"] for r in report["notebooks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
