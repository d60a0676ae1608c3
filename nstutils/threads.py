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
that stays costs little, and one that leaves is noticed soon). The thread count is restored when the run ends.
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
THREAD_SETTINGS = ("auto",)  # besides a whole number of threads


def check_threads(threads) -> int | str:
    """Return ``threads`` ("auto" or a whole number >= 1), or raise ValueError naming the fix."""
    if threads == "auto" or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        return threads
    raise ValueError(f"threads must be 'auto' or a whole number >= 1, got {threads!r}")


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
    _begun: float = 0.0
    _step: tuple[float, float] = (0.0, 0.0)  # clock and CPU clock at start()
    _window: tuple[float, float] = (0.0, 0.0)  # wall and CPU seconds measured so far
    _reduced_at: float | None = None
    _probing: bool = False
    _wait: float = PROBE_SECONDS

    def __post_init__(self):
        self.threads = self.max_threads
        self._begun = self.clock()

    def start(self) -> None:
        """Mark the start of a step."""
        self._step = (self.clock(), self.cpu_clock())

    def stop(self) -> int:
        """Mark the end of a step; return the threads for the next (torch's count is set)."""
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
        return self.threads


@contextmanager
def governed(threads: int | str, device) -> Iterator[ThreadGovernor | None]:
    """Run the body with ``threads`` CPU threads; yield the governor of "auto" (None otherwise).

    "auto" starts with torch's current count (a governor only when it is above 1); a number
    sets that count. Off the CPU nothing changes. torch's count is restored on the way out,
    whatever happens in the body (the thread count is process-wide: a notebook's later cells
    must not inherit a run's choice).
    """
    before = torch.get_num_threads()
    if torch.device(device).type != "cpu":
        yield None
        return
    if threads != "auto" and threads != before:
        torch.set_num_threads(threads)
    try:
        yield ThreadGovernor(before) if threads == "auto" and before > 1 else None
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
