"""Checkers for the course's coded exercises: they diagnose a learner's function in one line.

In a notebook::

    from nstutils import check
    mine = check.Exercises()            # once, in the Setup cell: the notebook's own record

    def gram(feats):                    # "Your turn": the learner replaces the stub
        raise NotImplementedError

    mine.submit("gram", gram)           # the check cell prints one line, e.g.
    # ✗ gram: 30 times too large (30 = H*W): did you forget to divide by H*W, the number of
    #   positions? (case: batch 2, non-square, input (2, 8, 6, 5)) -> later cells use nstutils' version
    G = mine.gram(feats)                # later cells: the learner's gram if it passed, else nu.gram

Three forms of each check: ``check.check_gram(fn) -> Verdict`` (prints nothing),
``check.gram(fn)`` (prints the line, records nothing) and ``Exercises.submit("gram", fn)``
(prints and records). A :class:`Verdict` has ``status`` ("pass", "fail" or "not done"), ``ok``,
``message`` (one line), ``str()`` = "✓ gram: ...", "✗ gram: ..." or "○ gram: not done yet ...",
and ``pick(mine, fallback)``. ``Exercises.use(name)`` (or the attribute ``.name``) returns the
learner's function if its last submission passed, else nstutils' version in the same signature
(:data:`EXERCISES`), also when it was never submitted: skipping is allowed. A learner's
function that was checked on some TV kinds only (``kinds=``) is used for every kind.

A wrong answer never raises: the learner's exceptions become the message ("raised KeyError:
'relu4_2' (loop over the layers of target_grams ...)"), a stub that raises NotImplementedError
gives "not done yet". Misusing a checker (an unknown exercise or TV kind) raises ValueError.

The exercises, the learner's function, and the mistakes each checker names besides the generic
ones (None or not a tensor, dtype, device, shape, NaN, in-place edits of the inputs, no grad_fn
or a wrong gradient, a tensor made on the CPU, transposed, reversed colour channels, a constant
factor such as 2, 4 or 255):

- ``to_tensor(arr)``: (H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]. reshape instead of
  permute, H and W swapped, no batch axis, not divided by 255, float64.
- ``preprocess(img)``: Caffe input, BGR, 0-255, minus (103.939, 116.779, 123.68). Missing flip,
  mean or scale; mean in RGB order or added; scaled after the mean; torchvision's recipe; flip
  of the width, height or batch; constants made on the CPU.
- ``deprocess(x)``: its exact inverse. Clamped, no flip back, mean subtracted again, flipped
  before adding the mean, no division by 255, torchvision's inverse.
- ``layer_index(name)``: "conv4_2" -> 21, for all 37 layers. Counted from 1, pools forgotten,
  only convolutions counted, a ReLU given its conv's index, a string returned.
- ``features(net, x, layers)``: {name: output} from a VGG19-layout ``nn.Sequential`` whose ReLUs
  are in place, as torchvision builds them. The in-place trap (a conv holds its ReLU's values),
  one layer early or late, missing or extra keys, integer keys, no grad_fn.
- ``gram(feats)``: (B, C, H, W) -> (B, C, C), F F^T / (H*W). Factors H*W, C, C^2, C*H*W, B;
  batch folded into channels, F^T F, batch summed or dropped, (B, H*W, C) reshape, covariance.
- ``content_loss(feats, target)``: mean((F - P)^2). Sum (factor B*C*H*W), Gatys's 1/2 sum,
  root, norm, absolute, not squared, one loss per image.
- ``style_loss(feats, target_grams, layer_weights)``: sum_l w_l mean((G_l - A_l)^2); feats may
  hold other layers. Weights ignored, divided by the number of layers, summed over entries,
  absolute, root, unnormalized Gram, Gatys's 1/4, KeyError from looping over feats.
- ``tv_loss(img, kind)``: as nu.tv_loss, for ``kinds`` (default all of "squared", "absolute",
  "power"). One direction only, sums, both directions averaged together, torch.roll, no square
  or abs, the wrong kind; power: no 1.25, separate powers, cropped on the wrong side, Keras's sum.
- ``relative_weights(targets, weights)``: {layer: w_l / (sum_k w_k * mean(T_l^2))}, weights None
  meaning equal. No division by the sum, weights ignored, sum of squares, square of the mean,
  root mean square, multiplied.
- ``adam_loop(x0, loss_fn, steps, lr) -> image``: Adam on a copy of x0, clamped after each step.
  x0 edited, wrong number of evaluations, image outside [0, 1] during the run (clamped only at
  the end, or not at all) or after it (clamped before the step), no zero_grad, Adam's default
  lr, clamp outside torch.no_grad(), the optimizer given another tensor.
- ``lbfgs_closure(x, opt, loss_fn) -> closure``: closure() zeroes the gradient, computes the
  loss, backpropagates and returns it, and never touches x. Clamp inside, no return, no
  backward, no zero_grad, the closure called instead of returned, opt.step inside, a detached loss.
- ``resume_init(path, content) -> image``: a saved PNG as the start image (``init=``) of a new
  run: the content's size and device. The PNG's own size, H and W swapped, max_side, the content
  returned, 0-255, BGR, device.
- ``receptive_field(name)``: the side in input pixels that one position of a layer sees, for all
  37 layers (conv1_1: 3, relu3_1: 24, relu5_1: 156). Started at 0 or 2, j never doubled, pools
  forgotten or adding nothing, j doubled before the pool's share, k * j instead of (k - 1) * j,
  a ReLU given a field of its own.
- ``luminance_swap(x, c)``: RGB(Y of x, I and Q of c) in YIQ, clamped. Roles swapped, no clamp,
  back with M or M.T instead of M_inv, YIQ returned, I and Q zeroed, clamped in YIQ, channels in
  the wrong order, the mean of R, G, B as Y.
- ``match_luminance(L_s, L_c)``: sigma_c / sigma_s (L_s - mu_s) + mu_c. The wrong way round,
  mean only, the ratio upside down, variances, not centred, mu_c forgotten, mu_s added back,
  clamped; torch's default std (correction=1) passes, with a note.
- ``check_stylization(content_loss, style_loss, tv_loss, gram=None, optimize=None)`` (printing
  form ``check.stylization``): 10 Adam steps on a tiny random network with the learner's losses
  (and gram, and adam_loop as ``optimize``). Each loss's gradient must point as nstutils' does
  (a constant factor is allowed: it only rescales a weight), the loss must fall, the image
  change and stay in [0, 1]. Not in :data:`EXERCISES` (it checks a combination); pass
  ``mine.content_loss`` etc. to use whatever passed.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

from .. import losses
from . import reference
from .layer_weights import check_relative_weights
from .loops import check_adam_loop, check_lbfgs_closure, check_resume_init
from .color import check_luminance_swap, check_match_luminance
from .network import check_features, check_layer_index, check_receptive_field
from .stylization import check_stylization
from .tensors import (check_content_loss, check_deprocess, check_gram, check_preprocess,
                      check_style_loss, check_to_tensor, check_tv_loss)
from .verdict import Verdict
from ..layers import torchvision_index

# name: (checker, nstutils' version in the same signature)
EXERCISES: Mapping[str, tuple[Callable[..., Verdict], Callable]] = MappingProxyType({
    "to_tensor": (check_to_tensor, reference.to_tensor),
    "preprocess": (check_preprocess, reference.caffe_preprocess),
    "deprocess": (check_deprocess, reference.caffe_deprocess),
    "layer_index": (check_layer_index, torchvision_index),
    "features": (check_features, reference.extract),
    "gram": (check_gram, losses.gram),
    "content_loss": (check_content_loss, losses.content_loss),
    "style_loss": (check_style_loss, losses.style_loss),
    "tv_loss": (check_tv_loss, losses.tv_loss),
    "relative_weights": (check_relative_weights, losses.relative_weights),
    "adam_loop": (check_adam_loop, reference.adam_loop),
    "lbfgs_closure": (check_lbfgs_closure, reference.make_closure),
    "resume_init": (check_resume_init, reference.resume_init),
    "receptive_field": (check_receptive_field, reference.receptive_field),
    "luminance_swap": (check_luminance_swap, reference.luminance_swap),
    "match_luminance": (check_match_luminance, reference.match_luminance),
})


class Exercises:
    """A notebook's record of the learner's functions: uses each one only if it passed.

    ``submit(name, fn)`` checks and prints; ``use(name)`` (or ``exercises.<name>``) returns the
    learner's function if its check passed, else nstutils' version, so skipping is allowed.
    ``verdicts`` maps each submitted name to (the learner's function, its Verdict).
    """

    def __init__(self):
        self.verdicts: dict[str, tuple[Callable, Verdict]] = {}

    def submit(self, name: str, fn, **options) -> None:
        """Check ``fn`` as exercise ``name`` (options go to the checker), print and record the verdict."""
        check_fn, _ = EXERCISES[_known(name)]
        verdict = check_fn(fn, **options)
        self.verdicts[name] = (fn, verdict)
        print(verdict if verdict.ok else f"{verdict} -> later cells use nstutils' version")

    def use(self, name: str) -> Callable:
        """The learner's function for ``name`` if it passed, else nstutils' (also when never submitted)."""
        fallback = EXERCISES[_known(name)][1]
        if name not in self.verdicts:
            return fallback
        fn, verdict = self.verdicts[name]
        return verdict.pick(fn, fallback)

    def __getattr__(self, name: str) -> Callable:
        if name.startswith("_") or name not in EXERCISES:
            raise AttributeError(f"no exercise {name!r}; valid: {', '.join(EXERCISES)}")
        return self.use(name)

    def __repr__(self) -> str:
        rows = [f"{n}: {'yours' if v.ok else 'nstutils'} ({v.status})" for n, (_, v) in self.verdicts.items()]
        return f"Exercises({'; '.join(rows) or 'none submitted'})"


def _known(name: str) -> str:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; valid: {', '.join(EXERCISES)}")
    return name


def show(verdict: Verdict) -> None:
    """Print a verdict's one line (what the printing forms below do)."""
    print(verdict)


def to_tensor(fn) -> None:
    """Print the verdict of :func:`check_to_tensor`."""
    show(check_to_tensor(fn))


def preprocess(fn) -> None:
    """Print the verdict of :func:`check_preprocess`."""
    show(check_preprocess(fn))


def deprocess(fn) -> None:
    """Print the verdict of :func:`check_deprocess`."""
    show(check_deprocess(fn))


def layer_index(fn) -> None:
    """Print the verdict of :func:`check_layer_index`."""
    show(check_layer_index(fn))


def features(fn) -> None:
    """Print the verdict of :func:`check_features`."""
    show(check_features(fn))


def gram(fn) -> None:
    """Print the verdict of :func:`check_gram`."""
    show(check_gram(fn))


def content_loss(fn) -> None:
    """Print the verdict of :func:`check_content_loss`."""
    show(check_content_loss(fn))


def style_loss(fn) -> None:
    """Print the verdict of :func:`check_style_loss`."""
    show(check_style_loss(fn))


def tv_loss(fn, kinds=losses.TV_KINDS) -> None:
    """Print the verdict of :func:`check_tv_loss`."""
    show(check_tv_loss(fn, kinds))


def relative_weights(fn) -> None:
    """Print the verdict of :func:`check_relative_weights`."""
    show(check_relative_weights(fn))


def adam_loop(fn) -> None:
    """Print the verdict of :func:`check_adam_loop`."""
    show(check_adam_loop(fn))


def lbfgs_closure(fn) -> None:
    """Print the verdict of :func:`check_lbfgs_closure`."""
    show(check_lbfgs_closure(fn))


def resume_init(fn) -> None:
    """Print the verdict of :func:`check_resume_init`."""
    show(check_resume_init(fn))


def receptive_field(fn) -> None:
    """Print the verdict of :func:`check_receptive_field`."""
    show(check_receptive_field(fn))


def luminance_swap(fn) -> None:
    """Print the verdict of :func:`check_luminance_swap`."""
    show(check_luminance_swap(fn))


def match_luminance(fn) -> None:
    """Print the verdict of :func:`check_match_luminance`."""
    show(check_match_luminance(fn))


def stylization(content_loss, style_loss, tv_loss, *, gram=None, optimize=None) -> None:
    """Print the verdict of :func:`check_stylization`."""
    show(check_stylization(content_loss, style_loss, tv_loss, gram=gram, optimize=optimize))


__all__ = ["EXERCISES", "Exercises", "Verdict", "check_adam_loop", "check_content_loss",
           "check_deprocess", "check_features", "check_gram", "check_layer_index",
           "check_lbfgs_closure", "check_preprocess", "check_relative_weights", "check_resume_init",
           "check_style_loss",
           "check_stylization", "check_to_tensor", "check_tv_loss", "show", *EXERCISES, "stylization"]
