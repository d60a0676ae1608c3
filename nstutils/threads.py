"""How many CPU threads a run uses: all of them while it gets its cores, fewer while it does not.

torch runs each operation on a team of OpenMP threads that wait for each other when the
operation ends. When another program takes one of the cores (a browser, a second kernel), one
thread of the team is often descheduled and the others spin until it runs again: a run on 2
threads beside one busy process took 2.7x its quiet time (256 px, 2 cores, AVX2, fp32; see
``benchmarks/under_load.py``), while one thread took 1.6x. OpenMP's passive wait policy only
partly helps (1.8x), slows the quiet run by 1.4x, and can only be set before torch loads.

So ``stylize(threads="auto")`` measures the CPU time the run got over each window of whole steps
(at least :data:`WINDOW_SECONDS`): when the run got clearly less than one core per thread, it
drops to the cores it did get; after :data:`PROBE_SECONDS` a reduced run tries all its threads
again and keeps them if it gets them (each failed try doubles the wait, so that a competitor
that stays costs little, and one that leaves is noticed soon).

Results depend on the thread count, bit for bit (a float sum in another order), so a run records
its schedule, [[step, threads], ...] from step 0 (``params["thread_schedule"]``), and
``stylize(threads=schedule)`` replays it: that is how :func:`nstutils.provenance.rerun` stays
exact. torch's thread count is restored when the run ends.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

WINDOW_SECONDS = 1.0  # a measurement covers whole steps and at least this much wall time
PROBE_SECONDS = 15.0  # a reduced run tries all its threads again after this long, then
MAX_PROBE_SECONDS = 120.0  # ... twice as long after each try that failed, up to this
SHARE_MARGIN = 0.5  # cores short of one per thread before the run counts as crowded


def _count(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1


def check_threads(threads):
    """Return ``threads`` checked: "auto", a whole number >= 1, or a schedule as a list of
    [step, threads] pairs from step 0, steps increasing; else raise ValueError naming the fix."""
    if threads == "auto" or _count(threads):
        return threads
    if isinstance(threads, (list, tuple)) and threads:
        pairs = [list(p) if isinstance(p, (list, tuple)) else p for p in threads]
        steps = [p[0] if isinstance(p, list) and len(p) == 2 else None for p in pairs]
        if (all(isinstance(p, list) and len(p) == 2 and _count(p[1]) for p in pairs) and steps[0] == 0
                and all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
                and all(a < b for a, b in zip(steps, steps[1:]))):
            return [[int(s), int(n)] for s, n in pairs]
    raise ValueError(f"threads must be 'auto', a whole number >= 1 or a schedule [[0, n], [step, n], ...], "
                     f"got {threads!r}")


@dataclass
class ThreadGovernor:
    """Chooses the thread count of one run, step by step (state private to that run).

    The run calls ``start()`` before each optimizer step and ``stop()`` after it, so that only
    the steps are measured (not a callback drawing a picture on one thread). Once the measured
    steps add up to WINDOW_SECONDS, share = (CPU seconds of the process) / (wall seconds) over
    them; with t threads and share < t - SHARE_MARGIN it sets t = max(1, round(share)); a reduced
    run tries ``max_threads`` again after PROBE_SECONDS, doubled after each failed try (at most
    MAX_PROBE_SECONDS). The clocks and ``set_threads`` are injectable for tests.
    """

    max_threads: int
    clock: Callable[[], float] = time.perf_counter
    cpu_clock: Callable[[], float] = time.process_time
    set_threads: Callable[[int], None] = torch.set_num_threads
    threads: int = 0
    changes: list[tuple[float, int]] = field(default_factory=list)  # (seconds into the run, threads)
    schedule: list[list[int]] = field(default_factory=list)  # [[step, threads], ...] from step 0
    _begun: float = 0.0
    _step: tuple[float, float] = (0.0, 0.0)  # clock and CPU clock at start()
    _window: tuple[float, float] = (0.0, 0.0)  # wall and CPU seconds measured so far
    _reduced_at: float | None = None
    _probing: bool = False
    _wait: float = PROBE_SECONDS

    def __post_init__(self):
        self.threads = self.max_threads
        self._begun = self.clock()
        self.schedule = [[0, self.max_threads]]

    def start(self) -> None:
        """Mark the start of a step."""
        self._step = (self.clock(), self.cpu_clock())

    def stop(self, step: int = 0) -> int:
        """Mark the end of step ``step`` (1, 2, ...); return the threads for the next (torch's count is set)."""
        now = self.clock()
        wall = self._window[0] + now - self._step[0]
        cpu = self._window[1] + self.cpu_clock() - self._step[1]
        if wall < WINDOW_SECONDS:
            self._window = (wall, cpu)
            return self.threads
        self._window = (0.0, 0.0)
        share, wanted = cpu / wall, self.threads
        if self.threads > 1 and share < self.threads - SHARE_MARGIN:
            if self._probing:  # the cores are still taken: wait longer before the next try
                self._wait = min(2 * self._wait, MAX_PROBE_SECONDS)
            wanted, self._reduced_at = max(1, round(share)), now
        elif self._reduced_at is not None and now - self._reduced_at >= self._wait:
            wanted, self._reduced_at = self.max_threads, None
        elif self._probing:  # the try kept its cores: the competitor has gone
            self._wait = PROBE_SECONDS
        self._probing = wanted == self.max_threads and self._reduced_at is None and wanted != self.threads
        if wanted != self.threads:
            self.threads = wanted
            self.set_threads(wanted)
            self.changes.append((round(now - self._begun, 1), wanted))
            self.schedule.append([step, wanted])
        return self.threads


@dataclass
class ThreadReplay:
    """Replays a recorded schedule [[step, threads], ...]: the count of step k + 1 is set after step k."""

    schedule: list[list[int]]
    set_threads: Callable[[int], None] = torch.set_num_threads

    def start(self) -> None:
        pass

    def reset(self, step: int) -> int:
        """Set the count that follows step ``step`` (0: the first), whatever was set before; return it."""
        count = [n for s, n in self.schedule if s <= step][-1]
        self.set_threads(count)
        return count

    def stop(self, step: int = 0) -> int:
        counts = [n for s, n in self.schedule if s <= step]
        if any(s == step for s, _ in self.schedule[1:]):
            self.set_threads(counts[-1])
        return counts[-1]


@contextmanager
def governed(threads, device) -> Iterator[ThreadGovernor | ThreadReplay | None]:
    """Run the body with ``threads`` CPU threads; yield what steers them step by step.

    "auto" starts with torch's current count and yields a ThreadGovernor (None when that count
    is 1); a number sets that count (None); a schedule sets its first count and yields a
    ThreadReplay. Off the CPU nothing changes (None). torch's count is restored on the way out,
    whatever happens in the body (it is process-wide: a notebook's later cells must not
    inherit a run's choice).
    """
    before = torch.get_num_threads()
    if torch.device(device).type != "cpu":
        yield None
        return
    first = threads if isinstance(threads, int) else threads[0][1] if isinstance(threads, list) else before
    if first != before:
        torch.set_num_threads(first)
    try:
        if threads == "auto":
            yield ThreadGovernor(before) if before > 1 else None
        else:
            yield ThreadReplay(threads) if isinstance(threads, list) else None
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
