"""nstutils.progress: the time left by pixels, the text line, the widget, and a real run (no browser)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nstutils as nu
from nstutils.optimize import StepInfo, StepRecord
from nstutils.progress import ProgressBar, status_line, work_done

DATA = Path(__file__).resolve().parents[1] / "data"
LEVELS, LEVEL_STEPS = [[128, 128], [256, 256]], [96, 48]  # a 256 px run of 144 steps


def _info(step, steps=144, seconds=10.0, params=None, probe=None):
    record = StepRecord(step=step, total=1.0, content=0.5, style=0.5, tv=0.0, seconds=seconds)
    return StepInfo(step=step, steps=steps, record=record, image=torch.zeros(1, 3, 4, 4), params=params, probe=probe)


def test_work_done_counts_pixels():
    # 96 steps of 1 unit, then 48 steps of 4 units: 288 units in all.
    assert work_done(0, LEVELS, LEVEL_STEPS) == 0
    assert work_done(96, LEVELS, LEVEL_STEPS) == pytest.approx(96 / 288)
    assert work_done(120, LEVELS, LEVEL_STEPS) == pytest.approx((96 + 24 * 4) / 288)
    assert work_done(144, LEVELS, LEVEL_STEPS) == pytest.approx(1)
    assert work_done(5, [[64, 64]], [10]) == pytest.approx(0.5)  # one level: steps


def test_status_line_time_left():
    params = {"levels": LEVELS, "level_steps": LEVEL_STEPS}
    # A third of the work in 10 s: 20 s left, though two thirds of the steps are done.
    assert status_line(_info(96, params=params)) == "step 96/144 · 10 s · about 20 s left"
    assert status_line(_info(72, params=None)) == "step 72/144 · 10 s · about 10 s left"
    assert status_line(_info(0, params=None, seconds=0.0)) == "step 0/144 · 0 s · about ? left"
    assert status_line(_info(144, params=params, seconds=61.4)) == "144 steps in 61 s"
    # A style weight that "auto" tries: no time left yet (the run's steps start once one is chosen).
    assert status_line(_info(16, params=params, probe=5.48)) == "choosing the style weight: trying 5.48, step 16 · 10 s"


def test_text_mode_rewrites_one_line():
    out = io.StringIO()
    bar = ProgressBar(3, label="run", widgets=False, stream=out)
    assert bar.widget is None
    for step in (1, 2, 3):
        bar(_info(step, steps=3, seconds=float(step)))
    lines = out.getvalue().split("\r")[1:]
    assert lines[0].startswith("run: step 1/3 · 1 s · about 2 s left")
    assert lines[-1] == "run: 3 steps in 3 s".ljust(len(lines[0])) + "\n"  # padded over the longer line
    assert out.getvalue().count("\n") == 1 and bar.text == "3 steps in 3 s"


def test_widget_mode_moves_the_bar():
    pytest.importorskip("ipywidgets")
    bar = ProgressBar(10, widgets=True)
    assert bar.widget is not None and bar.bar.max == 10 and bar.bar.value == 0
    bar(_info(4, steps=8, seconds=2.0))
    assert (bar.bar.value, bar.bar.max) == (4, 8) and bar.note.value == "step 4/8 · 2 s · about 2 s left"
    bar(_info(8, steps=8, seconds=4.0))
    assert bar.bar.value == 8 and bar.bar.bar_style == "success" and bar.note.value == "8 steps in 4 s"


def test_falls_back_to_text_without_ipywidgets(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now raises ImportError
    out = io.StringIO()
    for widgets in (True, None):
        bar = ProgressBar(2, widgets=widgets, stream=out)
        assert bar.widget is None
        bar(_info(2, steps=2, seconds=1.0))
    assert out.getvalue().count("optimizing: 2 steps in 1 s") == 2


def test_outside_a_kernel_it_is_text():
    assert ProgressBar(5).widget is None  # pytest is no Jupyter kernel


def test_drives_a_real_run():
    content = nu.load_image(DATA / "content/grace_hopper_portrait.jpg", max_side=40)
    style = nu.load_image(DATA / "style/picabia_udnie.jpg", max_side=40)
    out = io.StringIO()
    bar = ProgressBar(3, widgets=False, stream=out)
    result = nu.stylize(content, style, steps=3, callback=bar, precision="fp32")
    assert result.status == "completed" and bar.text.startswith("3 steps in ")
    assert out.getvalue().count("\r") == 3 and out.getvalue().endswith("\n")



def test_import_loads_no_notebook_packages():
    code = ("import sys, nstutils.progress; "
            "print([m for m in ('ipywidgets', 'IPython', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
