import pytest
import torch
from torch.autograd import gradcheck

import nstutils as nu
from conftest import DATA


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_gram_of_ones():
    g = nu.gram(torch.ones(2, 3, 4, 5))
    assert g.shape == (2, 3, 3)
    torch.testing.assert_close(g, torch.ones(2, 3, 3))


def test_gram_against_a_naive_loop():
    f = _rand(2, 4, 3, 5)
    b, c, h, w = f.shape
    naive = torch.zeros(b, c, c)
    for n in range(b):
        for i in range(c):
            for j in range(c):
                naive[n, i, j] = sum(f[n, i, y, x] * f[n, j, y, x] for y in range(h) for x in range(w)) / (h * w)
    torch.testing.assert_close(nu.gram(f), naive)


def test_gram_is_symmetric_and_batched_not_folded():
    f = _rand(2, 6, 7, 7)
    g = nu.gram(f)
    torch.testing.assert_close(g, g.transpose(1, 2))
    torch.testing.assert_close(g[1:], nu.gram(f[1:]))


def test_gram_is_independent_of_image_size():
    f = _rand(1, 3, 4, 4)
    tiled = f.repeat(1, 1, 3, 5)  # the same statistics over 15x as many positions
    torch.testing.assert_close(nu.gram(tiled), nu.gram(f))


def test_gram_of_bf16_features_is_float32_with_a_matching_gradient():
    f = _rand(1, 8, 16, 16, seed=4).to(torch.bfloat16)  # values exactly representable in bf16
    exact = f.float().requires_grad_(True)
    half = f.clone().requires_grad_(True)
    g32, g16 = nu.gram(exact), nu.gram(half)
    assert g16.dtype == torch.float32
    torch.testing.assert_close(g16, g32, rtol=4e-3, atol=0)  # only the product is rounded
    target = torch.full_like(g32, 0.2)
    ((g32 - target) ** 2).sum().backward()
    ((g16 - target) ** 2).sum().backward()
    assert half.grad.dtype == torch.bfloat16
    rel = (half.grad.float() - exact.grad).norm() / exact.grad.norm()
    assert rel < 0.01, float(rel)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_gram_of_channels_last_features_matches_with_a_gradient_in_the_same_layout(dtype):
    f = _rand(2, 8, 6, 5, seed=5).to(dtype)
    last = f.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    plain = f.clone().requires_grad_(True)
    assert not last.is_contiguous()
    target = torch.full((2, 8, 8), 0.2, dtype=nu.gram(f).dtype)
    for x in (plain, last):
        ((nu.gram(x) - target) ** 2).sum().backward()
    torch.testing.assert_close(nu.gram(last), nu.gram(plain))  # the same sums, in another order
    torch.testing.assert_close(last.grad, plain.grad)
    assert last.grad.is_contiguous(memory_format=torch.channels_last) and not last.grad.is_contiguous()


def test_gradcheck_gram_channels_last():
    x = _rand(1, 3, 4, 5, seed=6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    assert gradcheck(nu.gram, (x.requires_grad_(True),), eps=1e-6, atol=1e-5)


def test_content_loss_of_bf16_features_is_float32():
    f = _rand(1, 2, 3, 3).to(torch.bfloat16)
    loss = nu.content_loss(f, torch.zeros(1, 2, 3, 3))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, (f.float() ** 2).mean())


def test_content_loss_known_values():
    f = _rand(1, 8, 5, 5)
    assert nu.content_loss(f, f.clone()).item() == 0
    assert nu.content_loss(torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 3.0)).item() == pytest.approx(9)
    with pytest.raises(ValueError, match="differ"):
        nu.content_loss(f, f[..., :4])


def test_style_loss_weights_and_zero():
    feats = {"a": _rand(1, 4, 6, 6, seed=1), "b": _rand(1, 8, 3, 3, seed=2)}
    grams = {k: nu.gram(v) for k, v in feats.items()}
    assert nu.style_loss(feats, grams).item() == 0
    other = {k: nu.gram(v * 2) for k, v in feats.items()}
    la = torch.mean((grams["a"] - other["a"]) ** 2)
    lb = torch.mean((grams["b"] - other["b"]) ** 2)
    torch.testing.assert_close(nu.style_loss(feats, other), (la + lb) / 2)
    torch.testing.assert_close(nu.style_loss(feats, other, {"a": 3.0, "b": 0.0}), 3 * la)
    with pytest.raises(ValueError, match="no features for style layer"):
        nu.style_loss({"a": feats["a"]}, other)


def test_tv_known_values():
    assert nu.tv_loss(torch.full((1, 3, 8, 8), 0.3)).item() == 0
    for kind in nu.losses.TV_KINDS:
        assert nu.tv_loss(torch.full((1, 3, 5, 5), 0.7), kind).item() == 0
    x = torch.zeros(1, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0  # dx: [-1, 0] over 2 rows -> mean 0.5 (sq), dy: likewise
    assert nu.tv_loss(x, "squared").item() == pytest.approx(0.5 + 0.5)
    assert nu.tv_loss(x, "absolute").item() == pytest.approx(0.5 + 0.5)
    assert nu.tv_loss(x, "power").item() == pytest.approx(2 ** 1.25)  # one cell, dx^2 + dy^2 = 2
    with pytest.raises(ValueError, match="unknown TV kind"):
        nu.tv_loss(x, "huber")


@pytest.mark.parametrize("fn", [
    lambda x: nu.gram(x),
    lambda x: nu.content_loss(x, torch.ones_like(x)),
    lambda x: nu.style_loss({"l": x}, {"l": torch.ones(1, 3, 3, dtype=x.dtype)}),
    lambda x: nu.tv_loss(x, "squared"),
    lambda x: nu.tv_loss(x, "absolute"),
    lambda x: nu.tv_loss(x, "power"),
])
def test_gradcheck_float64(fn):
    x = _rand(1, 3, 4, 5, seed=4, dtype=torch.float64).requires_grad_(True)
    assert gradcheck(fn, (x,), eps=1e-6, atol=1e-5)


def test_losses_do_not_mutate_inputs():
    f, t = _rand(1, 3, 4, 4), _rand(1, 3, 4, 4, seed=9)
    fc, tc = f.clone(), t.clone()
    nu.content_loss(f, t), nu.style_loss({"x": f}, {"x": nu.gram(t)}), nu.tv_loss(f), nu.gram(f)
    assert torch.equal(f, fc) and torch.equal(t, tc)


def test_relative_weights():
    targets = {"a": torch.full((1, 2, 2), 10.0), "b": torch.full((1, 2, 2), 0.1)}
    w = nu.relative_weights(targets)
    assert w["a"] == pytest.approx(0.5 / 100) and w["b"] == pytest.approx(0.5 / 0.01)
    w = nu.relative_weights(targets, {"a": 3.0, "b": 1.0})
    assert w["a"] == pytest.approx(0.75 / 100)
    with pytest.raises(ValueError, match="not a target layer"):
        nu.relative_weights(targets, {"c": 1.0})


def test_loss_terms_mean_the_same_at_128_and_1024_px(extractor):
    """The chosen normalization: each weighted term changes little with resolution.

    With sums (Gatys' content loss, an un-normalized Gram, a summed TV) the terms would grow by
    64x (pixels) or 4096x (pixels squared) from 128 to 1024 px. With means, content and style
    stay within 3x. TV depends on the picture: natural images are only roughly scale-invariant
    (measured 1024/128 ratios: Petra 0.29, Tuebingen 1.9), so its bound is 4x.
    """
    terms = {}
    for side in (128, 1024):
        content = nu.load_image(DATA / "content/tubingen_neckarfront.jpg", max_side=side)
        style = nu.load_image(DATA / "style/van_gogh_starry_night.jpg", max_side=side)
        # Petra is 1024 px wide natively; an upsampled photo would be unnaturally smooth at 1024.
        start = nu.load_image(DATA / "content/petra_tomb_facade.jpg", size=tuple(content.shape[-2:]))
        targets = nu.make_targets(extractor, content, style, content_layers=nu.DEFAULTS.content_layers,
                                  style_layers=nu.DEFAULTS.style_layers)
        with torch.no_grad():
            terms[side] = nu.loss_terms(start, extractor, targets, content_weight=1, style_weight=1, tv_weight=1)
            terms[side]["tv_content"] = nu.tv_loss(content)
    for name, bound in (("content", 3), ("style", 3), ("tv", 4), ("tv_content", 4)):
        ratio = (terms[1024][name] / terms[128][name]).item()
        assert 1 / bound < ratio < bound, (name, ratio)


def test_objective_content_term_is_relative_to_the_target(extractor, content, style):
    """loss_terms's content term is mean((F - P)^2) / mean(P^2), not the plain mean square."""
    targets = nu.make_targets(extractor, content, style, content_layers=("relu4_2",), style_layers=("relu1_1",))
    other = content.flip(-1)
    f = extractor(other, layers=("relu4_2",))["relu4_2"]
    p = targets.content["relu4_2"]
    term = nu.loss_terms(other, extractor, targets, content_weight=1, style_weight=0, tv_weight=0)["content"]
    torch.testing.assert_close(term, nu.content_loss(f, p) / p.pow(2).mean(), rtol=1e-5, atol=0)
    assert float(nu.content_loss(f, p)) > 100 * float(term)  # the raw mean square is far larger
