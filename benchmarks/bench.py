"""Benchmark nstutils.stylize against a textbook Gatys et al. loop, on this machine, in one run.

    python benchmarks/bench.py            # the full benchmark (about 40 min on a 2-core CPU)
    python benchmarks/bench.py --quick    # a smoke run of every section (a few minutes)
    python benchmarks/bench.py --only ratio   # section 0 alone (about 3 min on an AVX2 laptop CPU)

Reports, as medians and as ratios (baseline / ours), written to benchmarks/results/:
0. the default run at 512 px in textbook-step times (its seconds / the median seconds of one
   baseline step, both measured here, in this run) and the loss of the PNG it saves;
1. seconds per optimizer step at 256, 512 and 1024 px;
2. time to quality: how long ours takes to reach the loss the baseline reaches after 300 steps
   at 512 px (both images scored by the same fp32, full-resolution loss);
3. peak resident memory at 512, 1024 and 2048 px (a fresh process per measurement);
4. the GFLOP/s of one forward+backward of the extractor, and its share of the best rate a plain
   convolution micro-benchmark reaches here.
The baseline is written out below on purpose, the way a course would: same weights, layers and
loss normalization as ours, fp32, contiguous, the network cut after the deepest layer, targets
computed once, torch.optim.LBFGS(max_iter=1, line_search_fn="strong_wolfe"), one step per call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import nstutils as nu
from nstutils.course import find_data
from nstutils.device import choose_precision, cpu_flags
from nstutils.layers import LAYER_INDEX
from nstutils.pyramid import resize

D = nu.DEFAULTS
LAYERS = (*D.content_layers, *D.style_layers)
WEIGHTS = dict(content_weight=D.content_weight, style_weight=D.style_weight, tv_weight=D.tv_weight)
HERE = Path(__file__).resolve().parent
SECTIONS = ("ratio", "steps", "quality", "memory", "flops")  # the four measurements, in the order they run


# ----------------------------------------------------------------------------- the baseline
class TextbookVGG(torch.nn.Module):
    """VGG19 cut after the deepest layer used, returning the named activations (fp32)."""

    def __init__(self, vgg: nu.VGG19):
        super().__init__()
        depth = 1 + max(LAYER_INDEX[n] for n in LAYERS)
        self.net = vgg.features[:depth].eval().requires_grad_(False)
        self.wanted = {LAYER_INDEX[n]: n for n in LAYERS}

    def forward(self, img):
        x = nu.preprocess(img, "caffe").contiguous()
        out = {}
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in self.wanted:
                out[self.wanted[i]] = x
        return out


def baseline_stylize(content, style, vgg, steps, on_step=None):
    """The textbook loop: L-BFGS(max_iter=1, strong Wolfe), one .step() per step, fp32."""
    net = TextbookVGG(vgg)
    with torch.no_grad():
        p = {n: f for n, f in net(content).items() if n in D.content_layers}
        a = {n: nu.gram(f) for n, f in net(style).items() if n in D.style_layers}
    wc, ws = nu.relative_weights(p), nu.relative_weights(a)
    img = content.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([img], lr=1.0, max_iter=1, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f = net(img)
        c = sum(w * torch.mean((f[n] - p[n]) ** 2) for n, w in wc.items())
        s = sum(w * torch.mean((nu.gram(f[n]) - a[n]) ** 2) for n, w in ws.items())
        loss = D.content_weight * c + D.style_weight * s + D.tv_weight * nu.tv_loss(img)
        loss.backward()
        return loss

    for step in range(1, steps + 1):
        opt.step(closure)
        if on_step is not None:
            on_step(step, img.detach())
    return img.detach().clamp(0, 1)


# ----------------------------------------------------------------------------- helpers
def images(side, content="tubingen_neckarfront", style="van_gogh_starry_night"):
    """The photo and painting (names of data/content and data/style files without .jpg) at ``side`` px."""
    data = find_data(HERE)
    return (nu.load_image(data / "content" / f"{content}.jpg", max_side=side),
            nu.load_image(data / "style" / f"{style}.jpg", max_side=side))


def scorer(content, style, extractor):
    """The one loss both methods are judged by: fp32, full resolution, the default weights."""
    targets = nu.make_targets(extractor, content, style, content_layers=D.content_layers,
                              style_layers=D.style_layers)

    def score(img):
        with torch.no_grad():
            return float(nu.loss_terms(img, extractor, targets, **WEIGHTS)["total"])
    return score


def saved_loss(image, score) -> float:
    """``score`` of ``image`` as a PNG file holds it (8 bits per value): what a saved result scores."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.png"
        nu.save_image(image, path)
        return score(nu.load_image(path))


def step_times(run, warmup):
    """Run ``run(on_step)`` and return the seconds between consecutive steps after ``warmup``."""
    stamps = []
    run(lambda *_: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return gaps[warmup:]


# ----------------------------------------------------------------------------- sections
def default_ratio(vgg, extractor, side, textbook_steps):
    """The default run's seconds in textbook-step times, and the fp32 loss of the PNG it saves.

    One baseline step and the default ``nu.stylize`` (precision "auto") are timed in the same
    run, so the ratio holds across machines of one class even when the seconds do not.
    """
    content, style = images(side)
    step = statistics.median(step_times(lambda cb: baseline_stylize(content, style, vgg, textbook_steps, cb), 1))
    start = time.perf_counter()
    result = nu.stylize(content, style, extractor)
    seconds = time.perf_counter() - start
    path = HERE / "results" / f"default_{side}.png"
    nu.save_image(result.image, path)
    loss = scorer(content, style, extractor)(nu.load_image(path))
    out = dict(side=side, textbook_step=step, default_seconds=seconds, ratio=seconds / step, loss=loss,
               level_steps=result.params["level_steps"], precision=result.params["precision"])
    print(f"  textbook step {step:.2f} s; default run {seconds:.1f} s = {out['ratio']:.1f} textbook steps; "
          f"loss of the saved PNG {loss:.4f}", flush=True)
    return out


def seconds_per_step(vgg, extractor, sides, steps):
    rows = []
    for side in sides:
        content, style = images(side)
        base = step_times(lambda cb: baseline_stylize(content, style, vgg, steps, cb), 1)
        ours = step_times(lambda cb: nu.stylize(content, style, extractor, steps=steps, pyramid=False,
                                                callback=lambda info: cb()), 1)
        row = dict(side=side, pixels=content.shape[-2] * content.shape[-1],
                   baseline=statistics.median(base), ours=statistics.median(ours))
        row["speedup"] = row["baseline"] / row["ours"]
        rows.append(row)
        print(f"  {side:5d} px: baseline {row['baseline']:.3f} s/step, ours {row['ours']:.3f} s/step, "
              f"{row['speedup']:.2f}x", flush=True)
    return rows


def time_to_quality(vgg, extractor, side, base_steps, max_extra, every, reuse=None):
    """Seconds until ours reaches the fp32 loss that the baseline reaches after ``base_steps``.

    Ours is what a learner runs: the default stylize (coarse-to-fine), then, if that is not yet
    as low, continued at full size (init=its result) until it is. Scoring every ``every`` steps
    is done inside a callback whose own time is taken off the clock. ``reuse``: a previous
    run's "quality" entry, to skip the baseline's (long) run.
    """
    content, style = images(side)
    score = scorer(content, style, nu.VGGFeatures(vgg, layers=LAYERS))
    if reuse:
        base_seconds, target = reuse["baseline_seconds"], reuse["baseline_loss"]
        print(f"  baseline (from the previous run): {base_steps} steps in {base_seconds:.1f} s, "
              f"loss {target:.4f}", flush=True)
    else:
        start = time.perf_counter()
        base_img = baseline_stylize(content, style, vgg, base_steps)
        base_seconds = time.perf_counter() - start
        target = score(base_img)
        nu.save_image(base_img, HERE / "results" / f"baseline_{side}.png")
        print(f"  baseline: {base_steps} steps in {base_seconds:.1f} s, loss {target:.4f}", flush=True)
    first = nu.stylize(content, style, extractor)
    curve = [(len(first.history), first.seconds, score(first.image))]
    print(f"  ours, defaults ({len(first.history)} steps, {first.params['level_steps']}): "
          f"{first.seconds:.1f} s, loss {curve[0][2]:.4f}", flush=True)
    reached, image, off = (curve[0] if curve[0][2] <= target else None), first.image, [0.0]

    def check(info):
        if info.step % every:
            return False
        t0 = time.perf_counter()
        loss = score(info.image)
        off[0] += time.perf_counter() - t0
        curve.append((curve[0][0] + info.step, first.seconds + info.record.seconds - off[0], loss))
        return loss <= target

    if reached is None:
        more = nu.stylize(content, style, extractor, init=first.image, steps=max_extra, callback=check)
        image = more.image
        if curve[-1][2] <= target:
            reached = curve[-1]
    out = dict(side=side, baseline_steps=base_steps, baseline_seconds=base_seconds, baseline_loss=target,
               default_steps=len(first.history), default_seconds=first.seconds, default_loss=curve[0][2],
               level_steps=first.params["level_steps"], curve=curve, reached=reached,
               our_steps=curve[-1][0], our_seconds=curve[-1][1])
    if reached:
        out["share"] = reached[1] / base_seconds
        print(f"  ours reached {reached[2]:.4f} at step {reached[0]} after {reached[1]:.1f} s: "
              f"{100 * out['share']:.0f}% of the baseline's time", flush=True)
    else:
        print(f"  ours did not reach {target:.4f} in {curve[-1][0]} steps ({curve[-1][1]:.1f} s)", flush=True)
    nu.save_image(first.image, HERE / "results" / f"ours_default_{side}.png")
    nu.save_image(image, HERE / "results" / f"ours_{side}.png")
    return out


def peak_memory(method, side, steps):
    """Peak resident memory (bytes) of one run in a fresh process."""
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import bench; "
            f"bench._memory_child({method!r}, {side}, {steps})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memory_child(method, side, steps):
    content, style = images(side)
    vgg = nu.load_vgg19()
    if method == "baseline":
        baseline_stylize(content, style, vgg, steps)
        est = None
    else:
        ex = nu.VGGFeatures(vgg, layers=LAYERS)
        r = nu.stylize(content, style, ex, steps=steps)
        est = nu.estimate_memory(tuple(content.shape[-2:]), layers=LAYERS, precision=r.params["precision"],
                                 steps=r.params["level_steps"][-1], conv=r.params["conv"])
    print(json.dumps(dict(method=method, side=side, steps=steps, peak=peak_rss(), estimate=est)))


def peak_rss() -> int:
    """Peak resident memory of this process, in bytes.

    Linux: VmHWM of /proc/self/status, the peak of this process image alone. (ru_maxrss is not:
    it survives exec, so a child started from a large parent reports the parent's size.)
    Elsewhere: ru_maxrss (KiB on Linux, bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def flop_rate(once, repeats):
    """Return (FLOPs of one call of ``once``, FLOP/s as the median over ``repeats`` warm calls)."""
    with FlopCounterMode(display=False) as counter:
        once()
    flops = counter.get_total_flops()
    once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return flops, flops / statistics.median(times)


def flops_section(extractor, side, precision, repeats):
    content, style = images(side)
    targets = nu.make_targets(extractor, content, style, content_layers=D.content_layers,
                              style_layers=D.style_layers)
    img = content.clone().requires_grad_(True)

    def once():
        t = nu.loss_terms(img, lambda x, layers: extractor(x, layers, precision=precision), targets, **WEIGHTS)
        t["total"].backward()

    flops, rate = flop_rate(once, repeats)
    micro = conv_micro(side, precision, repeats)
    print(f"  {precision}: {flops / 1e9:.1f} GFLOP per forward+backward, {rate / 1e9:.1f} GFLOP/s; "
          f"best plain conv {micro['best'] / 1e9:.1f} GFLOP/s ({micro['best_shape']}): "
          f"{100 * rate / micro['best']:.0f}%", flush=True)
    return dict(side=side, precision=precision, gflop=flops / 1e9, gflops=rate / 1e9,
                micro=micro, share=rate / micro["best"])


def conv_micro(side, precision, repeats):
    """The best GFLOP/s of one 3x3 convolution's forward+backward (input gradient) among VGG's shapes."""
    h, w = side * 3 // 4, side
    best, best_shape, rates = 0.0, None, {}
    for c, f in ((64, 1), (128, 2), (256, 4), (512, 8)):
        x = torch.randn(1, c, h // f, w // f, requires_grad=True)
        conv = torch.nn.Conv2d(c, c, 3, padding=1).requires_grad_(False)

        def once():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                y = conv(x)
            y.float().sum().backward()

        _, rate = flop_rate(once, repeats)
        shape = f"{c}ch {h // f}x{w // f}"
        rates[shape] = rate / 1e9
        if rate > best:
            best, best_shape = rate, shape
    return dict(best=best, best_shape=best_shape, rates=rates)


def plot(rows, path, m):
    """Seconds per step against the image size (log-log), titled with the machine ``m``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter
    fig, ax = plt.subplots(figsize=(5, 3.5))
    px = [r["pixels"] for r in rows]
    ax.loglog(px, [r["baseline"] for r in rows], "o-", label="textbook baseline (fp32)")
    ax.loglog(px, [r["ours"] for r in rows], "s-", label=f"nstutils.stylize ({m['precision']})")
    # Ticks at the measured sizes, named by their longer side: log-scale minor labels overlap.
    ax.set_xticks(px, [f"{r['side']} px" for r in rows])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("image (longer side; pixels grow as its square)")
    ax.set_ylabel("seconds per step")
    ax.set_title(f"{m['cpu']}, {m['cores']} cores", fontsize=9)
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(out) -> str:
    """The README's table of the latest figures."""
    m = out["machine"]
    isa = f", ONEDNN_MAX_CPU_ISA={m['onednn_max_cpu_isa']}" if m.get("onednn_max_cpu_isa") else ""
    isa += f", MKL_ENABLE_INSTRUCTIONS={m['mkl_enable_instructions']}" if m.get("mkl_enable_instructions") else ""
    bf16 = "native bf16" if {"avx512_bf16", "amx_bf16"} & set(m.get("flags", ())) and not isa else "no native bf16"
    lines = [f"Measured on {m['cpu']} ({bf16}; flags {' '.join(m.get('flags', ()))}{isa}), {m['cores']} cores, torch {m['torch']}, precision "
             f"{m['precision']} (load average {m['load'][0]:.1f} before, {m['load_after'][0]:.1f} after)."]
    for r in out.get("reruns", []):
        lines.append(f"Rerun later: {', '.join(r['sections'])} ({r['machine']['threads']} threads, "
                     f"load average {r['machine']['load'][0]:.1f}).")
    lines += ["", "| measure | textbook baseline | nstutils | ratio |", "|---|---|---|---|"]
    r = out.get("ratio")
    if r:
        lines.append(f"| the default run ({sum(r['level_steps'])} steps, {r['precision']}), {r['side']} px: "
                     f"seconds, loss of the saved PNG | {r['textbook_step']:.2f} s per step | "
                     f"{r['default_seconds']:.0f} s, {r['loss']:.3f} | {r['ratio']:.1f} textbook steps |")
    for r in out.get("steps", []):
        lines.append(f"| seconds per step, {r['side']} px | {r['baseline']:.2f} | {r['ours']:.2f} | "
                     f"{r['speedup']:.1f}x faster |")
    q = out.get("quality")
    if q:
        lines.append(f"| the default run ({q.get('default_steps', '-')} steps), {q['side']} px: seconds, "
                     f"fp32 loss | | {q.get('default_seconds', 0):.0f} s, {q.get('default_loss', 0):.3f} | |")
        if q["reached"]:
            ours = f"{q['reached'][1]:.0f} s (step {q['reached'][0]})"
            ratio = f"{100 * q['share']:.0f}% of the time"
        else:
            ours, ratio = f"not reached in {q['our_steps']} steps ({q['our_seconds']:.0f} s)", "-"
        lines.append(f"| time to the loss of {q['baseline_steps']} baseline steps, {q['side']} px (loss {q['baseline_loss']:.3f}) "
                     f"| {q['baseline_seconds']:.0f} s | {ours} | {ratio} |")
    mem = {(r["method"], r["side"]): r for r in out.get("memory", [])}
    for side in sorted({s for _, s in mem}):
        b, o = mem.get(("baseline", side)), mem.get(("ours", side))
        est = f" (estimate {o['estimate'] / 2**30:.1f})" if o and o["estimate"] else ""
        lines.append(f"| peak memory, {side} px, GiB | {b['peak'] / 2**30:.2f} | "
                     f"{o['peak'] / 2**30:.2f}{est} | |" if b and o else f"| peak memory, {side} px | | | |")
    for f in out.get("flops", []):
        lines.append(f"| forward+backward at {f['side']} px, {f['precision']} | | {f['gflops']:.0f} GFLOP/s | "
                     f"{100 * f['share']:.0f}% of the best plain convolution ({f['micro']['best'] / 1e9:.0f} GFLOP/s) |")
    return "\n".join(lines) + "\n"


def machine():
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    flags = cpu_flags()
    return dict(cpu=cpu, cores=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__,
                python=platform.python_version(), precision=choose_precision("cpu"),
                flags=[f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags],
                onednn_max_cpu_isa=os.environ.get("ONEDNN_MAX_CPU_ISA"),
                # MKL (torch's matrix products, which Winograd's convolutions run on) has a cap of its own
                mkl_enable_instructions=os.environ.get("MKL_ENABLE_INSTRUCTIONS"),
                load=os.getloadavg() if hasattr(os, "getloadavg") else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few steps: checks that it runs")
    ap.add_argument("--skip", nargs="*", default=(), choices=SECTIONS)
    ap.add_argument("--only", nargs="*", choices=SECTIONS, help="run these sections only")
    ap.add_argument("--reuse-baseline", action="store_true",
                    help="take the baseline's time and loss for section 2 from the last results file")
    ap.add_argument("--merge", action="store_true",
                    help="keep the sections skipped now from the last results file")
    args = ap.parse_args(argv)
    if args.only:
        args.skip = [name for name in SECTIONS if name not in args.only]
    q = args.quick
    (HERE / "results").mkdir(exist_ok=True)
    vgg = nu.load_vgg19()
    extractor = nu.VGGFeatures(vgg, layers=LAYERS)
    path = HERE / "results" / ("quick.json" if q else "latest.json")
    out = json.loads(path.read_text()) if args.merge and path.exists() else {}
    here = machine()
    if "machine" in out:  # --merge: the table keeps the first run's machine; reruns are listed
        rerun = [name for name in SECTIONS if name not in args.skip]
        out.setdefault("reruns", []).append(dict(sections=rerun, machine=here))
    else:
        out["machine"] = here
    out["quick"] = q
    print(f"machine: {here}", flush=True)
    if "ratio" not in args.skip:
        print("0. the default run in textbook steps", flush=True)
        out["ratio"] = default_ratio(vgg, extractor, 128 if q else 512, 3 if q else 4)
    if "steps" not in args.skip:
        print("1. seconds per step", flush=True)
        out["steps"] = seconds_per_step(vgg, extractor, (64, 128) if q else (256, 512, 1024), 4 if q else 6)
        plot(out["steps"], HERE / "results" / ("quick.png" if q else "seconds_per_step.png"), here)
    if "quality" not in args.skip:
        print("2. time to quality", flush=True)
        reuse = json.loads(path.read_text())["quality"] if args.reuse_baseline else None
        out["quality"] = time_to_quality(vgg, extractor, 128 if q else 512, 20 if q else 300,
                                         100 if q else 400, 5, reuse)
    if "memory" not in args.skip:
        print("3. peak memory", flush=True)
        out["memory"] = []
        for side in ((128, 256) if q else (512, 1024, 2048)):
            for method in ("baseline", "ours"):
                m = peak_memory(method, side, 2 if method == "baseline" else 10)
                out["memory"].append(m)
                est = f" (estimated {m['estimate'] / 2**30:.2f} GiB)" if m["estimate"] else ""
                print(f"  {side:5d} px {method:8s}: {m['peak'] / 2**30:.2f} GiB{est}", flush=True)
    if "flops" not in args.skip:
        print("4. GFLOP/s", flush=True)
        out["flops"] = [flops_section(extractor, 128 if q else 512, p, 3 if q else 5)
                        for p in sorted({"fp32", choose_precision("cpu")})]
    here["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    path.write_text(json.dumps(out, indent=1))
    table = markdown(out)
    path.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
