"""Optimize an image so that its features match a content image and its Gram matrices a style.

``stylize`` is the one entry point; its defaults live in :data:`DEFAULTS`. The image itself is
the parameter (requires_grad on pixels, never on the network). Taught in
notebooks/04_optimization.ipynb.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import torch
from torch import Tensor

from .device import choose_precision
from .features import VGGFeatures, min_side
from .heap import kept_heap, room_to_keep
from .memory import available_memory, check_memory, estimate_memory
from .objective import Targets, loss_terms, make_targets
from .pyramid import PYRAMID_MIN_SIDE, add_start_level, pyramid_sizes, rescale, resize, split_steps
from .threads import ThreadGovernor, ThreadReplay, check_threads, governed
from .layers import check_layers
from .validate import check_choice, check_image, check_int, check_number, check_seed
from .weights import load_vgg19
from .winograd import choose_conv

OPTIMIZERS = ("lbfgs", "adam")
MAX_STYLE_SCALE = 8.0  # style images at most 8x the result's longer side (VGG sees tiles beyond)
INITS = ("content", "noise", "style")


@dataclass(frozen=True)
class Defaults:
    """Every default of :func:`stylize`, in one place (the CLI and the widgets read them here)."""

    # 144 = 48 + 48 + 24 + 24 steps at 64, 128, 256 and 512 px (48 + 48 + 48 at 96, 192 and 384
    # px); the finest level's steps pay most, the coarsest's cost least (pyramid.split_steps and
    # add_start_level; timings in benchmarks/).
    steps: int = 144
    optimizer: str = "lbfgs"
    lr: float | None = None  # None: 1.0 for L-BFGS (its line search scales the step), 0.02 for Adam
    content_weight: float = 1.0
    style_weight: float = 30.0  # also the first weight "auto" tries, the top of its range
    # The command line and the playground start from "auto" (nstutils.balance): at 30, 25 of the
    # 32 sample pairs lose their photo's main shapes (docs/contact_sheet_*.jpg). stylize() keeps
    # the number, which the notebooks teach and compute with.
    app_style_weight: float | str = "auto"
    tv_weight: float = 1.0
    tv_kind: str = "squared"
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    init: str = "content"
    seed: int = 0
    lbfgs_history: int = 100
    pyramid: bool = True  # coarse-to-fine from 128 px (False: the textbook single-size run)
    start_level: bool | None = None  # and from 64 px with a numeric style weight (pyramid.add_start_level)
    precision: str = "auto"  # bf16 convolutions where the device runs them natively, else fp32
    conv: str = "auto"  # float32 on the CPU: Winograd's F(4x4, 3x3) convolutions (nstutils.winograd)
    threads: int | str = "auto"  # CPU threads: all while the run gets its cores; when crowded, one
    # more or fewer, whichever gets more CPU time (nstutils.threads)


DEFAULTS = Defaults()
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
LBFGS_MAX_EVAL = 26  # function evaluations per L-BFGS step: 1 + torch's 25 line-search tries
# The first L-BFGS step of a run or pyramid level has no curvature to go by: torch tries the step
# t = lr / |g|_1 along -g, whose changes add up to lr over all pixel values (at 512 px, 1/2300 of a
# grey level each), and its line search then spent 4-5 evaluations growing it (5 of the 512 px
# level's 29). We start that step at most one grey level per value on average, lr * n / 255 for n
# values, and keep lr after it: 2-4 evaluations fewer per level, final loss as before (see README;
# None: torch's own first step, which benchmarks/levels.py --first-step torch measures).
LBFGS_FIRST_CHANGE: float | None = 1 / 255


def as_saved(img: Tensor) -> Tensor:
    """The image that the losses score: ``img`` clamped to [0, 1], as it will be saved.

    A departure from Gatys et al. and the usual L-BFGS implementations, which optimize pixels
    without bounds and clamp only when saving: that clamp changed the image the loss had
    described (the default 512 px run's last history entry was 1.075, its saved image 1.109).
    The loss of the clamped image is a continuous function of the pixels, so L-BFGS's curvature
    model stays valid (clamping the pixels themselves in place would not); a value beyond the
    range gets no gradient from it, and :func:`range_penalty`, added to what L-BFGS minimizes,
    pulls such a value back. Measured (``benchmarks/levels.py --range``, before that pull):
    the default 512 px run of Tübingen x The Starry Night ended at 1.055-1.058 instead of 1.109,
    and three other pairs 3-14% lower (README, "Speed and memory"). Adam clamps its pixels after
    every step, so for Adam this changes nothing. Taught in notebooks/04_optimization.ipynb, section 9.
    """
    return img.clamp(0, 1)


OUT_OF_RANGE_WEIGHT = 1000.0  # w of range_penalty (benchmarks/range_penalty.py; README, "What the losses score")


def range_penalty(img: Tensor, weight: float | None = None) -> Tensor:
    """w * mean((x - clamp(x, 0, 1))^2): zero on [0, 1], a pull back towards it outside.

    With the losses of the clamped image alone (:func:`as_saved`), a pixel that L-BFGS pushed
    beyond the range gets no gradient and stays there, even when the losses would later have it
    move back: a texture synthesized from noise ended with 19% of its values on a bound, and with a
    total-variation weight the stuck ones showed as coloured dots. This term, added to what L-BFGS
    minimizes (never to the reported losses, which score the clamped image), is zero wherever the
    image is inside [0, 1] and has a continuous gradient, so the loss of the returned image is
    still what was minimized and L-BFGS's curvature pairs stay true. A departure from Gatys et al.
    With w = 1000 (``benchmarks/range_penalty.py``, README "What the losses score"): 1.8% of that
    texture's values on a bound (0.1% with the TV weight 10, whose dots were gone), runs from noise
    ending 2% lower, runs from the photo within -1.1% and +1.5% of before (their usual scatter).
    img: (1, 3, H, W), any values; weight: w, None for OUT_OF_RANGE_WEIGHT (read at each call,
    so that a benchmark can vary it). Returns a scalar.
    """
    w = OUT_OF_RANGE_WEIGHT if weight is None else weight
    return w * (img - img.clamp(0, 1)).square().mean()


def lbfgs_objective(img: Tensor, evaluate, targets: Targets, **weights) -> tuple[dict, Tensor]:
    """What ``stylize``'s L-BFGS minimizes: the loss of the clamped image plus the pull into the range.

    J(x) = L(clamp(x, 0, 1)) + range_penalty(x). Returns (the weighted terms of the clamped image,
    :func:`as_saved`, as :func:`nstutils.objective.loss_terms` gives them; J as a scalar tensor).
    The terms are what runs report; J is what a hand-written L-BFGS loop must minimize to land
    where ``stylize`` does (notebooks/04_optimization.ipynb, section 3).
    """
    terms = loss_terms(as_saved(img), evaluate, targets, **weights)
    return terms, terms["total"] + range_penalty(img)


@dataclass(frozen=True)
class StepRecord:
    """Losses of the image that step ``step`` started from (weighted terms), and time so far."""

    step: int
    total: float
    content: float
    style: float
    tv: float
    seconds: float
    level: int = 0  # the pyramid level (0 = coarsest); losses compare only within a level


@dataclass(frozen=True)
class StepInfo:
    """What ``callback`` receives after each step. ``image`` is a clamped copy (1, 3, H, W)."""

    step: int
    steps: int
    record: StepRecord
    image: Tensor
    params: dict | None = None  # the run's settings (what StylizeResult.params will hold)
    probe: float | None = None  # the style weight that "auto" is trying at the first level; None once chosen


@dataclass(frozen=True)
class StylizeResult:
    """The outcome of :func:`stylize`.

    image: (1, 3, H, W) in [0, 1]; history: one StepRecord per step; snapshots: (step, image)
    pairs on the CPU; params: every setting used; seconds: wall time; status: "completed",
    "stopped" (the callback asked), "interrupted" (KeyboardInterrupt) or "diverged";
    message: one readable line about how the run ended; loss: the weighted terms {"total",
    "content", "style", "tv"} of ``image`` itself (``history[-1]`` describes the image before
    the last step), or None when the run ended before its full-size level or was interrupted
    while measuring it.
    """

    image: Tensor
    history: list[StepRecord]
    snapshots: list[tuple[int, Tensor]]
    params: dict
    seconds: float
    status: str = "completed"
    message: str = ""
    loss: dict | None = None


class _Diverged(Exception):
    pass


@dataclass
class _Best:
    """The lowest-loss image seen so far (kept so a diverged or interrupted run can fall back)."""

    loss: float = math.inf
    step: int = 0
    image: Tensor | None = field(default=None, repr=False)


def _init_image(init, content: Tensor, style: Tensor, seed: int) -> Tensor:
    if isinstance(init, Tensor):
        init = check_image(init, "init")
        if init.shape != content.shape:
            raise ValueError(f"init image shape {tuple(init.shape)} differs from content {tuple(content.shape)}")
        return init.detach().to(content.device, torch.float32).clone()
    if init == "content":
        return content.detach().clone()
    if init == "style":
        return torch.nn.functional.interpolate(style, size=content.shape[-2:], mode="bilinear",
                                               align_corners=False, antialias=True).clamp(0, 1)
    if init == "noise":
        gen = torch.Generator(device=content.device).manual_seed(seed)
        return torch.rand(content.shape, generator=gen, device=content.device)
    raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)} or a (1, 3, H, W) tensor")


def _styles(style) -> list[Tensor]:
    """Return the style image(s) as a non-empty list of tensors."""
    if isinstance(style, (str, bytes)) or not isinstance(style, (Tensor, list, tuple)):
        raise ValueError(f"style must be an image tensor (1, 3, H, W) or a list of them, got "
                         f"{type(style).__name__}; load it with nstutils.load_image")
    styles = [style] if isinstance(style, Tensor) else list(style)
    if not styles:
        raise ValueError("no style image given; pass a (1, 3, H, W) tensor or a list of them")
    return styles


def _sizes(styles: list[Tensor]):
    """(H, W) of the style image, or a list of them when there are several."""
    sizes = [tuple(s.shape[-2:]) for s in styles]
    return sizes[0] if len(sizes) == 1 else sizes


def _check_args(content: Tensor, styles: list[Tensor], steps: int, optimizer: str):
    """Return (content, styles, steps) checked (see :mod:`nstutils.validate`), or raise ValueError."""
    content = check_image(content, "content")
    styles = [check_image(s, "style" if len(styles) == 1 else f"style {i}") for i, s in enumerate(styles)]
    for style in styles:
        if content.device != style.device:
            raise ValueError(f"content is on {content.device} but style is on {style.device}")
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    return content, styles, check_int(steps, "steps")


def _check_settings(lr, seed, lbfgs_history, snapshot_every, style_scale, max_memory, callback,
                    **weights) -> None:
    """Raise ValueError for a setting of the wrong type or out of range (names as in stylize)."""
    if lr is not None:
        check_number(lr, "lr", positive=True)
    for name, value in weights.items():
        if not isinstance(value, str):  # a string style weight ("auto") is resolved by stylize
            check_number(value, name)
    check_seed(seed)
    check_int(lbfgs_history, "lbfgs_history", 1)
    if snapshot_every is not None:
        check_int(snapshot_every, "snapshot_every", 1)
    if style_scale is not None:
        check_number(style_scale, "style_scale", positive=True, maximum=MAX_STYLE_SCALE)
    if max_memory is not None:
        check_number(max_memory, "max_memory", positive=True)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a function of one StepInfo, got {type(callback).__name__}")


class _Ended(Exception):
    """A try of "auto" was stopped or interrupted: the run ends with it (args: its weight)."""


@dataclass(frozen=True)
class _Plan:
    """What the pyramid levels of one ``stylize`` call share; :meth:`level` sets one level up."""

    content: Tensor
    styles: list[Tensor]
    sizes: list
    level_steps: list[int]
    extractor: VGGFeatures
    evaluate: Callable
    target_kwargs: dict  # content_layers, style_layers, style_layer_weights and the optional extras
    shrink_styles: bool  # no style_scale given: the styles shrink with the content
    optimizer: str
    lr: float
    lbfgs_history: int
    detail: bool  # init "content": each level adds the content's own detail back (see _upsample)

    def level(self, level: int, img: Tensor, weights: dict, progress: "_Progress") -> "_Run":
        """Return the run of level ``level`` (0 = coarsest), started from ``img`` (the level before's result)."""
        size, full = self.sizes[level], self.content.shape[-2]
        styles = self.styles
        if len(self.sizes) > 1 and self.shrink_styles:
            # Shrink the styles with the content, so brush strokes keep their size relative to
            # the picture at every level (style_scale, when given, is relative already).
            # Never below what the deepest style layer needs to see (a few cells).
            deepest = min_side(self.target_kwargs["style_layers"])
            styles = [rescale(s, size[0] / full, deepest) for s in self.styles]
        targets = make_targets(self.extractor, resize(self.content, size), styles if len(styles) > 1 else styles[0],
                               **self.target_kwargs)
        img = _upsample(img, self.content, self.sizes, level, detail=self.detail)
        opt = _make_optimizer(self.optimizer, img, self.lr, self.lbfgs_history)
        return _Run(img, opt, self.evaluate, targets, weights, self.optimizer, self.level_steps[level], progress, level)

    def run(self, levels: range, img: Tensor, weights: dict, progress: "_Progress",
            result: "StylizeResult | None" = None) -> "StylizeResult":
        """Run ``levels`` in turn from ``img``; return the last one's result (``result`` if none ran).

        ``result``: the result of the level before ``levels``, if any, returned marked "interrupted"
        when Ctrl-C comes while the next level is set up; with None, that Ctrl-C is raised.
        """
        for level in levels:
            try:
                run = self.level(level, img, weights, progress)
            except KeyboardInterrupt:
                if result is None:  # not one step done: nothing to return
                    raise
                # Between levels (targets, upsampling, optimizer): the last level's image is the best so far.
                return replace(result, status="interrupted", loss=None,
                               message=f"interrupted at step {progress.done + 1}, before pyramid level "
                                       f"{level + 1} of {len(self.sizes)}; returned the image of step {progress.done}")
            result = run.loop(measure=level == len(self.sizes) - 1)  # only the full-size image's loss is kept
            img = result.image
            if result.status != "completed":
                break
        return result

    @property
    def tried(self) -> int:
        """The levels that each try of ``style_weight="auto"`` runs: up to the first of 128 px or more.

        With the start level (64 px at 512 px) that is two levels, so a try is judged at 128 px, as
        without it, but its large shapes were placed where a step costs less than half as much.
        """
        return next((i + 1 for i, s in enumerate(self.sizes) if max(s) >= PYRAMID_MIN_SIDE), len(self.sizes))


def _choose_style_weight(plan: _Plan, img: Tensor, weights: dict, progress: "_Progress") -> "StylizeResult":
    """Resolve ``style_weight="auto"``: return the result of the tried levels at the chosen weight.

    :func:`nstutils.balance.auto_style_weight` picks the weight; each weight it tries is the run's
    own first levels up to 128 px (:attr:`_Plan.tried`: the start level and the one after it, or
    the first level alone; same sizes, steps, targets and thread counts), judged by the structure
    it forecasts (:func:`nstutils.balance.structure_forecast`) against
    :func:`nstutils.balance.probe_threshold`. The chosen try is kept as the run's first levels,
    so the extra cost is the tries not kept (``params["style_weight_seconds"]``), and a rerun with
    the chosen weight, which computes those levels again, gets the same pixels. A try stops as
    soon as its forecast falls below the threshold (checked every AUTO_CHECK_EVERY steps of its
    last level), so one that fails costs only the steps up to there; its forecast is recorded
    where it stopped. Callbacks see each try's steps with ``StepInfo.probe`` set to its weight. A try that
    diverges counts as losing the structure; one stopped (by the callback) or interrupted ends the
    run with its image.
    Sets ``weights["style_weight"]`` and the run's ``params``; ``progress`` takes the kept try's steps.
    """
    from .balance import AUTO_CHECK_EVERY, auto_style_weight, probe_threshold, structure_forecast

    governor = progress.governor
    threshold = probe_threshold(len(plan.sizes))
    tries: dict[float, tuple] = {}  # weight -> (result, progress, thread schedule, seconds, forecast or None)
    before = sum(plan.level_steps[:plan.tried - 1])  # a try's steps before its last level, where it is judged
    tried_steps = before + plan.level_steps[plan.tried - 1]

    def attempt(beta: float) -> float:
        if isinstance(governor, ThreadReplay):
            governor.reset(0)
        schedule = [[0, torch.get_num_threads()]]
        mark = len(governor.schedule) if isinstance(governor, ThreadGovernor) else 0
        asked, failed = [], []  # steps where the caller's callback asked to stop; the forecast where it fell

        def check(info: StepInfo) -> bool:
            if progress.callback is not None and progress.callback(info):
                asked.append(info.step)
                return True
            # The forecast only fell along a level's steps (12 tries: 4 pairs x 3 weights, every 8 steps): a try
            # below the threshold will not come back, so it stops there (a try not kept costs its
            # steps). The kept try runs all of them: it is the run's first levels. Checked only in
            # the last tried level: the forecast's margin was measured on images of 128 px and up.
            if info.step % AUTO_CHECK_EVERY == 0 and before < info.step < tried_steps:
                kept = structure_forecast(plan.content, info.image)
                if kept < threshold:
                    failed.append(kept)
                    return True
            return False

        p = _Progress(progress.steps, progress.snapshot_every, check, progress.start, progress.params, governor,
                      probe=beta)
        start = time.perf_counter()
        try:
            r = plan.run(range(plan.tried), img.clone(), {**weights, "style_weight": beta}, p)
        except KeyboardInterrupt:  # while setting the level up: end with the last try, if any
            if not tries:
                raise
            last = next(reversed(tries))
            r = replace(tries[last][0], status="interrupted", message=f"interrupted while choosing the style "
                        f"weight; returned the last try's image (step {tries[last][1].done})")
            tries[last] = (r, *tries[last][1:4], None)
            raise _Ended(last) from None
        if isinstance(governor, ThreadGovernor):
            schedule += governor.schedule[mark:]
        ended = r.status == "interrupted" or bool(asked)
        kept = (None if ended else failed[0] if failed else
                structure_forecast(plan.content, r.image) if r.status == "completed" else -1.0)
        tries[beta] = (r, p, schedule, time.perf_counter() - start, kept)
        if ended:
            raise _Ended(beta)
        return kept

    try:
        beta = auto_style_weight(attempt, threshold=threshold).style_weight
    except _Ended as end:
        beta = end.args[0]
    seconds = sum(t[3] for b, t in tries.items() if b != beta)
    weights["style_weight"] = beta
    progress.params.update(style_weight=beta, style_weight_seconds=seconds,
                           style_weight_probes=[[b, t[4]] for b, t in tries.items() if t[4] is not None])
    if beta not in tries:  # none passed: the range's lowest weight (never tried) runs the tried levels
        if isinstance(governor, ThreadReplay):
            governor.reset(0)
        elif isinstance(governor, ThreadGovernor):
            governor.schedule = [[0, torch.get_num_threads()]]
        return plan.run(range(plan.tried), img, weights, progress)
    result, p, schedule = tries[beta][:3]
    progress.done, progress.history, progress.snapshots = p.done, p.history, p.snapshots
    if isinstance(governor, ThreadReplay):
        governor.reset(p.done)
    elif isinstance(governor, ThreadGovernor):
        governor.schedule = schedule + ([[p.done, governor.threads]] if governor.threads != schedule[-1][1] else [])
    if result.status != "completed":
        result = replace(result, message=f"{result.message}, while trying style weight {beta:g} for 'auto'")
    return result


def levels(full: tuple[int, int], layers, steps: int, pyramid: bool,
           start_level: bool = True) -> tuple[list, list[int]]:
    """Return the (H, W) of each pyramid level, coarsest first, and the steps of each.

    Levels too small for the deepest of ``layers`` are left out (very wide images: fewer levels).
    ``start_level``: a pyramid gets one more level at half its coarsest's sides
    (:func:`nstutils.pyramid.add_start_level`).
    """
    sizes = pyramid_sizes(full) if pyramid else [full]
    deepest = min_side(layers)
    sizes = [s for s in sizes[:-1] if min(s) >= deepest] + [tuple(full)]
    level_steps = split_steps(steps, len(sizes))
    if start_level:
        more, more_steps = add_start_level(sizes, level_steps)
        if min(more[0]) >= deepest:
            return more, more_steps
    return sizes, level_steps


def _make_optimizer(name: str, img: Tensor, lr: float, history: int) -> torch.optim.Optimizer:
    if name == "lbfgs":
        # max_iter=1: one call of .step() is one L-BFGS iteration, so "steps" means the same for
        # both optimizers (Gatys et al. used L-BFGS with up to 1000 iterations). max_eval must be
        # explicit: torch's default, max_iter * 5 // 4 = 1, leaves the line search no evaluation to
        # backtrack with, so one rejected trial step would freeze the image for every later step.
        first = lr if LBFGS_FIRST_CHANGE is None else lr * LBFGS_FIRST_CHANGE * img.numel()
        opt = torch.optim.LBFGS([img], lr=first, max_iter=1,
                                max_eval=LBFGS_MAX_EVAL, history_size=history, line_search_fn="strong_wolfe")
        opt.param_groups[0]["lr_after_first"] = lr  # _Run._step sets it after the first step
        return opt
    return torch.optim.Adam([img], lr=lr)


def stylize(content: Tensor, style, extractor: VGGFeatures | None = None, *,
            steps: int = DEFAULTS.steps, optimizer: str = DEFAULTS.optimizer,
            lr: float | None = DEFAULTS.lr, content_weight: float = DEFAULTS.content_weight,
            style_weight: float = DEFAULTS.style_weight, tv_weight: float = DEFAULTS.tv_weight,
            tv_kind: str = DEFAULTS.tv_kind, content_layers=DEFAULTS.content_layers,
            style_layers=DEFAULTS.style_layers,
            style_layer_weights: Mapping[str, float] | None = None, style_blend=None,
            style_scale: float | None = None, content_masks=None, style_masks=None,
            init=DEFAULTS.init, seed: int = DEFAULTS.seed, snapshot_every: int | None = None,
            callback: Callable[[StepInfo], bool | None] | None = None,
            lbfgs_history: int = DEFAULTS.lbfgs_history, pyramid: bool = DEFAULTS.pyramid,
            start_level: bool | None = DEFAULTS.start_level,
            precision: str = DEFAULTS.precision, conv: str = DEFAULTS.conv,
            threads: int | str = DEFAULTS.threads, max_memory: int | None = None) -> StylizeResult:
    """Stylize ``content`` with ``style`` by optimizing the pixels (Gatys et al., 2016).

    Minimizes alpha L_content + beta L_style + gamma L_tv (see :mod:`nstutils.objective`).
    Args:
        content: (1, 3, H, W) in [0, 1]; the result has its size and device.
        style: (1, 3, H', W') in [0, 1], any size; or a list of them (mixed by ``style_blend``,
            or one per region of ``content_masks``; see :func:`nstutils.make_targets`).
        extractor: a VGGFeatures on the images' device; None builds one from the Caffe weights.
        steps: optimizer updates in all (one L-BFGS iteration or one Adam step each).
        style_layer_weights: relative weights per style layer (default equal).
        style_scale: None uses the style image(s) as given; s resizes them to s times the
            content's longer side.
        init: "content", "noise" (uniform, from ``seed``), "style" or a tensor to continue from.
        snapshot_every: keep a copy of the image every N steps (step 0 included).
        callback: called after each step with a StepInfo; return True to stop early.
        pyramid: coarse-to-fine (see :mod:`nstutils.pyramid`): the steps are shared among
            levels that double in size up to the full size, each started from the upsampled
            result of the one before, from 128 px up (96, 24 and 24 steps at 128, 256 and 512 px).
            False runs every step at full size (the textbook method). A tensor ``init``
            continues at full size without a pyramid.
        start_level: one more pyramid level before the coarsest, at half its size, with half its
            steps (:func:`nstutils.pyramid.add_start_level`; 48, 48, 24 and 24 steps at 64, 128,
            256 and 512 px). None (the default): with a numeric style weight, not with "auto".
            True with "auto" makes each try run the start level and the one after it, judged at
            128 px as without it (``_choose_style_weight``); measured on the 32 sample pairs at
            256 px, those tries forecast the result less well (one pair ended below the structure
            threshold; README, "Every photo with every painting"), so it is not the default.
            ``params["start_level"]`` records it, so that a rerun with the weight "auto" chose
            (:func:`nstutils.provenance.stylize_kwargs`) gets the same pixels.
        precision: "fp32", "bf16" (convolutions in bfloat16, losses in float32) or "auto"
            (bf16 where the device runs it natively; see :mod:`nstutils.device`).
        conv: how the convolutions compute: "direct" (torch's), "winograd" (Winograd's F(4x4, 3x3),
            float32 on the CPU only; the same result up to rounding, a run about 1.4x faster there; see
            :mod:`nstutils.winograd`) or "auto" (winograd where it runs, else direct).
        threads: CPU threads of the run: a number, "auto" (all of torch's threads while the run
            gets its cores; one more or fewer while another program takes them, whichever gets
            more CPU time), or a schedule
            [[0, n], [step, n], ...] to replay (``params["thread_schedule"]`` of a run; see
            :mod:`nstutils.threads`). torch's thread count is restored when the run ends.
        max_memory: bytes the run may use; None: what the device has free. A run whose
            estimate (:func:`nstutils.estimate_memory`) exceeds it raises MemoryError.
    Returns: a StylizeResult. A NaN/inf loss ends the run with the best image so far
    (status "diverged"); Ctrl-C ends it the same way with status "interrupted".
    """
    styles = _styles(style)
    content, styles, steps = _check_args(content, styles, steps, optimizer)
    _check_settings(lr, seed, lbfgs_history, snapshot_every, style_scale, max_memory, callback,
                    content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)
    content_layers, style_layers = check_layers(content_layers), check_layers(style_layers)
    threads = check_threads(threads)
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    precision = choose_precision(content.device, precision)
    conv = choose_conv(content.device, precision, conv)
    if extractor is None:
        extractor = VGGFeatures(load_vgg19(), layers=(*content_layers, *style_layers)).to(content.device)
    if conv == "winograd":
        extractor = extractor.winograd()  # a copy for this run: the caller's extractor is untouched
    auto = isinstance(style_weight, str)  # "auto": chosen for this pair (a departure from Gatys et al.)
    if auto and style_weight != "auto":
        raise ValueError(f"style_weight must be a number >= 0 or 'auto', got {style_weight!r}")
    full = tuple(content.shape[-2:])
    if start_level not in (None, True, False):
        raise ValueError(f"start_level must be True, False or None, got {start_level!r}")
    start_level = not auto if start_level is None else start_level
    sizes, level_steps = levels(full, (*content_layers, *style_layers), steps,
                                pyramid and not isinstance(init, Tensor), start_level=start_level)
    need = estimate_memory(full, layers=(*content_layers, *style_layers), precision=precision, conv=conv,
                           optimizer=optimizer, lbfgs_history=lbfgs_history, steps=level_steps[-1])
    limit = available_memory(content.device) if max_memory is None else max_memory
    check_memory(need, limit, full)
    keep = content.device.type == "cpu" and room_to_keep(need, limit)  # speed, never at the cost of memory
    extra = {k: v for k, v in dict(style_blend=style_blend, style_scale=style_scale,
                                   content_masks=content_masks, style_masks=style_masks).items()
             if v is not None}
    weights = dict(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                   tv_kind=tv_kind)
    params = dict(steps=steps, optimizer=optimizer, lr=lr, **weights, style_weight_auto=auto,
                  style_weight_probes=None, style_weight_seconds=0.0,
                  content_layers=tuple(content_layers), style_layers=tuple(style_layers),
                  style_layer_weights=dict(style_layer_weights or {n: 1.0 for n in style_layers}),
                  style_blend=None if style_blend is None else [float(b) for b in style_blend],
                  style_scale=style_scale, masks=content_masks is not None,
                  init=init if isinstance(init, str) else "tensor", seed=seed,
                  lbfgs_history=lbfgs_history, snapshot_every=snapshot_every,
                  pyramid=bool(pyramid), start_level=start_level, levels=[list(s) for s in sizes], level_steps=level_steps, precision=precision, conv=conv,
                  content_size=full, style_size=_sizes(styles),
                  device=str(content.device), threads=threads, weights=extractor.weights_id,
                  pooling=extractor.pooling, torch=torch.__version__)
    plan = _Plan(content, styles, sizes, level_steps, extractor,
                 extractor if precision == "fp32" else functools.partial(extractor, precision=precision),
                 dict(content_layers=content_layers, style_layers=style_layers,
                      style_layer_weights=style_layer_weights, **extra),
                 style_scale is None, optimizer, lr, lbfgs_history, init == "content")
    with governed(threads, content.device) as governor, kept_heap() if keep else contextlib.nullcontext():
        progress = _Progress(steps, snapshot_every, callback, time.perf_counter(), params, governor)
        img = _init_image(init, resize(content, sizes[0]), styles[0], seed)
        result, first = None, 0
        if auto:
            result = _choose_style_weight(plan, img, weights, progress)
            img, first = result.image, plan.tried
            if result.status != "completed":
                first = len(sizes)  # nothing left to run
        result = plan.run(range(first, len(sizes)), img, weights, progress, result)
    if isinstance(governor, ThreadGovernor):
        params["thread_changes"] = governor.changes  # (seconds into the run, threads) when crowded
    if content.device.type == "cpu":  # results depend on the thread count: a rerun replays it
        params["thread_schedule"] = (governor.schedule if governor is not None else
                                     [[0, threads if isinstance(threads, int) else torch.get_num_threads()]])
    return replace(result, image=resize(result.image, full), history=progress.history,
                   snapshots=progress.snapshots, params=params,
                   seconds=time.perf_counter() - progress.start)


def _upsample(img: Tensor, content: Tensor, sizes: list, level: int, detail: bool) -> Tensor:
    """Return the start image of pyramid level ``level``: the last level's result, upsampled.

    With ``detail``, the content's own fine detail at this level (what the coarser level
    could not hold: C_l - up(C_{l-1})) is added back; upsampling alone leaves a blurred image
    whose finest style statistics are far off (measured at 512 px: the level started at a loss
    of 9.3 instead of 11.3 and ended 7% lower after 28 steps). A departure from Gatys et al. 2017.
    """
    size = sizes[level]
    up = resize(img.detach(), size)
    if detail and level > 0 and tuple(img.shape[-2:]) == tuple(sizes[level - 1]):
        up = (up + resize(content, size) - resize(resize(content, sizes[level - 1]), size)).clamp(0, 1)
    return up.detach().requires_grad_(True)


@dataclass
class _Progress:
    """What a run reports across pyramid levels: global step numbers, history and snapshots."""

    steps: int
    snapshot_every: int | None
    callback: Callable[[StepInfo], bool | None] | None
    start: float
    params: dict = field(default_factory=dict)
    governor: ThreadGovernor | ThreadReplay | None = None
    probe: float | None = None  # the style weight "auto" is trying (None: the run itself)
    done: int = 0
    history: list[StepRecord] = field(default_factory=list)
    snapshots: list[tuple[int, Tensor]] = field(default_factory=list)

    def snapshot(self, step: int, img: Tensor) -> None:
        if self.snapshot_every and step % self.snapshot_every == 0 and not (
                self.snapshots and self.snapshots[-1][0] == step):
            self.snapshots.append((step, img.detach().clamp(0, 1).cpu().clone()))


class _Run:
    """One optimization run at one size: mutable state private to a single ``stylize`` call."""

    def __init__(self, img, opt, evaluate, targets: Targets, weights, optimizer, steps,
                 progress: _Progress, level: int):
        self.img, self.opt, self.evaluate, self.targets = img, opt, evaluate, targets
        self.weights, self.optimizer, self.steps = weights, optimizer, steps
        self.progress, self.level = progress, level
        self.best = _Best()
        self.first: dict | None = None  # terms of the first evaluation in the current step
        self.prev = img.detach().clone()  # the image the current step starts from
        # (image, grad, terms, objective) of the last evaluation; the objective adds range_penalty
        self.cache: tuple[Tensor, Tensor, dict, float] | None = None

    def closure(self) -> Tensor:
        """Return what L-BFGS minimizes, the loss of the current image clamped (:func:`as_saved`) plus
        :func:`range_penalty`; leave its gradient in ``img.grad``. The step's record keeps the loss alone.

        Every L-BFGS ``.step()`` (max_iter=1) starts by evaluating the point that its previous
        line search evaluated and accepted; reusing that evaluation when the image is bit-for-bit
        unchanged saves a forward and backward pass, about half the cost of a step.
        """
        self.opt.zero_grad(set_to_none=True)
        x = self.img.detach()
        if self.cache is not None and torch.equal(self.cache[0], x):
            _, grad, terms, _ = self.cache
            self.img.grad = grad.clone()
        else:
            t, objective = lbfgs_objective(self.img, self.evaluate, self.targets, **self.weights)
            total = float(objective.detach())
            if not math.isfinite(total):
                raise _Diverged(total)
            objective.backward()
            terms = {k: float(v.detach()) for k, v in t.items()}
            self.cache = (x.clone(), self.img.grad.detach().clone(), terms, total)
        if self.first is None:
            self.first = terms
        return x.new_tensor(self.cache[3])

    def _step(self) -> bool:
        """Run one update; return True if the callback asked to stop."""
        self.first = None
        governor = self.progress.governor
        if governor is not None:
            governor.start()
        self.opt.step(self.closure)
        group = self.opt.param_groups[0]
        group["lr"] = group.pop("lr_after_first", group["lr"])  # L-BFGS: see LBFGS_FIRST_CHANGE
        if governor is not None:
            governor.stop(self.progress.done + 1)  # before the callback: only the step itself counts
        if self.optimizer == "adam":
            # Clamping is safe for Adam (it keeps no curvature model); never inside L-BFGS, whose
            # history would then describe a different function.
            with torch.no_grad():
                self.img.clamp_(0, 1)
        p, f = self.progress, self.first
        p.done += 1
        rec = StepRecord(p.done, f["total"], f["content"], f["style"], f["tv"],
                         time.perf_counter() - p.start, self.level)
        p.history.append(rec)
        p.snapshot(p.done, self.img)
        if rec.total < self.best.loss:
            # rec describes the image this step started from (self.prev), so that is the image
            # whose loss is known; the image after the step is judged at the next step.
            self.best = _Best(rec.total, p.done - 1, self.prev)
        self.prev = self.img.detach().clone()
        if p.callback is not None:
            return bool(p.callback(StepInfo(p.done, p.steps, rec, self.img.detach().clamp(0, 1), p.params, p.probe)))
        return False

    def loop(self, measure: bool) -> StylizeResult:
        """Run the steps; with ``measure``, the result carries the loss of its image (else None)."""
        status, message, p = "completed", "", self.progress
        p.snapshot(p.done, self.img)
        try:
            for _ in range(self.steps):
                if self._step():
                    status, message = "stopped", f"stopped after step {p.done} of {p.steps}"
                    break
        except _Diverged as err:
            status = "diverged"
            message = (f"loss became {err.args[0]} at step {p.done + 1}; returned the "
                       f"best image (step {self.best.step}); try a smaller lr or style weight")
        except KeyboardInterrupt:
            status = "interrupted"
            message = f"interrupted at step {p.done + 1}; returned the best image (step {self.best.step})"
        image = self.img.detach() if status in ("completed", "stopped") else self.best.image
        if image is None:
            image = self.prev
        if not message:
            message = f"completed {p.done} steps"
        image = image.clamp(0, 1).detach().clone()
        return StylizeResult(image, [], [], {}, 0.0, status, message, self._loss_of(image) if measure else None)

    def _loss_of(self, image: Tensor) -> dict | None:
        """Return the weighted terms of ``image`` (None if interrupted while measuring them).

        L-BFGS has usually just evaluated this very image in its line search (the losses score
        the clamped pixels, :func:`as_saved`): reuse that. Otherwise one forward pass without gradients.
        """
        if self.cache is not None and torch.equal(as_saved(self.cache[0]), image):
            terms = self.cache[2]
        else:
            try:
                with torch.no_grad():
                    t = loss_terms(image, self.evaluate, self.targets, **self.weights)
            except KeyboardInterrupt:
                return None
            terms = {k: float(v) for k, v in t.items()}
        return {k: terms[k] for k in ("total", "content", "style", "tv")}
