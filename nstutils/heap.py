"""Keep a run's freed memory in the process, so that each evaluation does not map its pages again.

glibc's ``malloc`` serves large blocks (above 128 KB, a threshold it raises up to 32 MB) with a
fresh ``mmap`` and returns them to the system when they are freed. One evaluation at 512 px
allocates dozens of such blocks (a 64-channel activation at 384 x 512 is 50 MB), every time: the
kernel then zeroes and maps each 4 KB page again at its first touch, and in a virtual machine
(Colab's runtimes, a cloud VM) each of those page faults costs more still. On a 2-core AMD EPYC
(AVX2, KVM), a fresh 50 MB ``torch.zeros`` took 19 ms against 2 ms for one that reused memory, and
6 full-size L-BFGS steps took 1.27-1.33x less time with memory kept (1.02-1.15x with the direct
convolution, which allocates fewer blocks than Winograd's bands; ``benchmarks/heap.py``).

:func:`kept_heap` turns both off for the duration of a run (``mallopt``: no ``mmap`` for any
block, no trimming of the heap), then sets glibc's defaults back and returns the free memory to
the system (``malloc_trim``). The peak memory grows, since a freed block amid the heap does not
always fit a larger request: by about 10% at 512 px (1.46 against 1.32 GB) and 26% at 1024 px
(3.39 against 2.70 GB, above the 3.00 GB that :func:`nstutils.estimate_memory` gives). So
``stylize`` keeps the heap only with room to spare (:func:`room_to_keep`). It does nothing where the
C library is not glibc (macOS, Windows, musl), and nothing when the user has set glibc's malloc
variables themselves (``MALLOC_*``, or ``glibc.malloc`` in ``GLIBC_TUNABLES``): their choice
stands. The settings are the process's, not the run's: hence the count of runs inside, so that
runs in two threads (a notebook and its playground) leave them set until the last one ends.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from contextlib import contextmanager
from typing import Iterator

# mallopt's parameter numbers and glibc's defaults for them (malloc.h; glibc 2.x)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
NO_TRIM = -1  # mallopt(M_TRIM_THRESHOLD, -1): never give the top of the heap back

# The kept heap's peak exceeded the plain one's by 10% at 512 px and 26% at 1024 px (fp32, Winograd;
# 3.39 GB against an estimate of 3.00 GB there): a run keeps its heap only with this much room
# over the estimate, so that the speed never costs a run the memory it needs.
ROOM = 1.5

_lock = threading.Lock()
_runs = 0  # runs inside kept_heap now: the settings are process-wide, so the last one out restores them


def _glibc():
    """Return the C library when it is glibc and the user left its malloc settings alone, else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    if any(k.startswith("MALLOC_") for k in os.environ) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def room_to_keep(need: int, limit: int | None) -> bool:
    """Whether a run estimated to need ``need`` bytes may keep its heap, with ``limit`` bytes free
    (None: unknown, so no): ``need * ROOM <= limit``."""
    return limit is not None and need * ROOM <= limit


@contextmanager
def kept_heap(libc=None) -> Iterator[bool]:
    """Run the body with freed memory kept in the process; yield whether that was set.

    ``libc``: the C library to call (tests pass a stand-in); None finds glibc or does nothing.
    glibc's defaults are set back on the way out, whatever happens in the body, once the last
    run that is inside this context leaves it.
    """
    global _runs
    libc = _glibc() if libc is None else libc
    if libc is None:
        yield False
        return
    with _lock:
        if _runs == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, NO_TRIM)
        _runs += 1
    try:
        yield True
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
