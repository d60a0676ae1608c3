"""Headless tests of the playground (nstutils.widgets, nstutils.pickers, nstutils.runner).

They run with ipywidgets 8 (the main venv) and 7.7.1 (`make test-colab`, in the Colab-like venv); uploads are
simulated in the format of the installed major and both formats are parsed. Tiny images,
few steps, the Caffe weights (loaded once).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import ipywidgets
import pytest
import torch
from PIL import Image

import nstutils as nu
from nstutils import widgets as nw
from nstutils.pickers import check_upload, uploaded_files
from nstutils.runner import Runner, Settings, progress_text, stop_callback
from nstutils.widgets import Playground

DATA = Path(__file__).resolve().parents[1] / "data"
IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])
SIZE = 48


@pytest.fixture(scope="module")
def app_extractor():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny images: one thread is faster on a shared CPU
    yield nu.VGGFeatures(nu.load_vgg19())
    torch.set_num_threads(threads)


@pytest.fixture
def app(app_extractor, tmp_path):
    return Playground(data=DATA, device="cpu", extractor=app_extractor, size=SIZE, steps=3,
                      out_dir=tmp_path, refresh_s=0.0, plot_s=60.0)


def png_bytes(side: int, color=(200, 30, 30), width: int | None = None) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width or side, side), color).save(buf, "PNG")
    return buf.getvalue()


def simulate_upload(upload: ipywidgets.FileUpload, name: str, data: bytes) -> None:
    """Set a FileUpload's value the way the browser does for the installed ipywidgets major."""
    if IPYWIDGETS_MAJOR >= 8:
        upload.value = ({"name": name, "type": "image/png", "size": len(data),
                         "content": memoryview(data), "last_modified": datetime.now(timezone.utc)},)
    else:  # 7.x: the front end sends metadata and data, then bumps _counter
        upload.metadata = [{"name": name, "type": "image/png", "size": len(data), "lastModified": 0}]
        upload.data = [data]
        upload._counter += 1


def wait_until(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_import_nstutils_does_not_import_notebook_libraries():
    code = ("import sys, nstutils, nstutils.runner; "
            "print([m for m in ('ipywidgets', 'matplotlib', 'IPython') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- pure logic ---------------------------------------------------------------------------
def test_uploaded_files_reads_both_ipywidgets_formats():
    v7 = {"a.png": {"metadata": {"name": "a.png", "size": 3}, "content": b"abc"}}
    v8 = ({"name": "b.jpg", "type": "image/jpeg", "size": 3, "content": memoryview(b"xyz")},)
    assert uploaded_files(v7) == [("a.png", b"abc")]
    assert uploaded_files(v8) == [("b.jpg", b"xyz")]
    assert uploaded_files({}) == uploaded_files(()) == []


def test_check_upload_explains_unusable_files():
    with pytest.raises(ValueError, match="not a readable image"):
        check_upload("notes.txt", b"hello")
    with pytest.raises(ValueError, match="too small"):
        check_upload("tiny.png", png_bytes(8))
    assert check_upload("ok.png", png_bytes(40)).size == (40, 40)


def test_settings_defaults_come_from_DEFAULTS():
    kw = Settings().stylize_kwargs()
    assert kw["style_weight"] == nu.DEFAULTS.app_style_weight == "auto"
    assert kw["style_layers"] == nu.DEFAULTS.style_layers
    assert kw["content_layers"] == nu.DEFAULTS.content_layers
    with pytest.raises(ValueError, match="no style layer"):
        Settings(style_layers=()).stylize_kwargs()
    assert "style 1e+04" in Settings(style_weight=1e4).summary()


def test_progress_text():
    assert progress_text(10, 100, 5.0) == "step 10/100, 2 steps/s, ETA 0:45"
    assert "ETA ?" in progress_text(0, 10, 0.0)
    # with the pyramid the first tenth of the steps is a small share of the work: 2% done in 5 s
    # leaves 245 s, not the 45 s that steps per second would promise
    assert progress_text(10, 100, 5.0, fraction=0.02) == "step 10/100, 2 steps/s, ETA 4:05"
    assert "ETA ?" in progress_text(0, 10, 0.0, fraction=0.0)


def test_runner_runs_one_job_at_a_time_and_stops():
    runner, started, steps = Runner(), threading.Event(), []

    def job(stop):
        started.set()
        callback = stop_callback(stop, lambda info: steps.append(info))
        while not callback(len(steps)):
            time.sleep(0.005)
        return "done"

    assert runner.start(job)
    assert started.wait(5)
    assert not runner.start(job)  # a second start while busy does nothing
    with pytest.raises(RuntimeError, match="already in progress"):
        runner.run(job)
    runner.stop()
    assert runner.wait(5) and not runner.running
    assert runner.run(lambda stop: "blocking") == "blocking"


# ---- the app ------------------------------------------------------------------------------
def test_app_has_the_promised_parts(app):
    names = {"content", "style", "content_upload", "style_upload", "content_weight", "style_weight",
             "tv_weight", "content_layer", "optimizer", "lr", "steps", "size", "init", "seed",
             "run", "stop", "reset", "save", "layer_relu1_1", "layer_weight_relu1_1"}
    assert names <= set(app.controls)
    assert isinstance(app.preview, ipywidgets.Image) and app.preview.value
    assert isinstance(app.widget, ipywidgets.Box)
    assert isinstance(app.controls["style_weight"], ipywidgets.FloatLogSlider)
    assert app.controls["style_weight_auto"].value  # "auto" first; its slider starts at the top of the range
    assert app.controls["style_weight"].value == nu.DEFAULTS.style_weight
    assert app.controls["stop"].disabled and not app.controls["run"].disabled


def test_run_uses_the_new_settings(app):
    c = app.controls
    c["style_weight"].value = 1e4
    c["tv_weight"].value = 10.0
    c["layer_relu5_1"].value = False
    c["layer_weight_relu1_1"].value = 2.0
    c["content_layer"].value = "relu3_1"
    c["optimizer"].value = "adam"
    assert c["lr"].value == pytest.approx(0.02)  # the optimizer's default learning rate follows
    c["seed"].value = 7
    c["init"].value = "noise"
    c["style"].value = "munch_the_scream"
    result = app.run(steps=2, size=SIZE)
    p = result.params
    assert (p["style_weight"], p["tv_weight"], p["optimizer"], p["seed"], p["init"]) == (1e4, 10.0, "adam", 7, "noise")
    assert p["lr"] == pytest.approx(0.02) and p["steps"] == 2
    assert p["style_layers"] == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    assert p["style_layer_weights"]["relu1_1"] == pytest.approx(2.0)
    assert p["content_layers"] == ("relu3_1",)
    assert max(p["content_size"]) == SIZE
    assert app.history[0].settings == app.settings()
    assert app.history[0].settings.style == "munch_the_scream"


def test_reset_restores_defaults(app):
    before = app.settings()
    app.controls["style_weight"].value = 1.0
    app.controls["layer_relu2_1"].value = False
    app.controls["optimizer"].value = "adam"
    app.controls["reset"].click()
    assert app.settings() == before
    assert app.controls["lr"].value == nu.optimize.DEFAULT_LR[nu.DEFAULTS.optimizer]


def test_preview_and_plot_change_while_running(app):
    app.plot_s, seen = 0.0, []
    app.preview.observe(lambda change: seen.append(change["new"]), names="value")
    first, plot = app.preview.value, app.plot.value
    result = app.run(steps=3, size=SIZE)
    assert result.status == "completed" and len(result.history) == 3
    assert len(seen) >= 3 and app.preview.value != first  # refresh_s=0: every step, then the result
    assert app.plot.value != plot
    assert app.progress.value == 3 and "step 3/3" in app.progress_text.value
    assert "Run 1" in app.status.value and not app.controls["save"].disabled


@pytest.mark.parametrize("forecast", [1.0, 0.0])  # "auto" at one level: 30 kept (the run is one try), or none
def test_stop_button_stops_a_background_run_within_a_few_steps(app, monkeypatch, forecast):
    import nstutils.balance

    monkeypatch.setattr(nstutils.balance, "structure_forecast", lambda content, first: forecast)
    app.controls["steps"].value = 500
    app.controls["run"].click()
    assert wait_until(lambda: app.progress.value >= 2), app.status.value
    assert app.running and app.controls["run"].disabled and not app.controls["stop"].disabled
    at_stop = app.progress.value
    app.controls["stop"].click()
    assert app.wait(60)
    result = app.result
    assert result.status == "stopped" and len(result.history) <= at_stop + 2
    assert not app.controls["run"].disabled and app.controls["stop"].disabled
    assert "stopped" in app.status.value


def test_double_click_starts_only_one_run(app, monkeypatch):
    calls = []
    real = nw.stylize
    monkeypatch.setattr(nw, "stylize", lambda *a, **k: calls.append(1) or real(*a, **k))
    app.controls["run"].click()
    app.controls["run"].click()
    assert not app.start()
    assert app.wait(60)
    assert len(calls) == 1 and len(app.history) == 1


def test_upload_is_used_and_bad_upload_shows_a_message(app):
    picker = app.pickers["content"]
    simulate_upload(app.controls["content_upload"], "mine.png", png_bytes(64, (20, 120, 220)))
    assert app.controls["content"].value == "mine (upload)"
    assert "error" not in app.status.value
    result = app.run(steps=1, size=SIZE)
    assert result.params["content_size"] == (SIZE, SIZE)  # the square upload, not a sample
    thumb = picker.thumb.value
    simulate_upload(app.controls["style_upload"], "broken.jpg", b"this is not an image")
    assert "not a readable image" in app.status.value
    simulate_upload(app.controls["content_upload"], "tiny.png", png_bytes(8))
    assert "too small" in app.status.value
    assert app.controls["content"].value == "mine (upload)" and picker.thumb.value == thumb


def test_errors_appear_as_messages_not_exceptions(app, monkeypatch):
    for n in nw.STYLE_CHOICES:
        app.controls[f"layer_{n}"].value = False
    app.controls["run"].click()
    assert app.wait(30)
    assert "no style layer" in app.status.value and not app.controls["run"].disabled
    app.controls["reset"].click()
    app.controls["init"].value = "previous"
    app.controls["run"].click()
    assert app.wait(30)
    assert "no previous result" in app.status.value

    def diverging(content, *args, **kwargs):
        return nu.StylizeResult(content, [], [], {}, 0.1, "diverged", "loss became nan at step 1")

    # A wide panorama shrunk to 64 px is 8 px high: too small for the deep style layers.
    simulate_upload(app.controls["content_upload"], "panorama.png", png_bytes(40, width=320))
    app.controls["init"].value = "content"
    app.controls["size"].value = 64
    app.controls["run"].click()
    assert app.wait(30)
    assert "too small" in app.status.value and "error" not in app.progress_text.value

    monkeypatch.setattr(nw, "stylize", diverging)
    app.controls["content"].value = "tubingen_neckarfront"
    app.controls["run"].click()
    assert app.wait(30)
    assert "loss became nan" in app.status.value and nw.COLORS["warning"] in app.status.value


def test_continue_from_a_previous_run_and_save(app, tmp_path):
    app.run(steps=2, size=SIZE)
    card = app.strip.children[0]
    show, cont = card.children[-1].children
    cont.click()  # "Continue": start from run 1's image
    assert app.wait(60)
    assert len(app.history) == 2 and app.history[0].settings.init == "previous"
    assert app.history[0].result.params["init"] == "tensor"
    assert len(app.strip.children) == 2
    path = app.save()
    assert path is not None and path.parent == tmp_path and path.suffix == ".png"
    meta = nu.read_metadata(path)
    assert json.loads(meta["nstutils:settings"])["steps"] == 2
    assert json.loads(meta["nstutils:params"])["init"] == "tensor"
    assert "Saved" in app.status.value


def test_default_app_loads_the_caffe_weights_on_its_first_run(tmp_path):
    app = Playground(data=DATA, device="cpu", out_dir=tmp_path, steps=3)
    assert app.extractor is None  # nothing heavy happens before Run
    result = app.run(size=SIZE)
    assert result.status == "completed" and result.params["weights"].startswith("caffe")
    assert result.history[-1].total < result.history[0].total
    assert torch.isfinite(result.image).all()


def test_a_new_upload_with_the_same_name_is_used(app):
    """Phones call every photo image.jpg: the run must use the photo the thumbnail shows."""
    simulate_upload(app.controls["content_upload"], "image.jpg", png_bytes(64, (230, 20, 20)))
    first = app.controls["content"].value
    app.run(steps=1, size=SIZE)
    simulate_upload(app.controls["content_upload"], "image.jpg", png_bytes(64, (20, 20, 230)))
    assert app.controls["content"].value != first  # both photos stay choosable
    result = app.run(steps=1, size=SIZE)
    blue, red = result.image[0, 2].mean(), result.image[0, 0].mean()
    assert blue > red  # the blue photo, not the cached red one
    simulate_upload(app.controls["content_upload"], "image.jpg", png_bytes(64, (20, 20, 230)))
    assert app.controls["content"].value == first.replace("(upload)", "(upload 2)")  # same bytes: same entry


def test_save_never_overwrites_an_earlier_session(app_extractor, tmp_path):
    paths = []
    for _ in range(2):  # two sessions: both number their first run 1
        app = Playground(data=DATA, device="cpu", extractor=app_extractor, size=SIZE, steps=1, out_dir=tmp_path)
        app.run()
        paths.append(app.save())
    first = paths[0].read_bytes()
    assert paths[0] != paths[1] and paths[0].is_file() and paths[1].is_file()
    assert paths[0].read_bytes() == first and "-2" in paths[1].stem
