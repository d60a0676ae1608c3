"""Run ``stylize`` one job at a time, in the caller's thread or in a background thread.

The logic behind the playground (notebooks/06_playground.ipynb), kept free of ipywidgets so it
can be tested and used from a script: :class:`Settings` holds every choice the learner makes,
:class:`Runner` guarantees that only one run is active and stops it through a
``threading.Event`` that the stylize callback reads ("return True to stop").
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .optimize import DEFAULT_LR, DEFAULTS, StepInfo
from .progress import seconds_left

INIT_PREVIOUS = "previous"
"""The init choice that starts from an earlier result instead of content, noise or style."""


@dataclass(frozen=True)
class Settings:
    """One run's settings, as chosen in the playground. Defaults come from ``nu.DEFAULTS``.

    content, style: names of the chosen images; size: longer side of the result in pixels;
    style_layers: the ticked style layers with their relative weights, ((name, weight), ...);
    init: "content", "noise", "style" or "previous" (an earlier result).
    """

    content: str = ""
    style: str = ""
    size: int = 256
    content_weight: float = DEFAULTS.content_weight
    style_weight: float | str = DEFAULTS.app_style_weight  # a number, or "auto" (nstutils.balance)
    tv_weight: float = DEFAULTS.tv_weight
    content_layer: str = DEFAULTS.content_layers[0]
    style_layers: tuple[tuple[str, float], ...] = tuple((n, 1.0) for n in DEFAULTS.style_layers)
    optimizer: str = DEFAULTS.optimizer
    lr: float = DEFAULTS.lr or DEFAULT_LR[DEFAULTS.optimizer]
    steps: int = DEFAULTS.steps
    init: str = DEFAULTS.init
    seed: int = DEFAULTS.seed

    def stylize_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments of ``nu.stylize`` (``init`` "previous" is the caller's job)."""
        if not self.style_layers:
            raise ValueError("no style layer is ticked; tick at least one (e.g. relu1_1)")
        if self.steps < 1 or self.size < 1:
            raise ValueError(f"steps and size must be positive, got steps={self.steps}, size={self.size}")
        return dict(steps=self.steps, optimizer=self.optimizer, lr=self.lr,
                    content_weight=self.content_weight, style_weight=self.style_weight,
                    tv_weight=self.tv_weight, content_layers=(self.content_layer,),
                    style_layers=tuple(n for n, _ in self.style_layers),
                    style_layer_weights=dict(self.style_layers), init=self.init, seed=self.seed)

    def summary(self) -> str:
        """Return every setting as one line (the tooltip of a run in the playground's strip)."""
        layers = ", ".join(n.replace("relu", "") for n, _ in self.style_layers)
        style = self.style_weight if isinstance(self.style_weight, str) else f"{self.style_weight:.3g}"
        return (f"{self.content} + {self.style}; {self.size}px, {self.steps} {self.optimizer} "
                f"steps (lr {self.lr:.3g}), init {self.init}, seed {self.seed}; weights content "
                f"{self.content_weight:.3g}, style {style}, tv {self.tv_weight:.3g}; "
                f"content {self.content_layer}, style {layers}")


def progress_text(step: int, steps: int, seconds: float, fraction: float | None = None) -> str:
    """Return "step 12/200, 3.1 steps/s, ETA 1:01" from the time ``seconds`` the first steps took.

    ``fraction``: the share of the run's work done (:func:`nstutils.progress.fraction_done`), so
    that the ETA counts the pyramid's later, larger levels as the costlier steps they are:
    ETA = seconds (1 - fraction) / fraction. Without it every step is taken to cost the same.
    """
    rate = step / seconds if step > 0 and seconds > 0 else math.nan
    if fraction is None:
        eta = (steps - step) / rate if rate > 0 else math.nan
    else:
        eta = seconds_left(seconds, fraction)
    eta_text = "?" if not math.isfinite(eta) else f"{int(eta) // 60}:{int(eta) % 60:02d}"
    rate_text = "-" if not math.isfinite(rate) else f"{rate:.3g}"
    return f"step {step}/{steps}, {rate_text} steps/s, ETA {eta_text}"


def stop_callback(stop: threading.Event,
                  on_step: Callable[[StepInfo], None] | None = None) -> Callable[[StepInfo], bool]:
    """Return a ``stylize`` callback that calls ``on_step`` and asks to stop once ``stop`` is set."""

    def callback(info: StepInfo) -> bool:
        if on_step is not None:
            on_step(info)
        return stop.is_set()

    return callback


class Runner:
    """Run at most one job at a time; ``stop()`` asks the running job to finish early.

    A job is a function ``job(stop: threading.Event)`` that checks ``stop`` (for instance through
    :func:`stop_callback`). ``run`` blocks; ``start`` returns at once and runs it in a daemon thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while a job runs (from ``start``/``run`` until the job has returned)."""
        return self._busy

    def _claim(self) -> bool:
        with self._lock:
            if self._busy:
                return False
            self._busy = True
            self._stop.clear()
            return True

    def _release(self) -> None:
        with self._lock:
            self._busy = False

    def run(self, job: Callable[[threading.Event], Any]) -> Any:
        """Run ``job`` in this thread and return what it returns; raise if another job runs."""
        if not self._claim():
            raise RuntimeError("a run is already in progress; stop it first")
        try:
            return job(self._stop)
        finally:
            self._release()

    def start(self, job: Callable[[threading.Event], Any],
              on_error: Callable[[BaseException], None] | None = None) -> bool:
        """Start ``job`` in a background thread; return False (and do nothing) if one runs."""
        if not self._claim():
            return False

        def target() -> None:
            try:
                job(self._stop)
            except Exception as err:  # the thread must end cleanly; the caller shows the error
                if on_error is not None:
                    on_error(err)
            finally:
                self._release()

        self._thread = threading.Thread(target=target, name="nstutils-runner", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Ask the running job to stop at its next check (no effect when idle)."""
        if self._busy:
            self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background job to end; return True if none runs any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self._busy
