"""Checker for a whole stylization run with the learner's own losses (and, optionally, loop).

A tiny VGG19-shaped network with random weights (:func:`nstutils.check.network.tiny_vgg`) on
16 x 12 images keeps it to a fraction of a second. Each of the learner's losses is first
compared with nstutils' by the direction of its gradient (a constant factor only rescales a
weight, so it is allowed), then a few Adam steps must lower the learner's total loss, change
the image and keep it in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import losses as nu_losses
from . import reference as ref
from .compare import check_tensor
from .network import tiny_vgg
from .verdict import Fail, call, checker

CONTENT_LAYERS, STYLE_LAYERS = ("relu2_2",), ("relu1_1", "relu2_1")
STEPS, LR = 10, 0.05
WEIGHTS = {"content": 1.0, "style": 1.0, "tv": 0.1}


def _smooth(shape, seed: int) -> Tensor:
    noise = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return F.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)


class _Setup:
    """The images, the tiny network and the targets of one check."""

    def __init__(self, gram):
        self.net = tiny_vgg(inplace=False)
        self.content, self.style = _smooth((1, 3, 16, 12), 0), _smooth((1, 3, 12, 16), 1) ** 2
        p, a = self.features(self.content), self.features(self.style)
        self.P = {n: p[n].detach() for n in CONTENT_LAYERS}
        self.A = {n: _gram_of(gram, a[n]) for n in STYLE_LAYERS}
        self.A_ref = {n: nu_losses.gram(a[n]).detach() for n in STYLE_LAYERS}
        self.cw = nu_losses.relative_weights(self.P)[CONTENT_LAYERS[0]]
        # Relative weights divide out any Gram normalization (notebook 02), so a learner's
        # gram with another convention still gets the same balance of layers.
        self.sw, self.sw_ref = nu_losses.relative_weights(self.A), nu_losses.relative_weights(self.A_ref)

    def features(self, x: Tensor) -> dict[str, Tensor]:
        return ref.extract(self.net, x, (*STYLE_LAYERS, *CONTENT_LAYERS))


def _gram_of(gram, feats: Tensor) -> Tensor:
    where = f"(your gram, on features {tuple(feats.shape)})"
    want = nu_losses.gram(feats)
    got = check_tensor(call(gram, feats, where=where), want, where, "your gram")
    if got.shape != want.shape or got.device != want.device or not bool(torch.isfinite(got).all()):
        raise Fail(f"your gram returns shape {tuple(got.shape)} on {got.device}, or non-finite values; "
                   f"expected a finite {tuple(want.shape)} on {want.device}: check it with check.gram {where}")
    return got


def _terms(s: _Setup, content_loss, style_loss, tv_loss) -> dict:
    """{name: (yours, nstutils')}: each a function of the image x."""
    c, = CONTENT_LAYERS
    return {"content_loss": (lambda x: content_loss(s.features(x)[c], s.P[c]),
                             lambda x: nu_losses.content_loss(s.features(x)[c], s.P[c])),
            "style_loss": (lambda x: style_loss(s.features(x), s.A, s.sw),
                           lambda x: nu_losses.style_loss(s.features(x), s.A_ref, s.sw_ref)),
            "tv_loss": (lambda x: tv_loss(x, "squared"), lambda x: nu_losses.tv_loss(x, "squared"))}


def _check_direction(name: str, mine, theirs, x0: Tensor) -> None:
    where = f"(your {name} inside the stylization)"
    x, y = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    value = call(mine, x, where=where)
    value = value if isinstance(value, Tensor) else check_tensor(value, torch.zeros(()), where, f"your {name}")
    if value.dim() != 0:
        raise Fail(f"your {name} returns shape {tuple(value.shape)}: a loss is one number {where}")
    if not bool(torch.isfinite(value)):
        raise Fail(f"your {name} returns {float(value.detach())} {where}")
    if value.grad_fn is None:
        raise Fail(f"your {name} is not differentiable: its result has no grad_fn (.detach(), .item() "
                   f"or torch.no_grad() on the way?) {where}")
    call(value.backward, where=where)
    theirs(y).backward()
    cos = float(F.cosine_similarity(x.grad.flatten(), y.grad.flatten(), dim=0))
    if cos < 0:
        raise Fail(f"your {name} pushes the image the wrong way (its gradient points against nstutils', "
                   f"cosine {cos:.2f}): a sign error? Check it with check.{name}")
    if cos < 0.95:
        raise Fail(f"your {name} pulls the image elsewhere than nstutils' (cosine of the gradients "
                   f"{cos:.2f}, expected about 1): check it with check.{name}")


def _check_result(img, content: Tensor, where: str) -> float:
    """Fail unless ``img`` is a changed image in [0, 1] of the content's shape; return the largest change."""
    img = check_tensor(img, content, where, "the loop")
    if img.shape != content.shape or not bool(torch.isfinite(img).all()):
        raise Fail(f"the loop returned shape {tuple(img.shape)} or non-finite values {where}")
    if img.min() < 0 or img.max() > 1:
        raise Fail(f"the result has pixels outside [0, 1]: clamp after each step {where}")
    change = float((img - content).abs().max())
    if change < 1e-3:
        raise Fail(f"the image did not change: do your losses reach the image through the network? {where}")
    return change


@checker("stylization")
def check_stylization(content_loss, style_loss, tv_loss, *, gram=None, optimize=None) -> str:
    """Run a few Adam steps with the learner's losses (and ``optimize``, an adam_loop, if given).

    Signatures as in nstutils: content_loss(feats, target), style_loss(feats, target_grams,
    layer_weights), tv_loss(img, kind); gram(feats) and optimize(x0, loss_fn, steps, lr).
    """
    for name, f in (("style_loss", style_loss), ("tv_loss", tv_loss), ("gram", gram), ("optimize", optimize)):
        if f is not None and not callable(f):
            raise Fail(f"{name} must be your function, got a {type(f).__name__}")
    s = _Setup(gram or nu_losses.gram)
    noise = torch.randn(s.content.shape, generator=torch.Generator().manual_seed(2))
    probe = (s.content + 0.05 * noise).clamp(0, 1)
    terms = _terms(s, content_loss, style_loss, tv_loss)
    for name, (mine, theirs) in terms.items():
        _check_direction(name, mine, theirs, probe)

    def total(x: Tensor) -> Tensor:
        return sum(WEIGHTS[n] * terms[f"{n}_loss"][0](x) for n in WEIGHTS)
    where = f"(case: {STEPS} Adam steps, lr={LR}, image {tuple(s.content.shape)})"
    img = call(optimize or ref.adam_loop, s.content.clone(), total, STEPS, LR, where=where)
    change = _check_result(img, s.content, where)
    with torch.no_grad():
        before, after = (float(call(total, x, where=where)) for x in (s.content, img.detach()))
    if not after < before:
        raise Fail(f"the loss did not fall: {before:.4g} -> {after:.4g} {where}")
    return (f"{STEPS} Adam steps with your losses{' and your loop' if optimize else ''}: loss "
            f"{before:.4g} -> {after:.4g}, the image changed by up to {change:.2f} and stayed in [0, 1]")
