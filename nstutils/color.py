"""Colour control for style transfer: keep the photo's colours, or give the painting the photo's palette.

Three recipes (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer",
section 5 on colour): (a) stylize, then put the content's chrominance back under the result's
luminance (:func:`luminance_swap`); (b) stylize the luminance channel only
(:func:`stylize_luminance_only`); (c) recolour the style image with the content's colour
statistics before stylizing (:func:`match_histogram`, :func:`match_color_linear`).
:func:`stylize_with_color` runs any of them by name. Images are (1, 3, H, W) RGB in [0, 1];
conversions accept any batch (B, 3, H, W).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .features import VGGFeatures
from .optimize import StylizeResult, stylize

SPACES = ("yiq", "ycbcr")
COLOR_MODES = ("none", "swap", "luminance", "histogram", "chol", "pca", "sym")
LINEAR_MODES = ("chol", "pca", "sym")

_MATRIX = {
    # YIQ (NTSC, FCC 1953): Y is the BT.601 luma; I, Q are chroma axes, 0 for grey (rows sum to 0).
    "yiq": torch.tensor([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213],
                         [0.2115, -0.5227, 0.3112]], dtype=torch.float64),
    # YCbCr, ITU-R BT.601 full range (JPEG/JFIF) scaled to [0, 1]; offsets make Cb = Cr = 0.5 for grey.
    "ycbcr": torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                           [0.5, -0.418688, -0.081312]], dtype=torch.float64),
}
_OFFSET = {"yiq": (0.0, 0.0, 0.0), "ycbcr": (0.0, 0.5, 0.5)}
_INVERSE = {k: torch.linalg.inv(m) for k, m in _MATRIX.items()}  # exact in float64


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"unknown colour space {space!r}; valid: {', '.join(SPACES)}")


def _mix(img: Tensor, m: Tensor) -> Tensor:
    """Apply a 3x3 matrix to the channels: out[b,i] = sum_j m[i,j] img[b,j]."""
    return torch.einsum("ij,bjhw->bihw", m.to(img), img)


def _to_space(img: Tensor, space: str) -> Tensor:
    _check_space(space)
    return _mix(img, _MATRIX[space]) + img.new_tensor(_OFFSET[space]).view(1, 3, 1, 1)


def _from_space(img: Tensor, space: str) -> Tensor:
    _check_space(space)
    return _mix(img - img.new_tensor(_OFFSET[space]).view(1, 3, 1, 1), _INVERSE[space])


def rgb_to_yiq(img: Tensor) -> Tensor:
    """Convert RGB to YIQ (NTSC): Y = 0.299 R + 0.587 G + 0.114 B, I = 0.5959 R - 0.2746 G -
    0.3213 B, Q = 0.2115 R - 0.5227 G + 0.3112 B. (B, 3, H, W) -> same.

    White gives Y=1, I=Q=0. I and Q are signed (|I| <= 0.60, |Q| <= 0.53).
    """
    return _to_space(img, "yiq")


def yiq_to_rgb(img: Tensor) -> Tensor:
    """Invert :func:`rgb_to_yiq` with M^-1 (not clamped). (B, 3, H, W) -> same."""
    return _from_space(img, "yiq")


def rgb_to_ycbcr(img: Tensor) -> Tensor:
    """Convert RGB to full-range BT.601 YCbCr in [0, 1]: Y = 0.299 R + 0.587 G + 0.114 B,
    Cb = 0.5 + (B - Y) / 1.772, Cr = 0.5 + (R - Y) / 1.402. (B, 3, H, W) -> same; grey gives Cb=Cr=0.5.
    """
    return _to_space(img, "ycbcr")


def ycbcr_to_rgb(img: Tensor) -> Tensor:
    """Invert :func:`rgb_to_ycbcr` (not clamped). (B, 3, H, W) -> same."""
    return _from_space(img, "ycbcr")


def luminance(img: Tensor, space: str = "yiq") -> Tensor:
    """Return the luminance Y = 0.299 R + 0.587 G + 0.114 B, (B, 3, H, W) -> (B, 1, H, W).

    Both spaces use the BT.601 luma, so Y is the same for "yiq" and "ycbcr"; they differ in chroma.
    """
    return _to_space(img, space)[:, :1]


def luminance_swap(result: Tensor, content: Tensor, space: str = "yiq") -> Tensor:
    """Keep the result's luminance and take the content's chrominance: RGB(Y_result, C_content).

    Args: result (1, 3, H, W) stylized image; content (1, 3, H', W'), resized to H x W if needed.
    Returns: (1, 3, H, W) clamped to [0, 1]. Where Y_result with the content's chroma leaves the
    RGB cube the clamp changes that pixel's chrominance (and luminance) slightly.
    """
    if content.shape[-2:] != result.shape[-2:]:
        content = F.interpolate(content, size=result.shape[-2:], mode="bilinear",
                                align_corners=False, antialias=True)
    mixed = torch.cat([_to_space(result, space)[:, :1], _to_space(content, space)[:, 1:]], dim=1)
    return _from_space(mixed, space).clamp(0, 1)


def match_luminance(style_lum: Tensor, content_lum: Tensor) -> Tensor:
    """Match the style luminance's mean and std to the content's: L' = s_c / s_s (L_s - m_s) + m_c.

    Args: style_lum (1, 1, H', W'), content_lum (1, 1, H, W). Returns (1, 1, H', W'), not clamped.
    Standard deviations are population ones (divide by N); a flat style (s_s < 1e-6) gives m_c.
    """
    mu_s, mu_c = style_lum.mean(), content_lum.mean()
    sd_s, sd_c = style_lum.std(correction=0), content_lum.std(correction=0)
    scale = torch.where(sd_s > 1e-6, sd_c / sd_s.clamp_min(1e-6), torch.zeros_like(sd_s))
    return scale * (style_lum - mu_s) + mu_c


def gray3(lum: Tensor) -> Tensor:
    """Repeat a luminance image on three channels for VGG: (B, 1, H, W) -> (B, 3, H, W)."""
    return lum.expand(-1, 3, -1, -1).contiguous()


def _each(style, fn):
    """Apply ``fn`` to the style image, or to each one if a list of them is given."""
    return fn(style) if isinstance(style, Tensor) else [fn(s) for s in style]


def _recolor(result: StylizeResult, content: Tensor, space: str, color: str) -> StylizeResult:
    """Put the content's chrominance under the luminance of the result and of its snapshots."""
    snaps = [(s, luminance_swap(img, content.to(img.device), space)) for s, img in result.snapshots]
    return replace(result, image=luminance_swap(result.image, content, space), snapshots=snaps,
                   params={**result.params, "color": color, "color_space": space})


def stylize_luminance_only(content: Tensor, style: Tensor, extractor: VGGFeatures | None = None, *,
                           space: str = "yiq", **stylize_kwargs) -> StylizeResult:
    """Stylize the luminance only, then add the content's chrominance (Gatys et al. 2017, sec. 5).

    Optimizes on gray3(Y_content) with the style gray3(match_luminance(Y_style, Y_content)),
    then returns RGB(Y_x, C_content) with Y_x the BT.601 luma of the optimized image x.
    VGG's gradients differ per channel, so x drifts slightly off grey; we take its Y rather than
    the channel mean so that the result is exactly luminance_swap(x, content): one definition of
    luminance throughout. Args: as :func:`nstutils.stylize`. Returns: a StylizeResult whose
    image and snapshots are RGB (1, 3, H, W); params["color"] == "luminance".
    """
    y_content = luminance(content, space)
    # Clamped so that the style stays a valid image in [0, 1] (shifts its statistics slightly).
    styles = _each(style, lambda s: gray3(match_luminance(luminance(s, space), y_content).clamp(0, 1)))
    result = stylize(gray3(y_content), styles, extractor, **stylize_kwargs)
    return _recolor(result, content, space, "luminance")


def _channel_order(img: Tensor) -> Tensor:
    """Return each channel's pixel indices sorted by value, (1, 3, H, W) -> (3, H*W).

    Ties are ranked by the 3x3 local mean (Coltuc et al. 2006), then in a fixed pseudo-random
    order, so that a flat area becomes fine noise instead of a ramp in raster order.
    """
    hw = img.shape[-2] * img.shape[-1]
    gen = torch.Generator().manual_seed(0)  # local: the global RNG is never touched
    order = torch.randperm(hw, generator=gen).to(img.device).expand(3, hw)
    local = F.avg_pool2d(img, 3, stride=1, padding=1, count_include_pad=False)
    for key in (local, img):  # least significant key first; stable sorts keep earlier keys' order
        values = torch.gather(key.flatten(2)[0], 1, order)  # (3, HW)
        order = torch.gather(order, 1, torch.argsort(values, dim=1, stable=True))
    return order


def match_histogram(style: Tensor, content: Tensor) -> Tensor:
    """Give each channel of the style the content's histogram (exact histogram specification).

    The style pixel of rank r (0..N_s-1) in channel k gets the content quantile at position
    p = r (N_c - 1) / (N_s - 1) of that channel's sorted values (linear interpolation); for
    equal sizes that is exactly the content's r-th value. Equal style values (8-bit images have
    many) are ranked as in :func:`_channel_order`. Only each channel's marginal is matched, not
    the correlations between channels, so the style's colour combinations can survive.
    Args: style (1, 3, H', W'), content (1, 3, H, W). Returns (1, 3, H', W') in the content's range.
    """
    s, c = style.double(), content.double()
    n_s, n_c = s.shape[-2] * s.shape[-1], c.shape[-2] * c.shape[-1]
    sorted_c = c.flatten(2)[0].sort(dim=1).values  # (3, N_c)
    pos = torch.arange(n_s, dtype=torch.float64, device=s.device) * ((n_c - 1) / max(n_s - 1, 1))
    lo = pos.floor().long().clamp(max=n_c - 1)
    hi = (lo + 1).clamp(max=n_c - 1)
    frac = pos - lo
    quantiles = sorted_c[:, lo] * (1 - frac) + sorted_c[:, hi] * frac  # (3, N_s)
    out = torch.empty_like(quantiles).scatter_(1, _channel_order(s), quantiles)
    return out.view_as(s).to(style.dtype)


def _stats(img: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Mean (3, 1) and covariance (3, 3) + eps I of the pixels of (1, 3, H, W), in float64."""
    x = img.double().flatten(2)[0]  # (3, HW)
    mu = x.mean(dim=1, keepdim=True)
    d = x - mu
    return mu, d @ d.T / x.shape[1] + eps * torch.eye(3, dtype=x.dtype, device=x.device)


def _sqrtm(sigma: Tensor, power: float = 0.5) -> Tensor:
    """Return sigma^power for a symmetric positive definite 3x3 matrix (via eigh)."""
    lam, q = torch.linalg.eigh(sigma)
    return q @ torch.diag(lam.clamp_min(1e-12) ** power) @ q.T


def _transfer_matrix(sigma_s: Tensor, sigma_c: Tensor, mode: str) -> Tensor:
    """Return A with A sigma_s A^T = sigma_c."""
    if mode == "chol":
        l_s, l_c = torch.linalg.cholesky(sigma_s), torch.linalg.cholesky(sigma_c)
        eye = torch.eye(3, dtype=l_s.dtype, device=l_s.device)
        return l_c @ torch.linalg.solve_triangular(l_s, eye, upper=False)  # L_c L_s^-1
    if mode == "pca":
        # eigh sorts eigenvalues ascending, so the style's k-th axis goes to the content's k-th.
        lam_s, q_s = torch.linalg.eigh(sigma_s)
        lam_c, q_c = torch.linalg.eigh(sigma_c)
        # Eigenvectors have no sign; align each style axis with its content axis, else a colour
        # axis (often brightness) could come out inverted.
        q_s = q_s * torch.sign((q_s * q_c).sum(0) + 1e-30)
        return q_c @ torch.diag(lam_c.sqrt() / lam_s.sqrt()) @ q_s.T
    root_s, inv_root_s = _sqrtm(sigma_s), _sqrtm(sigma_s, -0.5)
    return inv_root_s @ _sqrtm(root_s @ sigma_c @ root_s) @ inv_root_s


def match_color_linear(style: Tensor, content: Tensor, mode: str = "chol", *, eps: float = 1e-5) -> Tensor:
    """Recolour the style with the content's colour mean and covariance: x' = A (x - mu_s) + mu_c.

    A maps the style covariance to the content's (A S_s A^T = S_c), S = Cov + eps I:
    chol: A = L_c L_s^-1 (Cholesky factors, S = L L^T);
    pca:  A = Q_c Lam_c^1/2 Lam_s^-1/2 Q_s^T (eigendecompositions S = Q Lam Q^T);
    sym:  A = S_s^-1/2 (S_s^1/2 S_c S_s^1/2)^1/2 S_s^-1/2 (Monge-Kantorovich, the smallest change).
    Computed in float64. Args: style (1, 3, H', W'), content (1, 3, H, W).
    Returns: (1, 3, H', W') clamped to [0, 1] (which shrinks the covariance where colours clip).
    """
    if mode not in LINEAR_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(LINEAR_MODES)}")
    mu_s, sigma_s = _stats(style, eps)
    mu_c, sigma_c = _stats(content, eps)
    x = style.double().flatten(2)[0]  # (3, HW)
    out = _transfer_matrix(sigma_s, sigma_c, mode) @ (x - mu_s) + mu_c
    return out.view_as(style).clamp(0, 1).to(style.dtype)


def stylize_with_color(content: Tensor, style: Tensor, extractor: VGGFeatures | None = None, *,
                       color: str = "none", space: str = "yiq", **stylize_kwargs) -> StylizeResult:
    """Stylize with one of the colour recipes of :data:`COLOR_MODES`.

    "none": plain stylize; "swap": stylize, then :func:`luminance_swap`; "luminance":
    :func:`stylize_luminance_only`; "histogram": :func:`match_histogram` of the style to the
    content, then stylize; "chol"/"pca"/"sym": :func:`match_color_linear`, then stylize.
    ``stylize_kwargs`` go to :func:`nstutils.stylize` unchanged; a list of style images is
    recoloured one by one. params["color"] records the mode.
    """
    if color not in COLOR_MODES:
        raise ValueError(f"unknown color mode {color!r}; valid: {', '.join(COLOR_MODES)}")
    _check_space(space)
    if color == "luminance":
        return stylize_luminance_only(content, style, extractor, space=space, **stylize_kwargs)
    if color == "histogram":
        style = _each(style, lambda s: match_histogram(s, content))
    elif color in LINEAR_MODES:
        style = _each(style, lambda s: match_color_linear(s, content, color))
    result = stylize(content, style, extractor, **stylize_kwargs)
    if color == "swap":
        return _recolor(result, content, space, "swap")
    return replace(result, params={**result.params, "color": color})
