"""How many CPU threads a run uses: all of them while it gets its cores; when it does not, one
more than the cores or fewer than them, whichever gets more CPU time.

torch runs each operation on a team of OpenMP threads that wait for each other when the
operation ends. When another program takes one of the cores (a browser, a second kernel), one
thread of the team is often descheduled and the others spin until it runs again: a run on 2
threads beside one busy process took 2.7x its quiet time (256 px, 2 cores, AVX2, fp32; see
``benchmarks/under_load.py``), while one thread took 1.6x. OpenMP's passive wait policy only
partly helps (1.8x), slows the quiet run by 1.4x, and can only be set before torch loads.

What helps depends on how the system shares the cores. Where it shares them among threads
(one scheduler queue for both programs: a competitor started from the same terminal or
kernel), a team of one thread more than the cores gets more of them (3 threads beside one busy
loop on 2 cores: 1.33 cores, against 1.21 for 2 threads and 1.0 for one), and GNU OpenMP, seeing
more threads than cores, spins only briefly before it sleeps: 512 px steps took 1.26-1.45x their
quiet time on 2 threads, against 1.59-1.91x on one thread (``benchmarks/thread_counts.py``).
Where it shares them among programs (Linux's autogroup gives each login session an equal share:
a browser started from the desktop), the run gets one core whatever its thread count (512 px:
3 threads took 1.03x the time of one). The governor tells the two apart by measuring.

So ``stylize(threads="auto")`` measures the CPU time the run got over each window of whole steps
(at least :data:`WINDOW_SECONDS`): when the run got clearly less than one core per thread, it
tries one thread more than its cores for a window and keeps that if it got clearly more CPU
time than the cores it got before (:data:`MORE_MARGIN`); otherwise it drops to those cores.
After :data:`PROBE_SECONDS` it tries its own thread count again and keeps it if it gets its
cores (each failed try doubles the wait, so that a competitor that stays costs little, and one
that leaves is noticed soon).

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
PROBE_SECONDS = 15.0  # a run off its own count (fewer or one more) tries it again after this long, then
MAX_PROBE_SECONDS = 120.0  # ... twice as long after each try that failed, up to this
SHARE_MARGIN = 0.5  # cores short of one per thread before the run counts as crowded
MORE_MARGIN = 0.1  # cores above the fallback that one thread more than the cores must get to stay


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
    them. On t <= ``max_threads`` threads with share < t - SHARE_MARGIN the run is crowded: with
    t = ``max_threads`` it runs the next window on t + 1 threads and keeps them if that window's
    share is at least max(1, round(share)) + MORE_MARGIN, else it sets that count; below
    ``max_threads`` it sets that count directly. A changed run tries ``max_threads`` again after
    PROBE_SECONDS, doubled after each failed try (at most MAX_PROBE_SECONDS). The clocks and
    ``set_threads`` are injectable for tests.
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
    _changed_at: float | None = None  # when the run left max_threads (None: it runs on them)
    _fallback: int | None = None  # set while a window runs on max_threads + 1: the count if that fails
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
        if self._fallback is not None:  # this window ran on one thread more than the cores
            if share < self._fallback + MORE_MARGIN:  # no more CPU time than the fallback gets
                wanted = self._fallback
            self._fallback = None
        elif 1 < self.threads <= self.max_threads and share < self.threads - SHARE_MARGIN:
            if self._probing:  # the cores are still taken: wait longer before the next try
                self._wait = min(2 * self._wait, MAX_PROBE_SECONDS)
            wanted, self._changed_at = max(1, round(share)), now
            if self.threads == self.max_threads:
                self._fallback, wanted = wanted, self.max_threads + 1
        elif self._changed_at is not None and now - self._changed_at >= self._wait:
            wanted, self._changed_at = self.max_threads, None
        elif self._probing:  # the try kept its cores: the competitor has gone
            self._wait = PROBE_SECONDS
        self._probing = wanted == self.max_threads and self._changed_at is None and wanted != self.threads
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
