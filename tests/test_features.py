from pathlib import Path

import numpy as np
import pytest
import torch

import nstutils as nu
from conftest import pattern

REFERENCE = Path(__file__).parent / "data/caffe_reference.npz"


def test_returns_named_features_with_shapes(extractor):
    feats = extractor(pattern(64, 80), layers=("relu1_1", "relu4_2", "relu5_1"))
    assert list(feats) == ["relu1_1", "relu4_2", "relu5_1"]
    assert feats["relu1_1"].shape == (1, 64, 64, 80)
    assert feats["relu4_2"].shape == (1, 512, 8, 10)
    assert feats["relu5_1"].shape == (1, 512, 4, 5)


def test_batch_of_two(extractor):
    x = torch.cat([pattern(), pattern().flip(-1)])
    feats = extractor(x, layers=("relu2_1",))
    assert feats["relu2_1"].shape == (2, 128, 16, 20)
    single = extractor(x[:1], layers=("relu2_1",))["relu2_1"]
    # Batched convolutions may pick another algorithm: compare relative to the feature scale.
    torch.testing.assert_close(feats["relu2_1"][:1], single, rtol=0, atol=1e-4 * single.abs().max().item())


def test_stored_reference_values():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_reference import reference

    stored = np.load(REFERENCE)
    fresh = reference()
    assert set(stored.files) == set(fresh)
    for key in stored.files:
        np.testing.assert_allclose(fresh[key], stored[key], rtol=1e-4, atol=1e-3 * np.abs(stored[key]).max())


def test_truncated_frozen_not_inplace(vgg):
    ex = nu.VGGFeatures(vgg, layers=("relu3_1",))
    assert ex.layers[-1] == "relu3_1" and len(ex.net) == nu.torchvision_index("relu3_1") + 1
    assert not ex.training and all(not p.requires_grad for p in ex.parameters())
    assert all(not m.inplace for m in ex.net if isinstance(m, torch.nn.ReLU))
    with pytest.raises(ValueError, match="deeper than this extractor"):
        ex(pattern(), layers=("relu4_1",))


def test_conv_and_relu_of_the_same_layer(extractor):
    feats = extractor(pattern(), layers=("conv4_2", "relu4_2"))
    torch.testing.assert_close(feats["relu4_2"], feats["conv4_2"].clamp(min=0))
    assert (feats["conv4_2"] < 0).any()  # an in-place ReLU would have zeroed these


def test_unknown_layer_and_too_small_image(extractor):
    with pytest.raises(ValueError, match="unknown layer 'relu9_1'; valid: conv1_1"):
        extractor(pattern(), layers=("relu9_1",))
    with pytest.raises(ValueError, match=r"too small for 'relu5_1' \(needs a side of at least 16 px\); "
                                         r"valid at this size: conv1_1.*relu4_2"):
        extractor(pattern(12, 40), layers=("relu5_1",))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        extractor(torch.zeros(1, 1, 32, 32), layers=("relu1_1",))


def test_preprocessing_caffe_and_imagenet_round_trip():
    x = pattern()
    white = torch.ones(1, 3, 1, 1)
    torch.testing.assert_close(nu.preprocess(white, "caffe").flatten(),
                               torch.tensor([255 - 103.939, 255 - 116.779, 255 - 123.68]))
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    assert nu.preprocess(red, "caffe").flatten()[2] == pytest.approx(255 - 123.68)  # R is last (BGR)
    for kind in ("caffe", "imagenet"):
        torch.testing.assert_close(nu.deprocess(nu.preprocess(x, kind), kind), x)
    with pytest.raises(ValueError):
        nu.preprocess(x, "bgr")


def test_avg_pooling_changes_deep_features(vgg):
    x = pattern(64, 64)
    mx = nu.VGGFeatures(vgg, layers=("relu3_1",))(x)["relu3_1"]
    av = nu.VGGFeatures(vgg, layers=("relu3_1",), pooling="avg")(x)["relu3_1"]
    assert mx.shape == av.shape and not torch.allclose(mx, av)
    with pytest.raises(ValueError, match="pooling"):
        nu.VGGFeatures(vgg, pooling="median")


def test_extractor_does_not_modify_input_or_vgg(vgg):
    x = pattern()
    before, w = x.clone(), vgg.features[0].weight.clone()
    nu.VGGFeatures(vgg, layers=("relu1_1",))(x)
    assert torch.equal(x, before) and torch.equal(vgg.features[0].weight, w)


def test_gradients_flow_to_the_image(extractor):
    x = pattern().requires_grad_(True)
    extractor(x, layers=("relu3_1",))["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _calibration():
    return [pattern(64, 80), pattern(48, 48).flip(-1), nu.load_image(Path(__file__).resolve().parents[1]
                                                                       / "data/content/tubingen_neckarfront.jpg", max_side=64)]


def test_normalized_vgg_has_mean_activation_one(vgg):
    from nstutils.features import channel_means, normalize_vgg

    images = _calibration()
    before = channel_means(vgg, images)
    after = channel_means(normalize_vgg(vgg, images), images)
    for name, s in after.items():
        alive = before[name] > 0
        torch.testing.assert_close(s[alive], torch.ones_like(s[alive]), rtol=1e-3, atol=0)
        torch.testing.assert_close(s[~alive], torch.zeros_like(s[~alive]))  # silent stays silent
    assert before["relu1_1"].max() > 10  # the unnormalized network is far from 1


def test_normalized_features_are_the_originals_over_a_positive_factor(vgg):
    from nstutils.features import channel_means, normalize_vgg

    images = _calibration()
    norm = normalize_vgg(vgg, images)
    means = channel_means(vgg, images)
    other = pattern(32, 40).flip(-2)  # not a calibration image
    layers = ("conv1_1", "relu1_1", "relu2_1", "conv4_2", "relu4_2", "pool4", "relu5_1")
    f0 = nu.VGGFeatures(vgg)(other, layers=layers)
    f1 = nu.VGGFeatures(norm)(other, layers=layers)
    for name in layers:
        s = means["relu" + (name[4:] if not name.startswith("pool") else {"pool4": "4_4"}[name])]
        s = torch.where(s > 0, s, torch.ones_like(s)).view(1, -1, 1, 1)
        torch.testing.assert_close(f1[name], f0[name] / s, rtol=1e-3, atol=1e-4 * float((f0[name] / s).abs().max()))
    assert norm.preprocessing == vgg.preprocessing and "normalized" in norm.weights_id
    assert not torch.equal(norm.features[0].weight, vgg.features[0].weight)  # a copy was changed
    with pytest.raises(ValueError, match="no calibration images"):
        normalize_vgg(vgg, [])
