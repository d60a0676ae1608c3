"""Coarse-to-fine levels, the bfloat16 path and the memory estimate."""

import pytest
import torch

import nstutils as nu
from nstutils.device import choose_precision
from nstutils.memory import check_memory
from nstutils.provenance import stylize_kwargs
from nstutils.pyramid import add_start_level, pyramid_sizes, resize, split_steps

LAYERS = (*nu.DEFAULTS.content_layers, *nu.DEFAULTS.style_layers)


def test_pyramid_sizes_halve_down_to_the_minimum():
    assert pyramid_sizes((384, 512)) == [(96, 128), (192, 256), (384, 512)]
    assert pyramid_sizes((1536, 2048)) == [(96, 128), (192, 256), (384, 512), (768, 1024), (1536, 2048)]
    assert pyramid_sizes((200, 255)) == [(200, 255)]  # too small for a second level
    assert pyramid_sizes((301, 257), min_side=64) == [(75, 64), (150, 128), (301, 257)]


@pytest.mark.parametrize("steps,levels", [(200, 3), (7, 3), (3, 3), (1, 1), (0, 2), (101, 5)])
def test_split_steps_adds_up_and_favours_coarse_levels(steps, levels):
    out = split_steps(steps, levels)
    assert len(out) == levels and sum(out) == steps
    assert out == sorted(out, reverse=True)
    if steps >= levels:
        assert min(out) >= 1
    assert split_steps(144, 3) == [96, 24, 24]  # 4:1:1
    assert split_steps(144, 2) == [96, 48]  # 2:1
    assert split_steps(144, 4) == [102, 14, 14, 14]  # 7:1:1:1: the finest keeps 1/10
    assert split_steps(144, 1) == [144]


def test_a_pyramid_starts_one_level_coarser_with_half_the_coarsest_steps():
    sizes = [(96, 128), (192, 256), (384, 512)]
    assert add_start_level(sizes, [96, 24, 24]) == ([(48, 64), *sizes], [48, 48, 24, 24])
    assert add_start_level(sizes[1:], [7, 3]) == ([(96, 128), (192, 256), (384, 512)], [4, 3, 3])
    assert add_start_level([(384, 512)], [144]) == ([(384, 512)], [144])  # no pyramid: as it was
    assert add_start_level(sizes, [1, 1, 1]) == (sizes, [1, 1, 1])  # no step to share
    # stylize's levels: the default 512 px run, a 384 px one; "auto" (start_level=False) keeps 128 px.
    assert nu.optimize.levels((384, 512), LAYERS, 144, True) == ([(48, 64), *sizes], [48, 48, 24, 24])
    assert nu.optimize.levels((288, 384), LAYERS, 144, True) == ([(72, 96), (144, 192), (288, 384)], [48, 48, 48])
    assert nu.optimize.levels((384, 512), LAYERS, 144, True, start_level=False) == (sizes, [96, 24, 24])
    assert nu.optimize.levels((200, 255), LAYERS, 144, True) == ([(200, 255)], [144])
    assert nu.optimize.levels((384, 512), LAYERS, 144, False) == ([(384, 512)], [144])
    # A wide image whose start level would be too small for relu5_1 (16 px) goes without it.
    assert nu.optimize.levels((60, 512), LAYERS, 144, True) == ([(30, 256), (60, 512)], [96, 48])


def test_the_start_level_is_recorded_and_checked(content, style, extractor):
    big = torch.nn.functional.interpolate(content, size=(64, 256), mode="bilinear").clamp(0, 1)
    r = nu.stylize(big, style, extractor, steps=4, precision="fp32")
    assert r.params["start_level"] is True and r.params["levels"] == [[16, 64], [32, 128], [64, 256]]
    assert r.params["level_steps"] == [2, 1, 1]
    off = nu.stylize(big, style, extractor, steps=4, precision="fp32", start_level=False)
    assert off.params["start_level"] is False and off.params["levels"] == [[32, 128], [64, 256]]
    kwargs = stylize_kwargs(r.params)
    assert kwargs["start_level"] is True
    old = {k: v for k, v in r.params.items() if k != "start_level"}  # saved before the start level
    assert stylize_kwargs(old)["start_level"] is False
    with pytest.raises(ValueError, match="start_level must be True, False or None"):
        nu.stylize(big, style, extractor, steps=4, start_level="yes")


def test_resize_keeps_range_and_identity():
    img = torch.rand(1, 3, 20, 30)
    assert resize(img, (20, 30)) is img
    for size in ((10, 15), (41, 61)):
        out = resize(img, size)
        assert out.shape[-2:] == size and out.min() >= 0 and out.max() <= 1


def test_pyramid_levels_end_to_end(content, style, extractor, monkeypatch):
    # A 64 px image is below 2 x 128 px (one level); a 16 px minimum gives three small levels.
    monkeypatch.setattr(nu.optimize, "pyramid_sizes", lambda size: pyramid_sizes(size, min_side=16))
    ex = extractor
    infos = []
    r = nu.stylize(content, style, ex, steps=7, snapshot_every=2, precision="fp32",
                   callback=lambda i: infos.append((i.step, i.steps, tuple(i.image.shape[-2:]))))
    # The 12x16 level is dropped: relu5_1 needs a side of 16 px.
    assert r.params["levels"] == [[24, 32], [48, 64]] and r.params["level_steps"] == [5, 2]
    assert r.image.shape == content.shape and r.status == "completed"
    assert [i[0] for i in infos] == list(range(1, 8)) and all(i[1] == 7 for i in infos)
    assert [i[2] for i in infos] == [(24, 32)] * 5 + [(48, 64)] * 2
    assert [h.level for h in r.history] == [0] * 5 + [1] * 2
    assert [h.step for h in r.history] == list(range(1, 8))
    assert all(a.seconds <= b.seconds for a, b in zip(r.history, r.history[1:]))
    assert [s for s, _ in r.snapshots] == [0, 2, 4, 6]
    # Each level starts from the upsampled result of the one before, not from the content again:
    # the first full-size loss is already below that of the content image itself.
    plain = nu.stylize(content, style, ex, steps=1, pyramid=False, precision="fp32")
    assert r.history[-1].total < plain.history[0].total


def test_no_pyramid_and_tensor_init_run_at_full_size(content, style, extractor):
    r = nu.stylize(content, style, extractor, steps=2, pyramid=False, precision="fp32")
    assert r.params["levels"] == [list(content.shape[-2:])] and r.params["pyramid"] is False
    r2 = nu.stylize(content, style, extractor, steps=2, init=r.image, precision="fp32")
    assert r2.params["levels"] == [list(content.shape[-2:])]


def test_bf16_features_are_bf16_and_close(content, extractor):
    f32 = extractor(content, layers=LAYERS)
    bf = extractor(content, layers=LAYERS, precision="bf16")
    for n in LAYERS:
        assert f32[n].dtype == torch.float32 and bf[n].dtype == torch.bfloat16
        assert f32[n].is_contiguous() and bf[n].is_contiguous(memory_format=torch.channels_last)
        rel = (bf[n].float() - f32[n]).norm() / f32[n].norm()
        assert rel < 0.03, (n, float(rel))
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        extractor(content, precision="fp16")


def test_bf16_run_lowers_the_fp32_loss(content, style, extractor):
    targets = nu.make_targets(extractor, content, style, content_layers=nu.DEFAULTS.content_layers,
                              style_layers=nu.DEFAULTS.style_layers)

    def loss(img):
        with torch.no_grad():
            return float(nu.loss_terms(img, extractor, targets, content_weight=1, style_weight=30,
                                       tv_weight=1)["total"])

    r = nu.stylize(content, style, extractor, steps=10, precision="bf16", pyramid=False)
    assert r.params["precision"] == "bf16"
    assert loss(r.image) < 0.5 * loss(content)
    with pytest.raises(ValueError, match="unknown precision"):
        nu.stylize(content, style, extractor, steps=1, precision="half")


def test_auto_precision_is_a_valid_choice():
    assert choose_precision("cpu") in ("fp32", "bf16")
    assert choose_precision("meta") == "fp32"


def test_memory_estimate_grows_with_pixels_history_and_depth():
    est = lambda size, **kw: nu.estimate_memory(size, layers=LAYERS, **kw)  # noqa: E731
    small, big = est((384, 512)), est((768, 1024))
    assert big > 2 * (small - nu.memory.BASE_BYTES)
    assert est((768, 1024), steps=5) < est((768, 1024), steps=100)
    assert est((768, 1024), optimizer="adam") < est((768, 1024))
    assert nu.estimate_memory((768, 1024), layers=("relu1_1",)) < big


def test_too_little_memory_is_refused_with_the_estimate(content, style, extractor):
    with pytest.raises(MemoryError, match=r"would need about .* GB.*estimate_memory"):
        nu.stylize(content, style, extractor, steps=1, max_memory=1000)
    check_memory(10, None, (4, 4))  # unknown limit: no check
    check_memory(10, 10, (4, 4))
