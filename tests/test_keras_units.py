"""nstutils.keras_units: the Keras example's weights in our units give the same loss, times s."""

from __future__ import annotations

import pytest
import torch

import nstutils as nu
from nstutils.keras_units import keras_factors, keras_weights

STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def keras_loss(x, extractor, content, style, a, b, c):
    """The Keras example's loss, literally: sums on 0-255 features, F F^T Grams over positions."""
    h, w = x.shape[-2:]
    layers = ("relu5_2", *STYLE)
    f, p, s = extractor(x, layers=layers), extractor(content, layers=layers), extractor(style, layers=STYLE)
    gram_sum = lambda F: F.flatten(2) @ F.flatten(2).transpose(1, 2)  # noqa: E731
    loss = a * ((f["relu5_2"] - p["relu5_2"]) ** 2).sum()
    for n in STYLE:
        loss = loss + b / len(STYLE) * ((gram_sum(f[n]) - gram_sum(s[n])) ** 2).sum() / (4 * 3**2 * (h * w) ** 2)
    x255 = 255 * x
    dy = x255[..., 1:, :-1] - x255[..., :-1, :-1]
    dx = x255[..., :-1, 1:] - x255[..., :-1, :-1]
    return loss + c * (dx**2 + dy**2).pow(1.25).sum()


@pytest.fixture(scope="module")
def extractor5(vgg):
    return nu.VGGFeatures(vgg, layers=("relu5_2", *STYLE))


@pytest.mark.parametrize("size", [(32, 40), (48, 36)])
def test_converted_weights_give_the_keras_loss(extractor5, content, style, size):
    extractor = extractor5
    resize = lambda img: torch.nn.functional.interpolate(img, size=size, mode="bilinear", align_corners=False)  # noqa: E731
    c, s = resize(content), resize(style)
    x = (c + s) / 2                                       # both terms non-zero
    targets = nu.make_targets(extractor, c, s, content_layers=("relu5_2",), style_layers=STYLE)
    a, b, g = 0.025, 1.0, 1.0
    conv = keras_weights(targets, size, content_weight=a, style_weight=b, tv_weight=g)
    assert conv.weights["content_weight"] == 1.0
    assert sum(conv.weights["style_layer_weights"].values()) == pytest.approx(1.0)
    weighted = nu.make_targets(extractor, c, s, content_layers=("relu5_2",), style_layers=STYLE,
                               style_layer_weights=conv.weights["style_layer_weights"])
    w = {k: v for k, v in conv.weights.items() if k != "style_layer_weights"}
    ours = nu.loss_terms(x, extractor, weighted, tv_kind="power", **w)["total"]
    want = keras_loss(x, extractor, c, s, a, b, g)
    torch.testing.assert_close(conv.scale * ours, want, rtol=2e-3, atol=0)


def test_keras_factors_follow_the_layer_sizes():
    k = keras_factors(64, 64, STYLE)
    assert list(k) == list(STYLE)
    # relu1_1: 64 channels at full size: 64^2 (64*64)^2 / (36 (64*64)^2) = 64^2 / 36
    assert k["relu1_1"] == pytest.approx(64**2 / 36)
    assert k["relu2_1"] == pytest.approx(128**2 / 16 / 36)      # a quarter of the positions, squared
