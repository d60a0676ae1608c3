"""The measures of what a result keeps (structure, painting) and the automatic style weight."""

from __future__ import annotations

import math

import pytest
import torch

import nstutils as nu
from conftest import DATA, pattern
from nstutils import balance
from nstutils.balance import auto_style_weight, edges, structure_kept, style_error, style_kept
from nstutils.cli import build_parser


def test_edges_known_values():
    flat = torch.full((1, 3, 20, 30), 0.4)
    assert edges(flat).abs().max() < 1e-6 and edges(flat).shape == (1, 1, 20, 30)  # never upsampled
    step = torch.zeros(1, 3, 16, 16)
    step[..., 8:] = 1.0  # a vertical edge of height 1 in every channel: Y jumps by 1
    e = edges(step)[0, 0]
    torch.testing.assert_close(e[:, 7], torch.full((16,), 4.0))  # Sobel: (1 + 2 + 1) * 1
    assert e[:, :6].abs().max() < 1e-6 and e[:, 10:].abs().max() < 1e-6
    assert edges(torch.rand(1, 3, 300, 200)).shape == (1, 1, 128, 85)


def test_structure_identical_scaled_and_unrelated():
    img = pattern(48, 64)
    assert structure_kept(img, img) == pytest.approx(1.0)
    # Edge strength scales with contrast, and a correlation ignores a positive scale and offset.
    assert structure_kept(img, 0.5 * img) == pytest.approx(1.0)
    assert structure_kept(img, 0.5 * img + 0.3) == pytest.approx(1.0)
    assert structure_kept(img, 1.0 - img) == pytest.approx(1.0)  # polarity does not count
    assert structure_kept(img, torch.full_like(img, 0.5)) == 0.0  # no edges at all
    noise = torch.rand(img.shape, generator=torch.Generator().manual_seed(0))
    assert abs(structure_kept(img, noise)) < 0.2
    blurred = torch.nn.functional.avg_pool2d(img, 3, 1, 1, count_include_pad=False)
    assert 0.8 < structure_kept(img, blurred) < 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        structure_kept(img, img[..., :40])


def test_structure_of_a_real_photo_against_its_painting(content, style):
    painting = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear")
    assert structure_kept(content, painting) < 0.3 < structure_kept(content, 0.7 * content + 0.1)


def test_style_measures(content, style, extractor):
    assert style_kept(content, content, style, extractor) == 0.0
    assert style_error(style, style, extractor) == pytest.approx(0.0, abs=1e-6)
    # The style image itself, cut to the content's size, keeps most of the painting.
    painting = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear")
    assert style_kept(content, painting, style, extractor) > 0.5


def test_style_measure_does_not_scale_with_the_weight(content, style, extractor):
    r = nu.stylize(content, style, extractor, steps=3, style_weight=10.0)
    targets = nu.make_targets(extractor, content, style, style_layers=nu.DEFAULTS.style_layers)
    t = nu.loss_terms(r.image, extractor, targets, content_weight=1.0, style_weight=10.0, tv_weight=0.0)
    assert style_error(r.image, style, extractor) == pytest.approx(float(t["style"]) / 10.0, rel=1e-4)


def test_more_style_weight_keeps_less_structure_and_more_painting(content, style, extractor):
    r = {w: nu.stylize(content, style, extractor, steps=8, style_weight=w) for w in (0.3, 100.0)}
    s = {w: structure_kept(content, x.image) for w, x in r.items()}
    p = {w: style_kept(content, x.image, style, extractor) for w, x in r.items()}
    assert s[0.3] > s[100.0] and p[0.3] < p[100.0]


def test_auto_search_picks_the_largest_passing_weight():
    calls = []

    def fake_probe(beta):  # S falls linearly in log(beta)
        calls.append(beta)
        return 1.0 - 0.1 * math.log(beta)

    exact = math.exp(5.0)  # S(beta) = 0.5 at beta = e^5 = 148
    a = auto_style_weight(fake_probe, threshold=0.5, weight_range=(1.0, 1000.0), probes=5)
    assert len(calls) == 5 and calls[0] == 1000.0 and a.probes[0] == (1000.0, pytest.approx(1 - 0.1 * math.log(1000)))
    assert exact / 1000 ** (1 / 16) < a.style_weight <= exact and dict(a.probes)[a.style_weight] >= 0.5
    calls.clear()
    assert auto_style_weight(fake_probe, threshold=0.1, weight_range=(1.0, 30.0)).style_weight == 30.0
    assert calls == [30.0]  # the top of the range passed: one probe
    none = auto_style_weight(fake_probe, threshold=1.5, weight_range=(1.0, 30.0), probes=4)
    assert none.style_weight == 1.0 and [b for b, _ in none.probes] == [30.0, 5.48, 2.34, 1.53]
    with pytest.raises(ValueError, match="weight_range"):
        auto_style_weight(fake_probe, weight_range=(30.0, 1.0))


def test_probe_threshold_leaves_a_margin_only_when_levels_follow():
    assert balance.probe_threshold(1) == balance.STRUCTURE_THRESHOLD
    assert balance.probe_threshold(3) == pytest.approx(balance.STRUCTURE_THRESHOLD + balance.FORECAST_MARGIN)
    assert balance.probe_threshold(2, 0.7) == pytest.approx(0.7 + balance.FORECAST_MARGIN)


def test_structure_forecast_adds_the_contents_detail_back():
    content = pattern(64, 96)
    result = (0.7 * content + 0.2).clamp(0, 1)
    assert balance.structure_forecast(content, result) == pytest.approx(structure_kept(content, result))  # one level
    small = nu.pyramid.resize(content, (32, 48))
    assert balance.structure_forecast(content, small) == pytest.approx(1.0, abs=1e-6)  # the content's own first level
    grey = torch.full((1, 3, 32, 48), 0.5)  # a first level that kept nothing: only the finest detail is left
    assert balance.structure_forecast(content, grey) < balance.structure_forecast(content, small)


def test_auto_in_stylize_records_the_weight_and_reruns_exactly(content, style, extractor):
    r = nu.stylize(content, style, extractor, steps=4, style_weight="auto")
    w = r.params["style_weight"]
    lo, hi = balance.AUTO_RANGE
    assert isinstance(w, float) and lo <= w <= hi and r.params["style_weight_auto"] is True
    assert len(r.params["style_weight_probes"]) <= balance.AUTO_PROBES
    assert any(p[0] == w for p in r.params["style_weight_probes"])
    again = nu.stylize(content, style, extractor, steps=4, style_weight=w, threads=r.params["thread_schedule"])
    assert again.params["style_weight_auto"] is False and again.params["style_weight_probes"] is None
    torch.testing.assert_close(again.image, r.image, rtol=0, atol=0)
    with pytest.raises(ValueError, match="'auto'"):
        nu.stylize(content, style, extractor, steps=1, style_weight="automatic")


@pytest.fixture
def big(content):
    """64x256: a pyramid of two levels (32x128 and 64x256), so "auto" tries the first one (few pixels: fast)."""
    return torch.nn.functional.interpolate(content, size=(64, 256), mode="bilinear").clamp(0, 1)


def test_auto_tries_are_the_runs_first_level_and_the_kept_one_is_reused(big, style, extractor, monkeypatch):
    seen = []
    # A threshold that 30 fails and the lower weights pass: three tries, the last kept.
    monkeypatch.setattr(balance, "probe_threshold", lambda levels: 0.0 if levels == 2 else 1.0)
    real = balance.structure_forecast
    monkeypatch.setattr(balance, "structure_forecast", lambda c, r: -0.5 if seen and seen[-1][1] == 30.0 else real(c, r))
    r = nu.stylize(big, style, extractor, steps=18, style_weight="auto", snapshot_every=4,
                   callback=lambda info: seen.append((info.step, info.probe, tuple(info.image.shape[-2:]))))
    first, rest = r.params["level_steps"]
    small = [n // 2 for n in big.shape[-2:]]
    assert r.params["levels"][0] == small and (first, rest) == (12, 6)
    tries = [p for _, p, _ in seen if p is not None]
    assert tries[:8] == [30.0] * 8 and 30.0 not in tries[8:]  # 30 fails at the first check (step 8) and stops
    assert all(list(size) == small for _, p, size in seen if p is not None)  # every try is the first level
    kept = r.params["style_weight"]
    assert r.params["style_weight_probes"][0] == [30.0, -0.5] and kept == r.params["style_weight_probes"][-1][0]
    assert [s for s, p, _ in seen if p == kept] == list(range(1, first + 1))  # the kept try ran all its steps
    assert [s for s, p, _ in seen if p is None] == list(range(first + 1, first + rest + 1))  # then level 2 only
    assert [h.step for h in r.history] == list(range(1, first + rest + 1))
    assert [s for s, _ in r.snapshots] == [0, 4, 8, 12, 16]  # the kept try's, then the run's
    assert r.params["style_weight_seconds"] > 0  # the tries not kept
    assert r.params["start_level"] is False  # "auto" has no start level by default, and a rerun must say so
    again = nu.stylize(big, style, extractor, steps=18, style_weight=kept, snapshot_every=4,
                       threads=r.params["thread_schedule"], start_level=r.params["start_level"])
    torch.testing.assert_close(again.image, r.image, rtol=0, atol=0)
    assert [h.total for h in again.history] == [h.total for h in r.history]


def test_auto_with_the_start_level_tries_two_levels_and_judges_the_second(big, style, extractor, monkeypatch):
    seen, judged = [], []
    monkeypatch.setattr(balance, "probe_threshold", lambda levels: 0.0 if levels == 3 else 1.0)
    real = balance.structure_forecast

    def forecast(c, r):
        judged.append(tuple(r.shape[-2:]))
        return -0.5 if seen and seen[-1][1] == 30.0 else real(c, r)

    monkeypatch.setattr(balance, "structure_forecast", forecast)
    r = nu.stylize(big, style, extractor, steps=18, style_weight="auto", start_level=True,
                   callback=lambda info: seen.append((info.step, info.probe, tuple(info.image.shape[-2:]))))
    assert r.params["start_level"] is True and r.params["levels"] == [[16, 64], [32, 128], [64, 256]]
    assert r.params["level_steps"] == [6, 6, 6]
    assert set(judged) == {(32, 128)}  # never at the 16 x 64 start level
    assert [s for s, p, _ in seen if p == 30.0] == list(range(1, 9))  # judged at step 8, in the second level
    kept = r.params["style_weight"]
    assert kept != 30.0 and kept == r.params["style_weight_probes"][-1][0]
    assert [(s, size) for s, p, size in seen if p == kept] == (
        [(s, (16, 64)) for s in range(1, 7)] + [(s, (32, 128)) for s in range(7, 13)])  # the kept try: both levels
    assert [(s, size) for s, p, size in seen if p is None] == [(s, (64, 256)) for s in range(13, 19)]  # then the last
    again = nu.stylize(big, style, extractor, steps=18, style_weight=kept, threads=r.params["thread_schedule"],
                       start_level=r.params["start_level"])
    torch.testing.assert_close(again.image, r.image, rtol=0, atol=0)


def test_auto_replays_a_thread_schedule_in_every_try(big, style, extractor):
    schedule = [[0, 1], [3, 2], [7, 1]]
    r = nu.stylize(big, style, extractor, steps=9, style_weight="auto", threads=schedule)
    assert r.params["thread_schedule"] == schedule
    again = nu.stylize(big, style, extractor, steps=9, style_weight=r.params["style_weight"], threads=schedule,
                       start_level=r.params["start_level"])
    torch.testing.assert_close(again.image, r.image, rtol=0, atol=0)


def test_auto_records_the_kept_tries_thread_counts(big, style, extractor, monkeypatch):
    from nstutils import threads

    class Crowded(threads.ThreadGovernor):  # as if another program took a core at step 2 of every try
        def stop(self, step=0):
            if step == 2 and self.threads > 1:
                self.threads = 1
                self.set_threads(1)
                self.schedule.append([step, 1])
            return self.threads

    monkeypatch.setattr(threads, "ThreadGovernor", Crowded)
    real = balance.structure_forecast
    monkeypatch.setattr(balance, "structure_forecast", lambda c, r: -0.5 if r.shape[-1] == 128 and tried[-1] == 30.0 else real(c, r))
    tried = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        r = nu.stylize(big, style, extractor, steps=9, style_weight="auto", callback=lambda i: tried.append(i.probe))
    finally:
        torch.set_num_threads(before)
    assert r.params["style_weight_probes"][0] == [30.0, -0.5] and r.params["style_weight"] != 30.0
    # The first try dropped to 1 thread at step 2; the kept try ran on 1 thread from its start.
    assert r.params["thread_schedule"] == [[0, 1]]
    again = nu.stylize(big, style, extractor, steps=9, style_weight=r.params["style_weight"], threads=[[0, 1]],
                       start_level=r.params["start_level"])
    torch.testing.assert_close(again.image, r.image, rtol=0, atol=0)


def test_stopping_while_auto_tries_ends_the_run_with_that_try(big, style, extractor):
    r = nu.stylize(big, style, extractor, steps=18, style_weight="auto", callback=lambda info: info.step >= 3)
    assert r.status == "stopped" and "while trying style weight 30" in r.message
    assert r.params["style_weight"] == 30.0 and r.params["style_weight_probes"] == []
    assert r.image.shape == big.shape and [h.step for h in r.history] == [1, 2, 3]


def test_auto_with_random_weights_and_two_styles(content, style):
    ex = nu.VGGFeatures(nu.load_vgg19("random"), layers=(*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers))
    r = nu.stylize(content, [style, style.flip(-1)], ex, steps=2, style_weight="auto", style_blend=[0.5, 0.5])
    assert r.status == "completed" and r.params["style_weight_auto"] and r.image.shape == content.shape


def test_cli_parses_auto_and_numbers():
    parse = lambda *a: build_parser().parse_args(["stylize", "c.jpg", "s.jpg", "-o", "o.png", *a])
    assert parse("--style-weight", "auto").style_weight == "auto"
    assert parse("--style-weight", "AUTO").style_weight == "auto"
    assert parse("--style-weight", "12.5").style_weight == 12.5
    assert parse().style_weight == nu.DEFAULTS.app_style_weight == "auto"
    for bad in ("-1", "lots"):
        with pytest.raises(SystemExit):
            parse("--style-weight", bad)


def test_playground_auto_moves_the_slider_and_a_hand_move_unticks_it(extractor, tmp_path):
    from nstutils.widgets import Playground

    app = Playground(data=DATA, device="cpu", extractor=extractor, size=48, steps=2,
                     out_dir=tmp_path, refresh_s=0.0, plot_s=60.0)
    c = app.controls
    c["style_weight_auto"].value = False
    c["style_weight_auto"].value = True
    assert app.settings().style_weight == "auto" and "style auto" in app.settings().summary()
    result = app.run()
    assert result.params["style_weight_auto"] and c["style_weight"].value == pytest.approx(result.params["style_weight"])
    assert c["style_weight_auto"].value  # still ticked: the slider only shows what auto chose
    c["style_weight"].value = 3.0
    assert not c["style_weight_auto"].value and app.settings().style_weight == 3.0
    c["reset"].click()
    assert c["style_weight_auto"].value  # the default
