"""Checkers for notebook 07's colour exercises: the luminance swap and luminance matching.

Both work in YIQ (:mod:`nstutils.color`): Y = 0.299 R + 0.587 G + 0.114 B is the luminance, I and
Q the chrominance, 0 for grey. The cases use random colours, so that a swap leaves the RGB cube
on some pixels and a missing clamp shows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import color
from .reference import luminance_swap as swap_yiq
from .compare import Case, check_device, check_gradient, check_unchanged, compare, snapshot
from .tensors import _rand
from .verdict import Fail, call, checker

M = color._MATRIX["yiq"].float()           # rows Y, I, Q, as notebook 07 writes it
M_INV = color._INVERSE["yiq"].float()


def _mix(m: Tensor, img: Tensor) -> Tensor:
    return color._mix(img, m)


def _swap_cases() -> list[Case]:
    shapes = (("non-square", (1, 3, 5, 7)), ("square", (1, 3, 6, 6)), ("batch 2", (2, 3, 4, 3)))
    cases = [Case(label, (_rand(*s, seed=i), _rand(*s, seed=20 + i))) for i, (label, s) in enumerate(shapes)]
    grey = _rand(1, 3, 1, 1, seed=9).mean().expand(1, 3, 4, 5).clone()    # a grey photo: I = Q = 0
    return [*cases, Case("a grey photo c", (_rand(1, 3, 4, 5, seed=8), grey))]


@checker("luminance_swap")
def check_luminance_swap(fn) -> str:
    """``fn(x, c)``: (B, 3, H, W) result and photo -> RGB(Y of x, I and Q of c), clamped to [0, 1]."""

    def variants(x, c):
        yx, yc = _mix(M, x), _mix(M, c)
        mixed = torch.cat([yx[:, :1], yc[:, 1:]], dim=1)
        mean_y = torch.cat([x.mean(1, keepdim=True), yc[:, 1:]], dim=1)
        return [("took the luminance from c and the colours from x: keep Y of x (the stylized result) "
                 "and I, Q of c (the photo)", swap_yiq(c, x)),
                ("did not clamp: where Y of x meets the photo's I and Q outside the RGB cube, "
                 ".clamp(0, 1) the result", _mix(M_INV, mixed)),
                ("converted back to RGB with M: the way back is the inverse matrix M_inv", _mix(M, mixed).clamp(0, 1)),
                ("converted back with M.T: M is not orthogonal, so its inverse is not its transpose; "
                 "use M_inv", _mix(M.T, mixed).clamp(0, 1)),
                ("returned Y, I, Q: convert the mix back to RGB with M_inv", mixed),
                ("returned Y, I, Q, clamped: convert the mix back to RGB with M_inv", mixed.clamp(0, 1)),
                ("set I and Q to 0, a grey picture: take them from c",
                 _mix(M_INV, torch.cat([yx[:, :1], torch.zeros_like(yc[:, 1:])], 1)).clamp(0, 1)),
                ("clamped in YIQ: I and Q are signed, so clamp only after converting back to RGB",
                 _mix(M_INV, mixed.clamp(0, 1)).clamp(0, 1)),
                ("the channels are in the wrong order: the mix is Y of x first, then I and Q of c",
                 _mix(M_INV, torch.cat([yc[:, 1:], yx[:, :1]], 1)).clamp(0, 1)),
                ("used the mean of R, G and B as the luminance: Y = 0.299 R + 0.587 G + 0.114 B, the "
                 "first row of M", _mix(M_INV, mean_y).clamp(0, 1))]

    cases = _swap_cases()
    for case in cases:
        before = snapshot(case.args)
        got = call(fn, *case.args, where=case.where())
        check_unchanged(before, case.args, ("x", "c"), case.where())
        if compare(got, swap_yiq(*before), case, variants(*before)) != 1.0:
            raise Fail(f"the right picture times a constant: a luminance swap changes no scale {case.where()}")
    check_gradient(fn, cases[0].args, (0,), swap_yiq, cases[0].where())
    check_device(fn, cases[-1].args, cases[-1].label)
    return f"correct on {len(cases)} cases ({'; '.join(c.label for c in cases)})"


def _match_cases() -> list[Case]:
    def lum(shape, seed, scale, shift, power=1.0):
        return shift + scale * _rand(*shape, seed=seed) ** power
    # the second style is skewed (a few bright pixels): matched to a bright photo, it leaves [0, 1]
    return [Case("style 6x7, content 5x4", (lum((1, 1, 6, 7), 0, 0.5, 0.1), lum((1, 1, 5, 4), 1, 0.9, 0.05))),
            Case("a dark style", (lum((1, 1, 8, 5), 2, 0.5, 0.0, power=4), lum((1, 1, 6, 6), 3, 0.45, 0.5))),
            Case("same size", (lum((1, 1, 4, 4), 4, 1.0, 0.0), lum((1, 1, 4, 4), 5, 0.3, 0.5)))]


def _sample_std(L_s: Tensor, L_c: Tensor) -> Tensor:
    return L_c.std() / L_s.std() * (L_s - L_s.mean()) + L_c.mean()


@checker("match_luminance")
def check_match_luminance(fn) -> str:
    """``fn(L_s, L_c)``: (1, 1, H', W') style and (1, 1, H, W) content luminance -> L_s with the
    content's mean and standard deviation, sigma_c / sigma_s (L_s - mu_s) + mu_c, not clamped."""

    def variants(L_s, L_c):
        mu_s, mu_c, sd_s, sd_c = L_s.mean(), L_c.mean(), L_s.std(correction=0), L_c.std(correction=0)
        return [("matched the wrong way round: give the style luminance L_s the content's mean and "
                 "standard deviation (the result has L_s's shape)", color.match_luminance(L_c, L_s)),
                ("matched the mean only: also scale by sigma_c / sigma_s", L_s - mu_s + mu_c),
                ("the ratio is upside down: scale by sigma_c / sigma_s", sd_s / sd_c * (L_s - mu_s) + mu_c),
                ("used the variances: scale by the ratio of standard deviations, sigma_c / sigma_s",
                 sd_c**2 / sd_s**2 * (L_s - mu_s) + mu_c),
                ("scaled L_s without centring it: subtract mu_s first, then scale, then add mu_c",
                 sd_c / sd_s * L_s + mu_c),
                ("forgot to add the content's mean mu_c at the end", sd_c / sd_s * (L_s - mu_s)),
                ("added the style's mean back: the result needs the content's mean, + mu_c",
                 sd_c / sd_s * (L_s - mu_s) + mu_s),
                ("clamped to [0, 1]: return the values as they are (the notebook clamps only to show them)",
                 color.match_luminance(L_s, L_c).clamp(0, 1))]

    cases = _match_cases()
    sample = 0
    for case in cases:
        before = snapshot(case.args)
        got = call(fn, *case.args, where=case.where())
        check_unchanged(before, case.args, ("L_s", "L_c"), case.where())
        want = color.match_luminance(*before)
        other = _sample_std(*before)       # torch's default std (correction=1) is right too, nearly
        if (isinstance(got, Tensor) and got.shape == other.shape and got.dtype == other.dtype
                and torch.allclose(got.detach(), other, atol=1e-5)
                and not torch.allclose(got.detach(), want, atol=1e-5)):
            want, sample = other, sample + 1
        if compare(got, want, case, variants(*before)) != 1.0:
            raise Fail(f"the right shape, but a constant times the right values: the mean and "
                       f"standard deviation must both match the content's {case.where()}")
    reference = _sample_std if sample else color.match_luminance
    check_gradient(fn, cases[0].args, (0,), reference, cases[0].where())
    check_device(fn, cases[-1].args, cases[-1].label)
    note = (" (with .std()'s default correction=1, which divides by N - 1; the course divides by N, "
            "correction=0: for an image of thousands of pixels the two agree)") if sample else ""
    return f"correct on {len(cases)} cases ({'; '.join(c.label for c in cases)}){note}"
