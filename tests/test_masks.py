"""Masks for spatial control and the guided Gram matrices built on them."""

import pytest
import torch
from PIL import Image
from torch.autograd import gradcheck

import nstutils as nu
from nstutils import masks as M
from nstutils.color import luminance
from nstutils.losses import guided_gram, guided_relative_weights, guided_style_loss
from conftest import pattern


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- mask makers ---------------------------------------------------------------------------

def test_threshold_mask_follows_the_luminance():
    img = pattern(20, 30)
    m = M.threshold_mask(img, level=0.5, softness=0.1)
    assert m.shape == (1, 1, 20, 30) and m.dtype == torch.float32
    assert 0 <= m.min() and m.max() <= 1
    torch.testing.assert_close(m, torch.sigmoid(4 * (luminance(img) - 0.5) / 0.1))
    assert (m > 0.5).equal(luminance(img) > 0.5)  # brighter than the level: inside
    assert M.threshold_mask(torch.ones(1, 3, 4, 4)).min() > 0.99
    assert M.threshold_mask(torch.zeros(1, 3, 4, 4)).max() < 0.01
    assert M.threshold_mask(torch.full((1, 3, 2, 2), 0.3), level=0.3).eq(0.5).all()
    hard = M.threshold_mask(img, 0.5, softness=0)
    assert set(hard.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        M.threshold_mask(torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="softness"):
        M.threshold_mask(img, softness=-1)
    sky = torch.tensor([0.3, 0.5, 0.8]).view(1, 3, 1, 1).expand(1, 3, 2, 2)  # darker than 0.5, but blue
    assert M.threshold_mask(sky).max() < 0.5 and M.threshold_mask(sky, 0.2, weights=(-1, 0, 1)).min() > 0.5
    with pytest.raises(ValueError, match="3 numbers"):
        M.threshold_mask(img, weights=(1, 1))


@pytest.mark.parametrize("h, w", [(8, 12), (37, 53)])
def test_split_mask_sides(h, w):
    left, right = M.split_mask(h, w, "left"), M.split_mask(h, w, "right")
    top, bottom = M.split_mask(h, w, "top"), M.split_mask(h, w, "bottom")
    for m in (left, right, top, bottom):
        assert m.shape == (1, 1, h, w) and m.dtype == torch.float32 and 0 <= m.min() and m.max() <= 1
    assert torch.equal(left + right, torch.ones(1, 1, h, w))  # exact complements
    torch.testing.assert_close(top + bottom, torch.ones(1, 1, h, w))
    assert left[..., 0].eq(1).all() and left[..., -1].eq(0).all()
    assert right[..., -1].eq(1).all() and top[..., 0, :].eq(1).all() and bottom[..., -1, :].eq(1).all()
    assert torch.equal(left[..., :1, :].expand(1, 1, h, w), left)  # constant down each column
    assert left.mean().item() == pytest.approx(0.5, abs=0.03)


def test_split_mask_position_and_feather():
    m = M.split_mask(10, 100, "left", at=0.25, feather=0)
    assert set(m.unique().tolist()) == {0.0, 1.0} and m[0, 0, 0].sum().item() == 25
    soft = M.split_mask(10, 100, "left", at=0.25, feather=0.1)  # ramp over 10 columns
    ramp = soft[0, 0, 0]
    assert ramp[:20].eq(1).all() and ramp[30:].eq(0).all() and ((ramp > 0) & (ramp < 1)).sum() == 10
    assert soft.mean().item() == pytest.approx(0.25, abs=1e-6)
    with pytest.raises(ValueError, match="unknown side"):
        M.split_mask(4, 4, "middle")
    with pytest.raises(ValueError, match="feather"):
        M.split_mask(4, 4, feather=-0.1)


def test_load_mask_any_file(tmp_path):
    arr = Image.new("L", (40, 20), 0)
    arr.paste(255, (0, 0, 20, 20))  # left half white
    arr.save(tmp_path / "m.png")
    m = M.load_mask(tmp_path / "m.png")
    assert m.shape == (1, 1, 20, 40) and m[..., :20].eq(1).all() and m[..., 20:].eq(0).all()
    small = M.load_mask(tmp_path / "m.png", size=(10, 16))
    assert small.shape == (1, 1, 10, 16) and 0 <= small.min() and small.max() <= 1
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(tmp_path / "clear.png")  # transparent -> white
    assert M.load_mask(tmp_path / "clear.png").eq(1).all()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "red.png")  # colour -> its luma
    torch.testing.assert_close(M.load_mask(tmp_path / "red.png"), torch.full((1, 1, 8, 8), 0.299))
    with pytest.raises(FileNotFoundError):
        M.load_mask(tmp_path / "missing.png")


def test_complement_and_regions():
    m = M.split_mask(6, 9, "top", feather=0.3)
    torch.testing.assert_close(M.complement(m), M.split_mask(6, 9, "bottom", feather=0.3))
    r = M.regions(m)
    assert r.shape == (2, 1, 6, 9) and torch.equal(r[0:1], m) and torch.equal(r.sum(0), torch.ones(1, 6, 9))
    assert M.regions(m[0, 0]).shape == (2, 1, 6, 9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.complement(m * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.regions(m - 0.5)


def test_to_masks_accepts_the_usual_forms():
    a, b = M.split_mask(8, 8, "left"), M.split_mask(16, 12, "right")
    assert M.to_masks(torch.cat([a, a])).shape == (2, 1, 8, 8)
    out = M.to_masks([a, b[0, 0]], size=(10, 14))
    assert out.shape == (2, 1, 10, 14) and 0 <= out.min() and out.max() <= 1
    assert M.to_masks(a[0]).shape == (1, 1, 8, 8)
    assert torch.equal(M.to_masks(a, size=(8, 8)), a)  # no resampling when the size fits
    with pytest.raises(ValueError, match="different sizes"):
        M.to_masks([a, b])
    with pytest.raises(ValueError, match="no masks"):
        M.to_masks([])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.to_masks([a, b * 3], size=(8, 8))
    with pytest.raises(ValueError, match="shape"):
        M.to_masks(torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        M.to_masks(torch.ones(1, 1, 4, 4, dtype=torch.long))


# --- masks at the feature sizes ------------------------------------------------------------

@pytest.mark.parametrize("h, w", [(37, 53), (48, 64), (33, 17), (64, 41)])
def test_layer_masks_match_the_feature_sizes(extractor, h, w):
    layers = nu.DEFAULTS.style_layers
    feats = extractor(torch.rand(1, 3, h, w), layers=layers)
    masks = M.regions(M.split_mask(h, w, "left"))
    lm = M.layer_masks(masks, {n: f.shape[-2:] for n, f in feats.items()})
    for n in layers:
        assert lm[n].shape == (2, 1, *feats[n].shape[-2:]), n
        torch.testing.assert_close(lm[n].sum(0), torch.ones_like(lm[n][0]))  # regions still sum to 1
    assert M.layer_masks(masks, feats)["relu3_1"].shape == lm["relu3_1"].shape  # tensors work too


def test_layer_masks_average_the_pixel_blocks_of_vgg_pooling():
    m = _rand(2, 1, 37, 53)
    lm = M.layer_masks(m, {"a": (37, 53), "b": (18, 26), "c": (2, 3)})
    assert torch.equal(lm["a"], m)
    naive = torch.stack([torch.stack([m[:, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean((1, 2))
                                      for j in range(26)], -1) for i in range(18)], -2)
    torch.testing.assert_close(lm["b"][:, 0], naive)
    torch.testing.assert_close(lm["c"][0, 0, 1, 2], m[0, 0, 16:32, 32:48].mean())  # 4 poolings: 16x16 blocks
    odd = M.layer_masks(m, {"x": (5, 7)})["x"]  # not a halving of 37x53: adaptive average pooling
    torch.testing.assert_close(odd, torch.nn.functional.adaptive_avg_pool2d(m, (5, 7)))
    thin = torch.zeros(1, 1, 64, 64)
    thin[..., 30, :] = 1  # one row of pixels stays in the deepest layer, with a small value
    assert M.layer_masks(thin, {"d": (4, 4)})["d"].sum() > 0
    with pytest.raises(ValueError, match=r"\(K, 1, H, W\)"):
        M.layer_masks(torch.ones(1, 8, 8), {"a": (4, 4)})


# --- guided Gram matrices ------------------------------------------------------------------

def test_guided_gram_against_a_naive_loop():
    f, t = _rand(1, 3, 4, 5, seed=1), _rand(2, 1, 4, 5, seed=2)
    naive = torch.zeros(2, 3, 3)
    for k in range(2):
        norm = sum(t[k, 0, y, x] ** 2 for y in range(4) for x in range(5))
        for i in range(3):
            for j in range(3):
                naive[k, i, j] = sum(t[k, 0, y, x] ** 2 * f[0, i, y, x] * f[0, j, y, x]
                                     for y in range(4) for x in range(5)) / norm
    torch.testing.assert_close(guided_gram(f, t), naive)


def test_guided_gram_known_values():
    f = _rand(1, 6, 7, 9, seed=3)
    assert torch.equal(guided_gram(f, torch.ones(1, 1, 7, 9)), nu.gram(f))  # all ones: exactly gram
    torch.testing.assert_close(guided_gram(f, torch.ones(3, 1, 7, 9)), nu.gram(f).expand(3, 6, 6))
    left = M.split_mask(7, 9, "left", at=4 / 9, feather=0)  # the first 4 columns
    torch.testing.assert_close(guided_gram(f, left), nu.gram(f[..., :4]))  # a region's average
    soft = _rand(1, 1, 7, 9, seed=4)
    torch.testing.assert_close(guided_gram(f, 0.3 * soft), guided_gram(f, soft))  # scale-free
    empty = guided_gram(f, torch.zeros(2, 1, 7, 9))
    assert torch.equal(empty, torch.zeros(2, 6, 6))  # no NaN for an empty region
    g = guided_gram(f, _rand(2, 1, 7, 9, seed=5))
    torch.testing.assert_close(g, g.transpose(1, 2))
    with pytest.raises(ValueError, match="to match the features"):
        guided_gram(f, torch.ones(1, 1, 7, 8))
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        guided_gram(f.expand(2, -1, -1, -1), torch.ones(1, 1, 7, 9))


def test_guided_gram_gradcheck_float64():
    t = _rand(2, 1, 4, 5, seed=6, dtype=torch.float64)
    x = _rand(1, 3, 4, 5, seed=7, dtype=torch.float64).requires_grad_(True)
    assert gradcheck(lambda f: guided_gram(f, t), (x,), eps=1e-6, atol=1e-5)


def test_guided_style_loss():
    feats = {"a": _rand(1, 4, 6, 6, seed=1), "b": _rand(1, 8, 3, 3, seed=2)}
    masks = M.layer_masks(M.regions(M.split_mask(6, 6, "top")), {"a": (6, 6), "b": (3, 3)})
    grams = {n: guided_gram(feats[n], masks[n]) for n in feats}
    assert guided_style_loss(feats, grams, masks).item() == 0
    other = {n: g * 2 for n, g in grams.items()}
    per = {n: ((grams[n] - other[n]) ** 2).mean((1, 2)) for n in feats}  # (K,) each
    torch.testing.assert_close(guided_style_loss(feats, other, masks), sum(p.sum() for p in per.values()) / 2)
    w = {"a": (3.0, 0.0), "b": (0.0, 1.0)}
    torch.testing.assert_close(guided_style_loss(feats, other, masks, w), 3 * per["a"][0] + per["b"][1])
    ones = {n: torch.ones(1, 1, *f.shape[-2:]) for n, f in feats.items()}  # one all-ones region
    torch.testing.assert_close(guided_style_loss(feats, {n: g[:1] for n, g in other.items()}, ones),
                               nu.style_loss(feats, {n: g[:1] for n, g in other.items()}))
    with pytest.raises(ValueError, match="2 regions"):
        guided_style_loss(feats, other, masks, {"a": (1.0,), "b": (1.0, 1.0)})
    with pytest.raises(ValueError, match="no features or masks"):
        guided_style_loss({"a": feats["a"]}, other, masks)


def test_guided_relative_weights():
    targets = {"a": torch.stack([torch.full((2, 2), 10.0), torch.full((2, 2), 1.0)]),
               "b": torch.stack([torch.full((2, 2), 0.1), torch.full((2, 2), 2.0)])}
    masks = {n: M.regions(M.split_mask(4, 4, "left", at=0.25, feather=0)) for n in targets}
    w = guided_relative_weights(targets, masks)
    # region 0 covers a quarter of the image: share 0.25, and 0.5 per layer over its mean square
    assert w["a"] == pytest.approx((0.25 * 0.5 / 100, 0.75 * 0.5 / 1))
    assert w["b"] == pytest.approx((0.25 * 0.5 / 0.01, 0.75 * 0.5 / 4))
    w = guided_relative_weights(targets, masks, {"a": 1.0, "b": 0.0})
    assert w["b"] == (0.0, 0.0) and w["a"][1] == pytest.approx(0.75)
