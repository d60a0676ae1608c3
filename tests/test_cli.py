import subprocess
import sys

import pytest
import torch

import nstutils as nu
from conftest import DATA
from nstutils.provenance import read_result

CONTENT = str(DATA / "content/grace_hopper_portrait.jpg")
STYLE = str(DATA / "style/picabia_udnie.jpg")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nstutils", *args], capture_output=True, text=True, timeout=300)


def test_stylize_end_to_end(tmp_path):
    out = tmp_path / "out.png"
    r = _cli("stylize", CONTENT, STYLE, "-o", str(out), "--size", "48", "--steps", "4", "--save-every", "2")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("completed: 4 steps in") and str(out) in last
    loss = read_result(out).loss
    assert f"loss {loss['total']:.4g}" in last  # the loss of the image saved, not of the one before
    assert f"style weight {read_result(out).params['style_weight']:.3g} (auto)" in last  # the default
    img = nu.load_image(out)
    assert img.shape[-2:] == (48, 41)
    assert (tmp_path / "out_step0002.png").is_file() and (tmp_path / "out_step0004.png").is_file()
    meta = nu.read_metadata(out)
    assert '"steps": 4' in meta["nstutils:params"] and "caffe" in meta["nstutils:params"]
    assert "step" in r.stderr  # the progress bar


def test_missing_file_is_one_line_error(tmp_path):
    r = _cli("stylize", str(tmp_path / "nope.jpg"), STYLE, "-o", str(tmp_path / "o.png"), "--quiet")
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: image file not found") and len(r.stderr.strip().splitlines()) == 1


def test_unreadable_image_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    r = _cli("stylize", str(bad), STYLE, "-o", str(tmp_path / "o.png"), "--quiet")
    assert r.returncode == 1 and "not a readable image" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--steps", "0"], ["--optimizer", "sgd"], ["--tv-weight", "-1"], [],
                                  ["--threads", "0"], ["--threads", "many"]])
def test_bad_arguments_exit_2(tmp_path, args):
    base = ["stylize", CONTENT, STYLE] + (["-o", str(tmp_path / "o.png")] if args else [])
    r = _cli(*base, *args)
    assert r.returncode == 2 and "error" in r.stderr


def test_bad_output_suffix(tmp_path):
    r = _cli("stylize", CONTENT, STYLE, "-o", str(tmp_path / "o.gif"), "--quiet", "--size", "32", "--steps", "1")
    assert r.returncode == 2 and "suffix" in r.stderr


def test_conv_option(tmp_path):
    out = tmp_path / "direct.png"
    r = _cli("stylize", CONTENT, STYLE, "-o", str(out), "--size", "32", "--steps", "1", "--quiet", "--conv", "direct")
    assert r.returncode == 0, r.stderr
    assert read_result(out).params["conv"] == "direct"
    r = _cli("stylize", CONTENT, STYLE, "-o", str(tmp_path / "x.png"), "--size", "32", "--steps", "1", "--quiet",
             "--conv", "winograd", "--precision", "bf16")
    assert r.returncode == 2 and "float32 on the CPU" in r.stderr and "Traceback" not in r.stderr


def test_two_styles_blended_and_masked(tmp_path):
    second = str(DATA / "style/munch_the_scream.jpg")
    out = tmp_path / "blend.png"
    r = _cli("stylize", CONTENT, STYLE, second, "-o", str(out), "--size", "40", "--steps", "2",
             "--blend", "3", "1", "--style-scale", "0.8", "--quiet", "--precision", "fp32", "--threads", "1")
    assert r.returncode == 0, r.stderr
    saved = read_result(out)
    assert saved.params["threads"] == 1 and saved.params["conv"] == "winograd"  # "auto": fp32 on the CPU
    assert saved.params["style_blend"] == [3.0, 1.0] and saved.params["style_scale"] == 0.8
    assert STYLE in saved.sources["style"] and second in saved.sources["style"]
    mask = tmp_path / "mask.png"
    nu.save_image(torch.cat([torch.ones(1, 3, 20, 10), torch.zeros(1, 3, 20, 10)], dim=3), mask)
    r = _cli("stylize", CONTENT, STYLE, second, "-o", str(tmp_path / "m.png"), "--size", "40",
             "--steps", "2", "--mask", str(mask), "--quiet")
    assert r.returncode == 0, r.stderr
    assert read_result(tmp_path / "m.png").params["masks"] is True
    r = _cli("stylize", CONTENT, STYLE, "-o", str(tmp_path / "x.png"), "--mask", str(mask), "--quiet")
    assert r.returncode == 2 and "exactly two style images" in r.stderr


def test_progress_bar_shows_auto_tries_without_counting_or_saving_them(capsys):
    from nstutils.cli import _progress
    from nstutils.optimize import StepInfo, StepRecord

    saved = []
    callback, close = _progress(10, quiet=False, also=lambda info: info.probe is None and saved.append(info.step))
    record = StepRecord(step=1, total=1.0, content=0.5, style=0.5, tv=0.0, seconds=0.1)
    image = torch.zeros(1, 3, 4, 4)
    for step in (1, 2):
        callback(StepInfo(step, 10, record, image, probe=30.0))
    assert saved == [] and "trying 30, step 2" in capsys.readouterr().err
    callback(StepInfo(3, 10, record, image))
    close()
    # the kept try (steps 1-2) is the run's first level: the bar jumps over it, without snapshots
    assert saved == [3] and "3/10" in capsys.readouterr().err


def test_progress_bar_ends_at_the_steps_done_when_the_run_was_one_try(capsys):
    from nstutils.cli import _progress
    from nstutils.optimize import StepInfo, StepRecord

    callback, close = _progress(4, quiet=False)
    record = StepRecord(step=1, total=1.0, content=0.5, style=0.5, tv=0.0, seconds=0.1)
    for step in range(1, 5):  # one level: the run is the kept try, all of whose steps are a try's
        callback(StepInfo(step, 4, record, torch.zeros(1, 3, 4, 4), probe=3.58))
    close(4)
    assert "4/4" in capsys.readouterr().err


def test_snapshots_of_auto_tries_are_written_and_the_kept_one_rewritten(tmp_path):
    from nstutils.optimize import StepInfo, StepRecord
    from nstutils.outputs import snapshot_path, snapshot_writer

    out = tmp_path / "o.png"
    write = snapshot_writer(out, 2, lambda params: {"w": str((params or {}).get("style_weight"))})
    record = StepRecord(step=1, total=1.0, content=0.5, style=0.5, tv=0.0, seconds=0.1)
    info = lambda step, value, probe, w: StepInfo(step, 6, record, torch.full((1, 3, 4, 4), value), {"style_weight": w}, probe)
    for probe, value in ((30.0, 0.9), (5.48, 0.2)):  # 30 is rejected, 5.48 kept
        for step in (1, 2, 3, 4):
            write(info(step, value, probe, "auto"))
    assert nu.read_metadata(snapshot_path(out, 4))["w"] == "5.48"  # written when taken, as the try goes
    for probe, value in ((12.8, 0.7),):  # tried after 5.48 and rejected at step 2
        write(info(2, value, probe, "auto"))
    assert nu.read_metadata(snapshot_path(out, 2))["w"] == "12.8"
    write(info(5, 0.5, None, 5.48))  # the run goes on from the kept try
    write(info(6, 0.5, None, 5.48))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o_step0002.png", "o_step0004.png", "o_step0006.png"]
    for step in (2, 4):  # the kept try's, written again
        assert nu.read_metadata(snapshot_path(out, step))["w"] == "5.48"
        assert nu.load_image(snapshot_path(out, step)).mean().item() == pytest.approx(0.2, abs=0.01)
    one = snapshot_writer(tmp_path / "one.png", 2, lambda params: {})
    for step in (1, 2):
        one(info(step, 0.2, 12.8, "auto"))
    one(None, {"style_weight": 12.8})  # a one-level run ends inside its kept try
    assert snapshot_path(tmp_path / "one.png", 2).is_file()
