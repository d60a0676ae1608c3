"""Checkers for functions of tensors: images to tensors, Caffe pre/deprocessing, Gram, losses.

Each calls the learner's function on several cases (batch 2, non-square, one channel, ...),
compares with the reference (:mod:`nstutils.check.compare`), then checks that the inputs were
not edited in place, that gradients flow, and that no tensor is made on the CPU behind the
input's back.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..features import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD
from ..losses import TV_KINDS, content_loss, gram, style_loss, tv_loss
from . import reference as ref
from .compare import (Case, Factor, check_device, check_gradient, check_unchanged, compare,
                      explain_factors, snapshot)
from .verdict import Fail, call, checker


def _rand(*shape, seed: int = 0, low: float = 0.0, high: float = 1.0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(*shape, generator=gen)


def _sizes(t: Tensor) -> dict:
    b, c, h, w = t.shape
    return {"B": b, "C": c, "H": h, "W": w, "HW": h * w, "CHW": c * h * w, "N": t.numel()}


def run_cases(fn, reference: Callable, cases: Sequence[Case], variants: Callable, names: Sequence[str],
              factors: Sequence[Factor] = (), grad_of: Sequence[int] = (0,), device: bool = True,
              hints: dict | None = None) -> str:
    """Check ``fn`` against ``reference`` on ``cases``; return the pass message or raise Fail.

    ``variants(*args)`` lists (diagnosis, result of that mistake); ``names`` name the arguments.
    """
    ratios = []
    for case in cases:
        before = snapshot(case.args)
        want = reference(*before)
        got = call(fn, *case.args, where=case.where(), hints=hints)
        check_unchanged(before, case.args, names, case.where())
        ratios.append((case, compare(got, want, case, variants(*before))))
    explain_factors(ratios, factors)
    if grad_of:
        check_gradient(fn, cases[0].args, grad_of, reference, cases[0].where())
    if device:
        check_device(fn, cases[-1].args, cases[-1].label)
    return f"correct on {len(cases)} cases ({'; '.join(c.label for c in cases)})"


def _caffe_mean(t: Tensor, order: str = "bgr") -> Tensor:
    mean = t.new_tensor(CAFFE_MEAN_BGR if order == "bgr" else CAFFE_MEAN_BGR[::-1])
    return mean.view(1, 3, 1, 1)


def _image_cases() -> list[Case]:
    shapes = (("batch 2, non-square", (2, 3, 5, 7)), ("batch 1, square", (1, 3, 4, 4)),
              ("a tall image", (1, 3, 9, 2)))
    return [Case(label, (_rand(*s, seed=i),), _sizes(_rand(*s))) for i, (label, s) in enumerate(shapes)]


@checker("to_tensor")
def check_to_tensor(fn) -> str:
    """``fn(arr)``: (H, W, 3) uint8 array -> (1, 3, H, W) float32 tensor in [0, 1]."""
    gen = np.random.default_rng(0)
    cases = [Case(label, (gen.integers(0, 256, (h, w, 3), dtype=np.uint8),))
             for label, h, w in (("a wide image", 3, 5), ("a tall image", 6, 2))]

    def variants(arr):
        t = torch.from_numpy(arr.copy())
        h, w, _ = arr.shape
        return [("used reshape (or view) instead of permute: the values land in the wrong places; "
                 "use .permute(2, 0, 1)", t.reshape(1, 3, h, w).float() / 255),
                ("swapped height and width: use .permute(2, 0, 1), not (2, 1, 0)",
                 t.permute(2, 1, 0).unsqueeze(0).float() / 255),
                ("the batch dimension is missing: add it with .unsqueeze(0)", t.permute(2, 0, 1).float() / 255),
                ("used integer division `//`: every value became 0 (or 1 for 255); divide with `/`",
                 t.permute(2, 0, 1).unsqueeze(0).float() // 255)]
    factors = (Factor(lambda s: 255.0, "divide the bytes by 255 to get [0, 1]", "divide by 255 once"),)
    return run_cases(fn, ref.to_tensor, cases, variants, ("the array",), factors, grad_of=(), device=False)


@checker("preprocess")
def check_preprocess(fn) -> str:
    """``fn(img)``: RGB in [0, 1], (B, 3, H, W) -> Caffe input: BGR, 0-255, minus the mean pixel."""
    def variants(img):
        bgr, mean = img.flip(1), _caffe_mean(img)
        std = img.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return [("forgot the BGR flip: the Caffe weights expect blue first (img.flip(1) or "
                 "img[:, [2, 1, 0]])", 255 * img - mean),
                ("subtracted the mean in the wrong order: Caffe's mean (103.939, 116.779, 123.68) "
                 "is in BGR order already, like the flipped image", 255 * bgr - _caffe_mean(img, "rgb")),
                ("kept RGB order (and turned the mean round to match): flip the channels to BGR",
                 255 * img - _caffe_mean(img, "rgb")),
                ("forgot to subtract the mean pixel (103.939, 116.779, 123.68)", 255 * bgr),
                ("added the mean instead of subtracting it", 255 * bgr + mean),
                ("forgot to scale to 0-255: multiply by 255 before subtracting the mean", bgr - mean),
                ("subtracted the mean before scaling: scale by 255 first, the mean is in 0-255 units",
                 255 * (bgr - mean)),
                ("that is torchvision's recipe (mean and std); the original VGG19 weights want Caffe's: "
                 "BGR, 0-255, minus the mean", (img - img.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / std),
                ("flipped the image left-right: flip the channels, dimension 1, not -1", 255 * img.flip(-1) - mean),
                ("flipped the image upside down: flip the channels, dimension 1, not -2", 255 * img.flip(-2) - mean),
                ("flipped the batch: flip the channels, dimension 1, not 0", 255 * img.flip(0) - mean)]
    return run_cases(fn, ref.caffe_preprocess, _image_cases(), variants, ("img",))


@checker("deprocess")
def check_deprocess(fn) -> str:
    """``fn(x)``: the exact inverse of the Caffe preprocessing, without clipping."""
    cases = [Case(c.label, (ref.caffe_preprocess(_rand(*c.args[0].shape, seed=7, low=-0.2, high=1.2)),))
             for c in _image_cases()]

    def variants(x):
        mean, want = _caffe_mean(x), ref.caffe_deprocess(x)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return [("clamped to [0, 1]: deprocess must be the exact inverse of preprocess; clip only to "
                 "show or save the image", want.clamp(0, 1)),
                ("forgot to flip BGR back to RGB", (x + mean) / 255),
                ("subtracted the mean again: add it back", ((x - mean) / 255).flip(1)),
                ("flipped to RGB before adding the mean: the mean is in BGR order, so add it first, "
                 "then flip", (x.flip(1) + mean) / 255),
                ("forgot to divide by 255", (x + mean).flip(1)),
                ("that is the inverse of torchvision's recipe (x * std + mean); undo Caffe's instead",
                 x * std + x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1))]
    return run_cases(fn, ref.caffe_deprocess, cases, variants, ("x",))


GRAM_FACTORS = (
    Factor(lambda s: s["HW"], "did you forget to divide by H*W, the number of positions?",
           "did you divide by H*W twice?", "H*W"),
    Factor(lambda s: s["C"], "did you multiply by C?",
           "did you divide by C*H*W? This course divides by H*W only", "C"),
    Factor(lambda s: s["C"] ** 2, "did you multiply by C^2?", "did you divide by C^2 as well? "
           "This course divides by H*W only", "C^2"),
    Factor(lambda s: s["CHW"], "did you multiply by C*H*W?", "did you divide by C*H*W twice?", "C*H*W"),
    Factor(lambda s: s["B"], "did you sum over the batch?", "did you divide by the batch size?", "B"),
)


@checker("gram")
def check_gram(fn) -> str:
    """``fn(feats)``: (B, C, H, W) -> (B, C, C), G = F F^T / (H*W)."""
    shapes = (("batch 2, non-square", (2, 8, 6, 5)), ("1 channel", (1, 1, 4, 7)),
              ("batch 3, square", (3, 3, 5, 5)), ("a 1x1 map", (1, 4, 1, 1)))
    cases = [Case(label, (_rand(*s, seed=i, low=-1.0),), _sizes(_rand(*s))) for i, (label, s) in enumerate(shapes)]

    def variants(feats):
        b, c, h, w = feats.shape
        f = feats.reshape(b, c, h * w)
        folded = feats.reshape(b * c, h * w)
        scrambled = feats.reshape(b, h * w, c)
        centred = f - f.mean(dim=2, keepdim=True)
        return [("folded the batch into the channels: reshape to (B, C, H*W), not (B*C, H*W), and "
                 "multiply with torch.bmm or @", folded @ folded.T / (h * w)),
                ("computed F^T F (positions x positions): the Gram is F @ F.transpose(1, 2), channels "
                 "x channels", f.transpose(1, 2) @ f / (h * w)),
                ("summed the Grams over the batch: keep one per image, (B, C, C)", gram(feats).sum(0)),
                ("returned the first image's Gram only: keep one per image, (B, C, C)", gram(feats)[0]),
                ("reshaped to (B, H*W, C): the channels are dimension 1 here, so use "
                 "feats.reshape(B, C, H*W)", scrambled.transpose(1, 2) @ scrambled / (h * w)),
                ("subtracted each channel's mean (that is a covariance): the Gram uses the raw features",
                 centred @ centred.transpose(1, 2) / (h * w))]
    return run_cases(fn, gram, cases, variants, ("feats",), GRAM_FACTORS)


@checker("content_loss")
def check_content_loss(fn) -> str:
    """``fn(feats, target)``: two (B, C, H, W) tensors -> scalar, mean((F - P)^2)."""
    shapes = (("batch 2, non-square", (2, 4, 3, 5)), ("1 channel", (1, 1, 6, 2)), ("square", (1, 3, 4, 4)))
    cases = [Case(label, (_rand(*s, seed=i, low=-1.0), _rand(*s, seed=10 + i, low=-1.0)), _sizes(_rand(*s)))
             for i, (label, s) in enumerate(shapes)]

    def variants(feats, target):
        d = feats - target
        return [("took a square root: the loss is the mean squared difference, not its root",
                 d.pow(2).mean().sqrt()),
                ("computed the norm ||F - P||: the loss is the mean of the squared differences",
                 d.norm()),
                ("used absolute differences: square them", d.abs().mean()),
                ("forgot to square the differences (positive and negative ones cancel)", d.mean()),
                ("returned one loss per image: average over everything, .mean() without dim",
                 d.pow(2).flatten(1).mean(1))]
    factors = (Factor(lambda s: s["N"], "did you sum instead of taking the mean? Use .mean()",
                      "did you divide by the number of elements twice?", "B*C*H*W, the number of elements"),
               Factor(lambda s: s["N"] / 2, "that is Gatys et al.'s 1/2 * sum; this course takes the mean",
                      "did you divide by the number of elements twice?", "B*C*H*W / 2"),
               Factor(lambda s: s["B"], "did you average over each image and then sum over the batch? "
                      "Take one .mean() over everything", "did you divide by the batch size twice?", "B"))
    return run_cases(fn, content_loss, cases, variants, ("feats", "target"), factors)


def _style_cases() -> list[Case]:
    one, two = "relu1_1", "relu2_1"
    targets = {one: gram(_rand(1, 3, 3, 4, seed=3)), two: gram(_rand(1, 5, 3, 3, seed=4))}
    feats = {one: _rand(1, 3, 4, 5, seed=1, low=-1.0), two: _rand(1, 5, 2, 3, seed=2, low=-1.0),
             "relu4_2": _rand(1, 2, 2, 2, seed=5)}  # a content layer, as an extractor returns it
    batch = {one: _rand(2, 3, 4, 5, seed=6, low=-1.0), two: _rand(2, 5, 2, 3, seed=7, low=-1.0)}
    ones = {one: torch.ones(1, 2, 2, 2), two: torch.ones(1, 3, 2, 2)}
    zeros = {one: torch.zeros(1, 2, 2), two: torch.zeros(1, 3, 3)}
    return [Case("two layers, and a content layer in feats", (feats, targets, {one: 0.3, two: 2.0})),
            Case("batch 2, one target Gram per layer", (batch, targets, {one: 1.5, two: 0.25})),
            Case("Grams of ones vs zeros, weights 0.5 and 2, loss 2.5", (ones, zeros, {one: 0.5, two: 2.0}))]


@checker("style_loss")
def check_style_loss(fn) -> str:
    """``fn(feats, target_grams, layer_weights)``: dicts by layer -> scalar, sum_l w_l mean((G_l - A_l)^2)."""
    def variants(feats, targets, weights):
        def total(term):
            return sum(weights[n] * term(gram(feats[n]), targets[n], feats[n]) for n in targets)
        hw = {n: feats[n].shape[-1] * feats[n].shape[-2] for n in targets}
        return [("ignored layer_weights: multiply each layer's term by layer_weights[layer]",
                 sum(torch.mean((gram(feats[n]) - targets[n]) ** 2) for n in targets)),
                ("ignored layer_weights (used 1 / number of layers): multiply each term by layer_weights[layer]",
                 sum(torch.mean((gram(feats[n]) - targets[n]) ** 2) for n in targets) / len(targets)),
                ("divided by the number of layers: the layer weights already set the balance, just add "
                 "the weighted terms", total(lambda g, a, f: torch.mean((g - a) ** 2)) / len(targets)),
                ("summed the squared Gram differences: take their mean over the C x C entries",
                 total(lambda g, a, f: torch.sum((g - a) ** 2))),
                ("used absolute differences of the Grams: square them",
                 total(lambda g, a, f: torch.mean((g - a).abs()))),
                ("took a square root of each layer's error: use the mean squared difference itself",
                 total(lambda g, a, f: torch.mean((g - a) ** 2).sqrt())),
                ("your Gram is not divided by H*W (check it with check.gram)",
                 sum(weights[n] * torch.mean((gram(feats[n]) * hw[n] - targets[n]) ** 2) for n in targets))]
    cases = _style_cases()
    hints = {KeyError: "loop over the layers of target_grams, for layer in target_grams: feats may hold "
                       "other layers, and a fixed list may name layers that are not there",
             (RuntimeError, "must match the size"): "compare Gram with Gram: gram(feats[layer]) is "
             "(B, C, C) like target_grams[layer], while the features themselves are (B, C, H, W)"}
    passed = run_cases(fn, style_loss, cases, variants, ("feats", "target_grams", "layer_weights"),
                       grad_of=(), device=False, hints=hints)
    feats, targets, weights = cases[0].args  # the gradient with respect to one layer's features
    check_gradient(lambda f: fn({**feats, "relu2_1": f}, targets, weights), (feats["relu2_1"],), (0,),
                   lambda f: style_loss({**feats, "relu2_1": f}, targets, weights), cases[0].where())
    return passed


def _tv_variants(img: Tensor, kind: str) -> list:
    dx, dy = img[..., :, 1:] - img[..., :, :-1], img[..., 1:, :] - img[..., :-1, :]
    gx, gy = dx[..., :-1, :], dy[..., :, :-1]  # both on the (H-1) x (W-1) grid
    wrong_kind = [(f"that is the {k} kind: does your function look at `kind` (here {kind!r})?", tv_loss(img, k))
                  for k in TV_KINDS if k != kind]
    if kind == "power":
        return wrong_kind + [
            ("forgot the power 1.25: ((dx**2 + dy**2) ** 1.25).mean()", (gx ** 2 + gy ** 2).mean()),
            ("raised each difference to a power separately: the power kind raises dx**2 + dy**2 to 1.25",
             (gx.abs() ** 2.5 + gy.abs() ** 2.5).mean()),
            ("cropped dx and dy on the wrong side: both must start at the same pixel, dx[..., :-1, :] and "
             "dy[..., :, :-1]", (dx[..., 1:, :] ** 2 + dy[..., :, 1:] ** 2).pow(1.25).mean()),
            ("summed instead of averaging (the Keras example sums; this course takes the mean)",
             (gx ** 2 + gy ** 2).pow(1.25).sum())]
    f = (lambda d: d ** 2) if kind == "squared" else (lambda d: d.abs())
    return wrong_kind + [
        ("only horizontal differences: add the vertical ones, dy = x[..., 1:, :] - x[..., :-1, :]", f(dx).mean()),
        ("only vertical differences: add the horizontal ones, dx = x[..., :, 1:] - x[..., :, :-1]", f(dy).mean()),
        ("summed the differences: take mean(...) of each direction", f(dx).sum() + f(dy).sum()),
        ("averaged both directions together: take the mean of each direction, then add them",
         torch.cat([f(dx).flatten(), f(dy).flatten()]).mean()),
        ("torch.roll wraps around, comparing the last column with the first: slice instead, "
         "x[..., :, 1:] - x[..., :, :-1]",
         f(img.roll(-1, -1) - img).mean() + f(img.roll(-1, -2) - img).mean()),
        (f"forgot the {'square' if kind == 'squared' else 'absolute value'}: positive and negative "
         "differences cancel", dx.mean() + dy.mean())]


@checker("tv_loss")
def check_tv_loss(fn, kinds: Sequence[str] = TV_KINDS) -> str:
    """``fn(img, kind)`` for each of ``kinds`` ("squared", "absolute", "power"), as nu.tv_loss."""
    unknown = [k for k in kinds if k not in TV_KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown TV kind {unknown[0] if unknown else None!r}; valid: {', '.join(TV_KINDS)}")
    tiny = torch.tensor([[0.0, 0.5], [1.0, 0.0]]).expand(1, 3, 2, 2).clone()
    shapes = (("non-square", (1, 3, 5, 7)), ("batch 2", (2, 3, 4, 4)), ("1 channel", (1, 1, 6, 3)))
    # The 2x2 example last: on so small an image some mistakes happen to give the right value.
    images = [(label, _rand(*s, seed=20 + i)) for i, (label, s) in enumerate(shapes)] + [("the 2x2 example", tiny)]
    for kind in kinds:
        cases = [Case(f"kind={kind!r}, {label}", (img, kind)) for label, img in images]
        run_cases(fn, tv_loss, cases, _tv_variants, ("img", "kind"), device=kind == kinds[0],
                  hints={TypeError: "the checker calls fn(img, kind); for a function of img alone use "
                                    "lambda img, kind: my_tv(img) and name its kind in kinds=(...)",
                         (RuntimeError, "must match the size"): "dx is (H, W-1) and dy is (H-1, W): to "
                         "add them position by position crop both to (H-1, W-1), dx[..., :-1, :] and "
                         "dy[..., :, :-1]"})
    labels = "; ".join(label for label, _ in images)
    return f"correct for {', '.join(map(repr, kinds))} on {len(images)} images each ({labels})"
