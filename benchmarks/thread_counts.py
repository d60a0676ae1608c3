"""Seconds and CPU share of the same steps on 1, 2, 3... threads, quiet and beside a busy loop.

    python benchmarks/thread_counts.py                          # 512 px, 5 steps, threads 2 1 3
    python benchmarks/thread_counts.py --size 128 --steps 40
    python benchmarks/thread_counts.py --own-session            # the busy loop in a session of its own

What ``stylize(threads="auto")`` chooses between when another program takes a core (see
nstutils.threads): the same ``--steps`` L-BFGS steps at one size (no pyramid, fp32 or bf16 as
"auto" chooses), timed at each thread count, first quiet, then beside one busy loop, ``--reps``
times, all in this one process. torch's thread count can change between runs (GNU OpenMP resizes
its team), so unlike ``under_load.py`` no fresh process is needed. Each row gives the seconds,
the CPU share (CPU seconds over wall seconds, in cores) and the ratio to the quiet time on
torch's own thread count measured in the same repetition. ``--own-session`` starts the busy loop
in a new session: see under_load.py for why that changes how the cores are shared.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

import nstutils as nu
from nstutils.course import find_data

HERE = Path(__file__).resolve().parent


def timed(fn) -> tuple[float, float]:
    """Run ``fn()``; return (wall seconds, CPU share in cores)."""
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn()
    seconds, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return seconds, cpu / seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="longer side in pixels (default 512)")
    ap.add_argument("--steps", type=int, default=5, help="L-BFGS steps per measurement (default 5)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1, 3], help="thread counts (default 2 1 3)")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of the whole comparison (default 2)")
    ap.add_argument("--own-session", action="store_true",
                    help="start the busy loop in a session of its own (another program, to the scheduler)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from bench import machine
    from under_load import busy_loops

    here, own = machine(), torch.get_num_threads()
    print(f"machine: {here}; busy loop in {'its own session' if args.own_session else 'this session'}", flush=True)
    data = find_data(HERE)
    content = nu.load_image(data / "content/tubingen_neckarfront.jpg", max_side=args.size)
    style = nu.load_image(data / "style/van_gogh_starry_night.jpg", max_side=args.size)
    ex = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))

    def run(threads, steps=args.steps):
        return nu.stylize(content, style, ex, steps=steps, pyramid=False, threads=threads)

    run(own, 2)  # warm up: the first run builds oneDNN's kernels
    rows = []
    for rep in range(args.reps):
        quiet_own = None
        for loaded in (0, 1):
            with busy_loops(loaded, args.own_session):
                for n in args.threads:
                    seconds, share = timed(lambda: run(n))
                    if not loaded and n == own:
                        quiet_own = seconds
                    rows.append(dict(rep=rep, loaded=loaded, threads=n, seconds=seconds, cpu_share=share))
        for row in rows:
            if row["rep"] == rep and quiet_own:
                row["ratio_to_quiet_own"] = row["seconds"] / quiet_own
                print(f"  rep {rep}, {'beside a busy loop' if row['loaded'] else 'quiet':18s} {row['threads']} threads: "
                      f"{row['seconds']:6.1f} s ({row['ratio_to_quiet_own']:.2f}x quiet on {own}), "
                      f"CPU share {row['cpu_share']:.2f} cores", flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    tag = ("_own_session" if args.own_session else "") + ("_bf16" if here["precision"] == "bf16" else "")
    path = HERE / "results" / f"thread_counts_{args.size}{tag}.json"
    path.write_text(json.dumps(dict(machine=here, size=args.size, steps=args.steps, own_session=args.own_session,
                                    rows=rows), indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
