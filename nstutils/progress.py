"""A progress bar for :func:`nstutils.stylize`: a widget in a notebook, one text line elsewhere.

    bar = ProgressBar(STEPS)
    display(bar)                                   # in a notebook; a script needs no display
    result = nu.stylize(content, style, steps=STEPS, callback=bar)

The bar is driven only through stylize's ``callback`` (the library itself never prints). In a
Jupyter or Colab kernel with ipywidgets it is an ``IntProgress`` and a ``Label``; without
ipywidgets, or outside a kernel, each step rewrites one line of text on ``stream``.

The time left counts pixels, not steps: with the pyramid (coarse-to-fine, the default) each
level has four times the pixels of the one before and its steps cost several times as much,
so "steps per second so far" would promise too little time. Not imported by ``import nstutils``.
"""

from __future__ import annotations

import math
import sys
from typing import Sequence, TextIO

from .optimize import StepInfo


def work_done(step: int, levels: Sequence[Sequence[int]], level_steps: Sequence[int]) -> float:
    """Return the fraction of a run's work done after ``step`` steps, a step costing H*W of its level.

    Args: levels: the (H, W) of each pyramid level, coarsest first (``params["levels"]``);
    level_steps: the steps of each (``params["level_steps"]``). Returns a float in [0, 1].
    """
    cost = [h * w for h, w in levels]
    total = sum(c * n for c, n in zip(cost, level_steps))
    done, left = 0, step
    for c, n in zip(cost, level_steps):
        done += c * min(left, n)
        left -= min(left, n)
    return done / total if total else 1.0


def fraction_done(info: StepInfo) -> float:
    """The fraction of the run's work done at this step: :func:`work_done` with the run's pyramid
    levels, or steps done / steps when the run has no levels recorded (every step costs the same)."""
    params = info.params or {}
    if params.get("levels") and params.get("level_steps"):
        return work_done(info.step, params["levels"], params["level_steps"])
    return info.step / info.steps if info.steps else 1.0


def seconds_left(seconds: float, fraction: float) -> float:
    """The time left if the rest of the work goes as fast as the part done: t (1 - f) / f (NaN at f = 0)."""
    return seconds * (1 - fraction) / fraction if fraction > 0 else math.nan


def status_line(info: StepInfo) -> str:
    """Return "step 60/144 · 25 s · about 70 s left" for one StepInfo.

    While ``style_weight="auto"`` tries a weight (``info.probe``): "choosing the style weight:
    trying 5.48, step 16 · 25 s" (the run's own steps, and its time left, start once it is chosen).
    """
    seconds = info.record.seconds
    if info.probe is not None:
        return f"choosing the style weight: trying {info.probe:g}, step {info.step} · {seconds:.0f} s"
    fraction = fraction_done(info)
    if info.step >= info.steps:
        return f"{info.steps} steps in {seconds:.0f} s"
    left = seconds_left(seconds, fraction)
    left_text = "?" if not math.isfinite(left) else f"{left:.0f} s"
    return f"step {info.step}/{info.steps} · {seconds:.0f} s · about {left_text} left"


def _in_kernel() -> bool:
    """True in a Jupyter or Colab kernel where ipywidgets can be imported."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class ProgressBar:
    """A ``stylize`` callback that shows the steps done and the time left.

    Args: steps: the run's steps (the bar's length until the first step says otherwise);
    label: shown before the bar; widgets: True for an ipywidgets bar (text if ipywidgets is
    missing), False for text, None to decide (a bar in a kernel with ipywidgets);
    stream: where the text line goes (default ``sys.stdout`` at each step).
    ``widget`` is the ipywidgets box, or None in text mode; ``text`` the last status line.
    """

    def __init__(self, steps: int, *, label: str = "optimizing", widgets: bool | None = None,
                 stream: TextIO | None = None):
        self.label, self.stream, self.text, self.widget = label, stream, f"step 0/{steps}", None
        self._width = 0  # of the longest text line so far, so a shorter one overwrites it all
        if widgets is None:
            widgets = _in_kernel()
        if widgets:
            try:
                import ipywidgets as w
            except ImportError:
                w = None
            if w is not None:
                self.bar = w.IntProgress(value=0, min=0, max=max(1, steps), description=label)
                self.note = w.Label(value=self.text)
                self.widget = w.HBox([self.bar, self.note])

    def __call__(self, info: StepInfo) -> None:
        self.text = status_line(info)
        if self.widget is not None:
            self.bar.max, self.bar.value = info.steps, info.step
            self.note.value = self.text
            if info.step >= info.steps:
                self.bar.bar_style = "success"
            return
        stream = self.stream or sys.stdout
        line = f"{self.label}: {self.text}"
        self._width = max(self._width, len(line))
        end = "\n" if info.step >= info.steps else ""
        stream.write(f"\r{line.ljust(self._width)}{end}")  # \r: the line is rewritten in place
        stream.flush()

    def _ipython_display_(self) -> None:
        if self.widget is not None:  # text mode shows itself as the steps come
            from IPython.display import display

            display(self.widget)
