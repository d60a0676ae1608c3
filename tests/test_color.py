import ast
from pathlib import Path

import pytest
import torch

import nstutils as nu
from conftest import DATA, pattern
from nstutils import color

CONVERSIONS = {"yiq": (color.rgb_to_yiq, color.yiq_to_rgb),
               "ycbcr": (color.rgb_to_ycbcr, color.ycbcr_to_rgb)}
CHROMA_TOL = 1e-5


def _rand(*shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _low_contrast(h, w, mean, mix, seed):
    """Correlated colours around ``mean`` that stay well inside [0, 1] (no clipping anywhere)."""
    noise = torch.randn((3, h * w), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = torch.tensor(mean, dtype=torch.float64).view(3, 1) + torch.tensor(mix, dtype=torch.float64) @ noise
    assert 0.02 < x.min() and x.max() < 0.98
    return x.float().view(1, 3, h, w)


def _cov(img):
    x = img.double().flatten(2)[0]
    d = x - x.mean(1, keepdim=True)
    return d @ d.T / x.shape[1]


def _unclipped(img):
    """(1, 1, H, W) mask of pixels where no channel reached 0 or 1."""
    return ((img > 0) & (img < 1)).all(1, keepdim=True)


def _check_recoloured(out, lum_source, content, space):
    """out has lum_source's luminance and content's chrominance on unclipped pixels."""
    to_space = CONVERSIONS[space][0]
    got, lum, chroma = to_space(out), to_space(lum_source), to_space(content)
    mask = _unclipped(out)
    assert mask.float().mean() > 0.9
    assert ((got[:, :1] - lum[:, :1]).abs() * mask).max() < CHROMA_TOL
    assert ((got[:, 1:] - chroma[:, 1:]).abs() * mask).max() < CHROMA_TOL
    assert (got[:, 1:] - chroma[:, 1:]).abs().mean() < 1e-3  # clipped pixels included


@pytest.mark.parametrize("space", color.SPACES)
def test_conversions_round_trip(space, content):
    forward, inverse = CONVERSIONS[space]
    for img in (content, _rand(2, 3, 8, 5), _rand(1, 3, 4, 4) * 1.5 - 0.25):
        torch.testing.assert_close(inverse(forward(img)), img, atol=1e-6, rtol=0)
        torch.testing.assert_close(forward(inverse(img)), img, atol=1e-6, rtol=0)


def test_known_values():
    def px(*rgb):
        return torch.tensor(rgb).view(1, 3, 1, 1)

    def close(got, want):
        torch.testing.assert_close(got.flatten(), torch.tensor(want), atol=1e-6, rtol=0)

    close(color.rgb_to_yiq(px(1.0, 1.0, 1.0)), [1.0, 0.0, 0.0])
    close(color.rgb_to_yiq(px(0.3, 0.3, 0.3)), [0.3, 0.0, 0.0])
    close(color.rgb_to_yiq(px(1.0, 0.0, 0.0)), [0.299, 0.5959, 0.2115])
    close(color.rgb_to_ycbcr(px(0.0, 0.0, 0.0)), [0.0, 0.5, 0.5])
    close(color.rgb_to_ycbcr(px(0.3, 0.3, 0.3)), [0.3, 0.5, 0.5])
    close(color.rgb_to_ycbcr(px(1.0, 0.0, 0.0)), [0.299, 0.5 - 0.168736, 1.0])
    close(color.rgb_to_ycbcr(px(0.0, 0.0, 1.0)), [0.114, 1.0, 0.5 - 0.081312])
    img = _rand(2, 3, 6, 7)
    lum = color.luminance(img, "yiq")
    assert lum.shape == (2, 1, 6, 7)
    torch.testing.assert_close(lum, color.luminance(img, "ycbcr"))
    torch.testing.assert_close(lum[:, 0], 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2])


def test_unknown_space():
    with pytest.raises(ValueError, match="unknown colour space 'lab'; valid: yiq, ycbcr"):
        color.luminance(pattern(), "lab")


@pytest.mark.parametrize("space", color.SPACES)
def test_luminance_swap(space, content, style):
    result = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear")
    out = color.luminance_swap(result, content, space)
    assert out.shape == content.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    _check_recoloured(out, result, content, space)
    bigger = nu.load_image(DATA / "content/tubingen_neckarfront.jpg", max_side=96)
    assert color.luminance_swap(result, bigger, space).shape == result.shape  # content resized


def test_match_luminance_and_gray3(content, style):
    y_c, y_s = color.luminance(content), color.luminance(style)
    out = color.match_luminance(y_s, y_c)
    assert out.shape == y_s.shape
    torch.testing.assert_close(out.mean(), y_c.mean(), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.std(correction=0), y_c.std(correction=0), atol=1e-6, rtol=0)
    torch.testing.assert_close(color.match_luminance(torch.full_like(y_s, 0.7), y_c),
                               torch.full_like(y_s, float(y_c.mean())))  # flat style: no NaN
    g = color.gray3(y_c)
    assert g.shape == content.shape and torch.equal(g[:, 0], g[:, 2])


def test_stylize_luminance_only(style, extractor):
    content = nu.load_image(DATA / "content/tubingen_neckarfront.jpg", max_side=48)
    r = color.stylize_luminance_only(content, style, extractor, steps=5, snapshot_every=5)
    assert r.image.shape == content.shape and len(r.history) == 5
    assert r.params["color"] == "luminance" and r.params["steps"] == 5
    _check_recoloured(r.image, r.image, content, "yiq")
    assert (color.luminance(r.image) - color.luminance(content)).abs().mean() > 0.01  # stylized
    assert [s for s, _ in r.snapshots] == [0, 5]
    torch.testing.assert_close(r.snapshots[0][1], content, atol=1e-5, rtol=0)  # grey init + chroma


@pytest.mark.parametrize("mode", color.LINEAR_MODES)
def test_match_color_linear_gives_the_content_statistics(mode):
    style = _low_contrast(40, 48, (0.5, 0.45, 0.4), [[0.06, 0.0, 0.0], [0.05, 0.03, 0.0], [0.02, 0.01, 0.04]], 1)
    content = _low_contrast(32, 40, (0.35, 0.5, 0.6), [[0.03, 0.01, 0.0], [-0.02, 0.05, 0.0], [0.0, 0.03, 0.05]], 2)
    out = color.match_color_linear(style, content, mode, eps=1e-12)
    assert out.shape == style.shape and out.dtype == torch.float32
    assert 0 < out.min() and out.max() < 1  # no clipping, so the statistics must match
    torch.testing.assert_close(out.double().mean((0, 2, 3)), content.double().mean((0, 2, 3)), atol=1e-7, rtol=0)
    torch.testing.assert_close(_cov(out), _cov(content), atol=1e-8, rtol=1e-5)
    default = color.match_color_linear(style, content, mode)  # eps = 1e-5: close, not exact
    torch.testing.assert_close(_cov(default), _cov(content), atol=1e-4, rtol=0)


def test_sym_moves_the_colours_least_and_modes_differ():
    """Monge-Kantorovich: of all maps to the content's statistics, sym changes pixels the least."""
    style = _low_contrast(40, 48, (0.5, 0.45, 0.4), [[0.06, 0.0, 0.0], [0.05, 0.03, 0.0], [0.02, 0.01, 0.04]], 1)
    content = _low_contrast(32, 40, (0.35, 0.5, 0.6), [[0.03, 0.01, 0.0], [-0.02, 0.05, 0.0], [0.0, 0.03, 0.05]], 2)
    moved = {m: (color.match_color_linear(style, content, m) - style).pow(2).mean() for m in color.LINEAR_MODES}
    assert moved["sym"] < moved["chol"] and moved["sym"] < moved["pca"]
    assert not torch.allclose(color.match_color_linear(style, content, "chol"),
                              color.match_color_linear(style, content, "sym"), atol=1e-3)
    with pytest.raises(ValueError, match="valid: chol, pca, sym"):
        color.match_color_linear(style, content, "lab")


@pytest.mark.parametrize("mode", color.LINEAR_MODES)
def test_match_color_linear_keeps_the_brightness_order(mode, content, style):
    """No colour axis comes out inverted (eigenvectors have arbitrary signs in pca)."""
    out = color.match_color_linear(style, content, mode)
    a, b = color.luminance(style).flatten(), color.luminance(out).flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9
    torch.testing.assert_close(out.mean((2, 3)), content.mean((2, 3)), atol=0.01, rtol=0)


def test_match_histogram_same_size_is_exact(content):
    for style in (_rand(*content.shape, seed=3), nu.load_image(DATA / "style/hokusai_great_wave.jpg",
                                                                size=tuple(content.shape[-2:]))):
        out = color.match_histogram(style, content)
        assert out.shape == style.shape and out.dtype == torch.float32
        for k in range(3):
            assert torch.equal(out[0, k].flatten().sort().values, content[0, k].flatten().sort().values)
            o, v = out[0, k].flatten(), style[0, k].flatten()
            by_out = o.argsort(stable=True)
            order = by_out[v[by_out].argsort(stable=True)]  # by style value, then by output
            assert (o[order].diff() >= 0).all()  # a brighter style pixel never gets a darker value


def test_match_histogram_other_size_gives_the_quantiles(content, style):
    out = color.match_histogram(style, content)
    assert out.shape == style.shape
    n = style.shape[-2] * style.shape[-1]
    q = torch.linspace(0, 1, n, dtype=torch.float64)
    for k in range(3):
        want = torch.quantile(content[0, k].flatten().double(), q).float()
        torch.testing.assert_close(out[0, k].flatten().sort().values, want, atol=1e-6, rtol=0)


def test_match_histogram_flat_area_is_not_a_ramp(content):
    out = color.match_histogram(torch.full_like(content, 0.5), content)
    top, bottom = out[..., : content.shape[-2] // 2, :], out[..., content.shape[-2] // 2:, :]
    assert (top.mean() - bottom.mean()).abs() < 0.03 < content.std()


def test_dispatcher_errors(content, style, extractor):
    with pytest.raises(ValueError, match="unknown color mode 'sepia'; valid: none, swap, luminance, "
                                         "histogram, chol, pca, sym"):
        color.stylize_with_color(content, style, extractor, color="sepia")
    with pytest.raises(ValueError, match="unknown colour space"):
        color.stylize_with_color(content, style, extractor, color="swap", space="hsv")


@pytest.mark.parametrize("mode", color.COLOR_MODES)
def test_dispatcher_runs_every_mode(mode, content, style, extractor):
    r = color.stylize_with_color(content, style, extractor, color=mode, steps=2, seed=1)
    assert r.image.shape == content.shape and 0 <= r.image.min() and r.image.max() <= 1
    assert r.params["color"] == mode and r.params["steps"] == 2 and r.params["seed"] == 1
    if mode == "swap":
        _check_recoloured(r.image, r.image, content, "yiq")


def test_inputs_never_mutated(content, style, extractor):
    c, s = content.clone(), style.clone()
    result = torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear")
    r0 = result.clone()
    for space in color.SPACES:
        color.luminance_swap(result, content, space)
        color.match_luminance(color.luminance(style, space), color.luminance(content, space))
    color.match_histogram(style, content)
    for mode in color.LINEAR_MODES:
        color.match_color_linear(style, content, mode)
    color.stylize_with_color(content, style, extractor, color="luminance", steps=1)
    assert torch.equal(content, c) and torch.equal(style, s) and torch.equal(result, r0)


def test_imports_point_one_way():
    """color sits above optimize: no module below it imports color."""
    for name in ("optimize", "objective", "losses", "features", "images"):
        tree = ast.parse((Path(nu.__file__).parent / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "color" not in imported, f"nstutils/{name}.py imports color"
