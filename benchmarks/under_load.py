"""How much slower the default run gets when another CPU-bound process shares the machine.

    python benchmarks/under_load.py                  # 512 px, quiet then beside one busy loop
    python benchmarks/under_load.py --threads 2 auto # before/after: torch's fixed 2 threads, then "auto"
    python benchmarks/under_load.py --size 256 --competitors 1 2
    python benchmarks/under_load.py --env OMP_WAIT_POLICY=PASSIVE --env OMP_NUM_THREADS=1
    python benchmarks/under_load.py --threads auto 1 --own-session  # busy loops in a session of their own

Each measurement is a fresh process that runs the default ``nu.stylize`` (Tübingen x The Starry
Night) and prints its seconds and the CPU time it got; "loaded" runs start N competing processes
first (each a Python busy loop, as a browser or another kernel would be) and stop them after.
Where the system shares the cores matters: by default the busy loops run in this session, so the
scheduler shares the cores among all threads (as for a job started from the same terminal or
kernel); ``--own-session`` starts them in a new session, which Linux's autogroup scheduling
treats as another program and gives an equal share whatever its thread count (as for a browser
started from the desktop).
Thread counts and OpenMP's wait policy are read once when torch loads its OpenMP runtime, so a
setting can only be compared in a fresh process: ``--env`` passes it to the measured run.
``--threads`` runs the whole comparison once per setting of ``stylize(threads=...)`` (a number,
or "auto": see nstutils.threads). The report gives each ratio loaded / quiet, and loaded / the
first setting's quiet time, all measured in this one invocation, with the CPU and load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent

CHILD = """
import json, resource, sys, time
import nstutils as nu
from nstutils.course import find_data
data = find_data({here!r})
c = nu.load_image(data / "content/tubingen_neckarfront.jpg", max_side={size})
s = nu.load_image(data / "style/van_gogh_starry_night.jpg", max_side={size})
ex = nu.VGGFeatures(nu.load_vgg19(), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
result = nu.stylize(c, s, ex, threads={threads!r})
r1 = resource.getrusage(resource.RUSAGE_SELF)
import torch
print(json.dumps(dict(seconds=time.perf_counter() - t0, cpu=(r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
                      threads=torch.get_num_threads(), precision=result.params["precision"], loss=result.loss["total"],
                      thread_changes=result.params.get("thread_changes"))))
"""


@contextmanager
def busy_loops(n: int, own_session: bool = False) -> Iterator[None]:
    """Run the body beside ``n`` Python busy loops (in a session of their own with ``own_session``)."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=own_session)
            for _ in range(n)]
    try:
        time.sleep(0.5 if busy else 0)  # let the competitors get going
        yield
    finally:
        for p in busy:
            p.kill()
            p.wait()


def run_once(size: int, competitors: int, env: dict[str, str], threads="auto", own_session=False) -> dict:
    """One default run in a fresh process, beside ``competitors`` busy loops; its JSON line."""
    with busy_loops(competitors, own_session):
        code = CHILD.format(here=str(HERE), size=size, threads=threads)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(competitors=competitors, cpu_share=row["cpu"] / row["seconds"])
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="longer side in pixels (default 512)")
    ap.add_argument("--competitors", type=int, nargs="*", default=[1], help="busy loops per loaded run")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of the measured runs (repeatable)")
    ap.add_argument("--threads", nargs="+", default=["auto"], type=lambda v: v if v == "auto" else int(v),
                    help="stylize(threads=...) settings to compare, each quiet and loaded (default: auto)")
    ap.add_argument("--own-session", action="store_true",
                    help="start the busy loops in a session of their own (another program, to the scheduler)")
    args = ap.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.env)
    sys.path.insert(0, str(HERE))
    from bench import machine  # the same CPU description as bench.py

    here = machine()
    print(f"machine: {here}; env {env or 'default'}; busy loops in "
          f"{'their own session' if args.own_session else 'this session'}", flush=True)
    rows, first_quiet = [], None
    for threads in args.threads:
        quiet = run_once(args.size, 0, env, threads)
        first_quiet = first_quiet or quiet["seconds"]
        quiet.update(setting=threads, ratio=1.0, ratio_to_first_quiet=quiet["seconds"] / first_quiet)
        print(f"  threads={threads}: quiet {quiet['seconds']:.1f} s, CPU share {quiet['cpu_share']:.2f} cores, "
              f"{quiet['threads']} threads, {quiet['precision']}, changes {quiet['thread_changes']}", flush=True)
        rows.append(quiet)
        for n in args.competitors:
            row = run_once(args.size, n, env, threads, args.own_session)
            row.update(setting=threads, ratio=row["seconds"] / quiet["seconds"],
                       ratio_to_first_quiet=row["seconds"] / first_quiet)
            rows.append(row)
            print(f"  threads={threads}: beside {n} busy loop(s) {row['seconds']:.1f} s = {row['ratio']:.2f}x "
                  f"its quiet time ({row['ratio_to_first_quiet']:.2f}x the first quiet time), "
                  f"CPU share {row['cpu_share']:.2f} cores, changes {row['thread_changes']}", flush=True)
    (HERE / "results").mkdir(exist_ok=True)
    path = HERE / "results" / f"under_load_{args.size}{'_own_session' if args.own_session else ''}.json"
    path.write_text(json.dumps(dict(machine=here, env=env, own_session=args.own_session, rows=rows), indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
