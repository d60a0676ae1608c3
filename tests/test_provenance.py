"""Results that remember their settings: PNG metadata written, read back, rerun and resumed."""

import json
import subprocess
import sys

import pytest
import torch

import nstutils as nu
from conftest import DATA
from nstutils.provenance import read_result, rerun, result_metadata, save_result, stylize_kwargs

KW = dict(steps=3, precision="fp32", seed=3, style_weight=20.0, init="noise")


@pytest.fixture(scope="module")
def saved(tmp_path_factory, content, style, extractor):
    r = nu.stylize(content, style, extractor, **KW)
    path = save_result(r, tmp_path_factory.mktemp("runs") / "r.png", {"content": "c.jpg"})
    return r, path


def test_metadata_holds_params_versions_and_sources(saved):
    r, path = saved
    back = read_result(path)
    assert back.params["style_weight"] == 20.0 and back.params["seed"] == 3
    assert back.params["weights"] == r.params["weights"] and back.params["weights"].startswith("caffe")
    assert back.versions["torch"] == torch.__version__ and "python" in back.versions
    assert back.sources == {"content": "c.jpg"}
    assert back.image.shape == r.image.shape
    assert (back.image - r.image).abs().max() <= 0.5 / 255 + 1e-6  # 8-bit rounding only


def test_stylize_kwargs_round_trip(saved):
    r, path = saved
    kw = stylize_kwargs(read_result(path).params)
    for k, v in KW.items():
        assert kw[k] == v
    assert kw["style_layers"] == nu.DEFAULTS.style_layers  # tuples again, not JSON lists
    assert "init" not in stylize_kwargs({**r.params, "init": "tensor"})
    assert kw["conv"] == r.params["conv"] == "winograd"  # fp32 on the CPU: "auto" chose it, and a rerun replays it
    older = {k: v for k, v in r.params.items() if k != "conv"}  # saved before the choice was recorded
    assert stylize_kwargs(older)["conv"] == "direct"


def test_rerun_reproduces_and_resume_continues(saved, content, style, extractor):
    r, path = saved
    again = rerun(path, content, style, extractor)
    assert torch.equal(again.image, r.image)  # same settings and seed: the same image
    more = rerun(path, content, style, extractor, resume=True, steps=2)
    assert more.params["init"] == "tensor" and len(more.history) == 2
    # It starts where the saved image left off (up to 8-bit rounding), not from noise again.
    assert more.history[0].total < 1.05 * r.history[-1].total
    with pytest.raises(ValueError, match="differ in size"):
        rerun(path, content[..., :-2, :], style, extractor, resume=True)


def test_files_without_settings_are_refused(tmp_path, content):
    plain = nu.save_image(content, tmp_path / "plain.png")
    with pytest.raises(ValueError, match="no nstutils settings"):
        read_result(plain)
    meta = result_metadata(nu.StylizeResult(content, [], [], {"steps": 1}, 0.0))
    assert json.loads(meta["nstutils:params"]) == {"steps": 1}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nstutils", *args], capture_output=True, text=True, timeout=300)


def test_cli_color_resume_and_estimate(tmp_path):
    content, style = str(DATA / "content/petra_tomb_facade.jpg"), str(DATA / "style/hokusai_great_wave.jpg")
    out = tmp_path / "a.png"
    r = _cli("stylize", content, style, "-o", str(out), "--size", "40", "--steps", "2", "--quiet",
             "--color", "luminance", "--seed", "5")
    assert r.returncode == 0, r.stderr
    first = read_result(out)
    assert first.params["color"] == "luminance" and first.sources["style"] == style
    out2 = tmp_path / "b.png"
    r = _cli("stylize", content, style, "-o", str(out2), "--quiet", "--resume", str(out), "--steps", "1")
    assert r.returncode == 0, r.stderr
    second = read_result(out2)
    assert second.params["steps"] == 1 and second.params["seed"] == 5 and second.params["color"] == "luminance"
    assert second.params["init"] == "tensor" and second.image.shape == first.image.shape
    r = _cli("stylize", content, style, "-o", str(out2), "--size", "2048", "--estimate")
    assert r.returncode == 0 and "needs about" in r.stdout and "GB" in r.stdout
