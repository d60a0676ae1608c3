"""Ctrl-C, ``kill`` and a closed terminal for the command line: one line, exit 130, nothing lost.

:func:`install` (called by the command line only, never on ``import nstutils``) makes SIGTERM
and SIGHUP raise KeyboardInterrupt like Ctrl-C, so ``stylize`` returns the best image so far
whichever of them ends a run, and makes an interrupt that nothing caught (while torch is still
being imported, say) print one line and exit with 130 instead of a traceback (also one that
Python could only report as "Exception ignored in ...").
:func:`deferred` holds interrupts back while a file is written. Standard library only: it
runs before torch is imported.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

EXIT_INTERRUPTED = 130
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class _State:
    """The process's signal state (signals are per process, so this is one object, by design)."""

    installed = False
    deferring = False
    pending: int | None = None  # a signal that came while deferring
    last: str = ""  # name of the last signal received
    debug = False  # show tracebacks of uncaught interrupts too


def _handler(signum, frame) -> None:
    _State.last = signal.Signals(signum).name
    if _State.deferring:
        _State.pending = signum
        return
    raise KeyboardInterrupt(_State.last)


def interrupted_line() -> str:
    """The one line for an interrupt before the first step, naming the signal if one came."""
    return f"interrupted{' by ' + _State.last if _State.last else ''} before the first step; nothing was saved"


def _excepthook(hook):
    def excepthook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt) and not _State.debug:
            sys.stderr.write(interrupted_line() + "\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)  # sys.exit is not allowed inside an excepthook
        hook(kind, value, tb)

    return excepthook


def _unraisablehook(hook):
    def unraisablehook(unraisable) -> None:
        # Python drops an exception raised where it cannot propagate (a weakref callback that
        # importlib runs while releasing a module lock, say) and prints its traceback. A Ctrl-C
        # that lands there is recorded in _State.last all the same, and check() turns it into
        # the one line later: so print nothing for it here.
        if issubclass(unraisable.exc_type, KeyboardInterrupt) and not _State.debug:
            return
        hook(unraisable)

    return unraisablehook


def install(debug: bool = False) -> None:
    """Treat SIGTERM and SIGHUP like Ctrl-C; an uncaught interrupt prints one line, exits 130.

    Signals that the process ignores (``nohup`` ignores SIGHUP) stay ignored. Only in the main
    thread (Python allows signal handlers nowhere else); calling it again changes nothing but
    ``debug``.
    """
    _State.debug = debug or bool(os.environ.get("NSTUTILS_DEBUG"))
    if _State.installed or threading.current_thread() is not threading.main_thread():
        return
    for name in SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) not in (signal.SIG_IGN, None):
            signal.signal(sig, _handler)
    sys.excepthook = _excepthook(sys.excepthook)
    sys.unraisablehook = _unraisablehook(sys.unraisablehook)
    _State.installed = True


def check() -> None:
    """Raise KeyboardInterrupt if a signal came since :func:`install`, even one that was caught.

    An interrupt raised inside a library while it is being imported can be swallowed there (a
    bare ``except:``) or leave a half-imported module behind that fails later with another error
    (we saw "maximum recursion depth exceeded"). The command line calls this before its work
    starts, so such a Ctrl-C still ends the run with one line and exit 130.
    """
    if _State.last:
        raise KeyboardInterrupt(_State.last)


def last_signal() -> str:
    """Return the name of the last signal received ("SIGTERM"), or "" if none."""
    return _State.last


class Held:
    """What :func:`deferred` held back: ``signal`` is the name of the interrupt, or ""."""

    signal: str = ""


@contextmanager
def deferred(raise_after: bool = True):
    """Hold interrupts back inside the block; yield a :class:`Held` that records one that came.

    Used around saving: the result is written whole, then the interrupt takes effect (raised
    as KeyboardInterrupt when the block ends, or only recorded with ``raise_after=False``).
    """
    outer, held = _State.deferring, Held()
    _State.deferring = True
    try:
        yield held
    finally:
        _State.deferring = outer
        if not outer and _State.pending is not None:
            held.signal = signal.Signals(_State.pending).name
            _State.pending = None
            if raise_after:
                raise KeyboardInterrupt(held.signal)
