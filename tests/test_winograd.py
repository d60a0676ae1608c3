"""Winograd's F(4x4, 3x3) convolutions: the same values and gradients as torch's, and when they are used."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nstutils as nu
from nstutils import winograd
from nstutils.winograd import WinogradConv2d, choose_conv, conv3x3, winograd_weights


def _conv(c_in, c_out, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1).to(dtype).requires_grad_(False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=dtype) * 0.1)
        conv.bias.copy_(torch.randn(c_out, generator=gen, dtype=dtype))
    return conv


@pytest.mark.parametrize("h, w", [(16, 16), (13, 22), (4, 4), (1, 7), (37, 5)])
def test_gradcheck_in_float64(h, w):
    # Exact arithmetic up to float64 rounding: any wrong transform, tile offset or overlap fails here.
    conv = _conv(3, 5, dtype=torch.float64)
    u = winograd_weights(conv.weight)
    x = torch.randn(1, 3, h, w, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(conv3x3(x, u, conv.bias), conv(x), rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(lambda t: conv3x3(t, u, conv.bias), (x,))


def test_bands_of_tile_rows_join_without_seams(monkeypatch):
    # Force one tile row per band, so every band boundary (and its 2-row overlap) is exercised.
    monkeypatch.setattr(winograd, "TILE_BYTES", 1)
    monkeypatch.setattr(winograd, "MIN_TILES", 1)
    conv = _conv(4, 6, dtype=torch.float64)
    x = torch.randn(1, 4, 23, 18, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 6, 23, 18, dtype=torch.float64)
    ours = conv3x3(x, winograd_weights(conv.weight), conv.bias)
    (dx,) = torch.autograd.grad(ours, x, g)
    (ref,) = torch.autograd.grad(conv(x), x, g)
    torch.testing.assert_close(ours, conv(x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dx, ref, rtol=1e-10, atol=1e-10)


def test_float32_error_is_rounding_sized():
    # VGG-sized values (Caffe inputs reach +-150): the error stays near 1e-5 of the largest output.
    conv = _conv(64, 128)
    x = torch.rand(1, 64, 40, 40) * 150
    ref, ours = conv(x), conv3x3(x, winograd_weights(conv.weight), conv.bias)
    assert (ours - ref).abs().max() / ref.abs().max() < 1e-4


def test_module_uses_winograd_only_where_it_pays(monkeypatch):
    calls = []
    monkeypatch.setattr(winograd, "conv3x3", lambda *a: calls.append(a[0].shape) or F.conv2d(a[0], mod.conv.weight, a[2], padding=1))
    mod = WinogradConv2d(_conv(8, 8))
    mod(torch.rand(1, 8, 16, 16))
    assert len(calls) == 1 and mod.u is not None and mod.u.shape == (36, 8, 8)
    mod(torch.rand(1, 8, 8, 8))  # 64 outputs: below MIN_PIXELS
    mod(torch.rand(2, 8, 16, 16))  # a batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mod(torch.rand(1, 8, 16, 16))
    assert len(calls) == 1 and y.dtype == torch.bfloat16


def test_module_rejects_other_convolutions():
    with pytest.raises(ValueError, match="stride 1 and padding 1"):
        WinogradConv2d(nn.Conv2d(4, 4, 3, stride=2, padding=1))
    with pytest.raises(ValueError, match="3x3"):
        winograd_weights(torch.zeros(4, 4, 5, 5))


def test_extractor_copy_matches_and_leaves_the_original(extractor):
    fast = extractor.winograd()
    assert all(type(m) is not WinogradConv2d for m in extractor.net)
    kinds = [type(m).__name__ for m in fast.net if not isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d))]
    # conv1_1, conv1_2 and conv2_1 (3 and 64 input channels) stay direct; conv2_2 onwards is Winograd's
    assert kinds[:3] == ["Conv2d"] * 3 and set(kinds[3:]) == {"WinogradConv2d"}
    img = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(1))
    ref, ours = extractor(img), fast(img)
    assert ref.keys() == ours.keys()
    for name in ref:
        scale = ref[name].abs().max().clamp_min(1e-6)
        assert (ours[name] - ref[name]).abs().max() / scale < 1e-4, name


def test_choose_conv():
    assert choose_conv("cpu", "fp32") == "winograd"
    assert choose_conv("cpu", "bf16") == "direct"
    assert choose_conv("cuda", "fp32") == "direct"
    assert choose_conv("cpu", "fp32", "direct") == "direct"
    with pytest.raises(ValueError, match="valid: auto, direct, winograd"):
        choose_conv("cpu", "fp32", "fft")
    with pytest.raises(ValueError, match="float32 on the CPU"):
        choose_conv("cpu", "bf16", "winograd")
    with pytest.raises(ValueError, match="float32 on the CPU"):
        choose_conv("cuda:0", "fp32", "winograd")


def test_stylize_records_and_follows_conv(extractor):
    content = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    runs = {c: nu.stylize(content, style, extractor, steps=3, pyramid=False, conv=c, precision="fp32")
            for c in ("auto", "direct", "winograd")}
    assert [r.params["conv"] for r in runs.values()] == ["winograd", "direct", "winograd"]
    torch.testing.assert_close(runs["auto"].image, runs["winograd"].image, rtol=0, atol=0)
    torch.testing.assert_close(runs["winograd"].image, runs["direct"].image, rtol=0, atol=2e-3)
    assert all(type(m) is not WinogradConv2d for m in extractor.net)  # the caller's extractor is untouched


def test_memory_estimate_counts_the_transformed_weights():
    layers = nu.DEFAULTS.style_layers + nu.DEFAULTS.content_layers
    extra = (nu.estimate_memory((512, 512), layers=layers, conv="winograd")
             - nu.estimate_memory((512, 512), layers=layers))
    # 36/9 of the weights of conv2_2 ... conv5_1 (12.8 million of them), in float32
    assert extra == 4 * (12_939_264 - 64 * 64 * 9 - 64 * 128 * 9) * 4
