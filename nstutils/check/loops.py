"""Checkers for optimization: an Adam loop, an L-BFGS closure, a whole stylization, a resumed run.

The loss functions given to the learner's code are instrumented: they record every image they
are called with, so the checker can see when the image left [0, 1] or changed behind the
optimizer's back, not only the final result.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..images import save_image
from . import reference as ref
from .compare import Case, check_tensor, expect
from .verdict import Fail, call, checker

ADAM_STEPS, ADAM_LR = 6, 0.1
LBFGS_STEPS = 3


class Recorder:
    """A loss function that remembers the images it was called with (detached copies)."""

    def __init__(self, loss_fn: Callable[[Tensor], Tensor]):
        self.loss_fn, self.seen = loss_fn, []

    def __call__(self, x: Tensor) -> Tensor:
        self.seen.append(x.detach().clone())
        return self.loss_fn(x)


def _problem(seed: int = 0, low: float = 0.0, high: float = 1.0):
    """A start image, and a smooth loss whose minimum lies partly outside [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x0 = low + (high - low) * torch.rand(1, 3, 6, 5, generator=gen)
    target = x0 + 0.8 * torch.randn(x0.shape, generator=gen)

    def loss_fn(x: Tensor) -> Tensor:
        return ((x - target) ** 2).mean() + (x.mean() - 0.5) ** 2
    return x0, loss_fn


def _adam_variant(x0, loss_fn, *, zero_grad=True, lr=ADAM_LR, steps=ADAM_STEPS) -> Tensor:
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        if zero_grad:
            opt.zero_grad()
        loss_fn(x).backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    return x.detach()


@checker("adam_loop")
def check_adam_loop(fn) -> str:
    """``fn(x0, loss_fn, steps, lr)``: Adam on a copy of x0's pixels, clamped after each step."""
    x0, loss_fn = _problem()
    before, rec = x0.clone(), Recorder(loss_fn)
    where = f"(case: steps={ADAM_STEPS}, lr={ADAM_LR}, image {tuple(x0.shape)})"
    hints = {(RuntimeError, "backward through the graph a second time"): "did you write x = x.clamp(0, 1)? "
             "That makes a new tensor, not the one the optimizer holds, and ties it to the last step's "
             "graph: clamp the optimizer's tensor in place, x.clamp_(0, 1), inside with torch.no_grad():"}
    got = check_tensor(call(fn, x0, rec, ADAM_STEPS, ADAM_LR, where=where, hints=hints), x0, where)
    if got.shape != x0.shape:
        raise Fail(f"returns shape {tuple(got.shape)}: return the optimized image, {tuple(x0.shape)} {where}")
    if not torch.equal(x0, before):
        raise Fail("changed x0 in place: optimize a copy, x = x0.detach().clone().requires_grad_(True)")
    if len(rec.seen) != ADAM_STEPS:
        raise Fail(f"called the loss {len(rec.seen)} times for steps={ADAM_STEPS}: one evaluation per "
                   f"step, for _ in range(steps) {where}")
    if not torch.equal(rec.seen[0], x0):
        raise Fail(f"the first step did not start from x0 {where}")
    outside = [k for k, x in enumerate(rec.seen) if x.min() < 0 or x.max() > 1]
    if outside:
        raise Fail(f"the image left [0, 1] during the run (at step {outside[0] + 1}): clamp after every "
                   "opt.step(), with torch.no_grad(): x.clamp_(0, 1), not only at the end")
    if got.min() < 0 or got.max() > 1:
        raise Fail(f"the returned image has pixels outside [0, 1]: clamp after opt.step(), not before it {where}")
    if torch.equal(got, x0):
        raise Fail("the image did not change: give torch.optim.Adam the tensor you compute the loss on "
                   f"(the one with requires_grad) {where}")
    variants = [("forgot opt.zero_grad(): the gradients of all steps add up",
                 _adam_variant(x0, loss_fn, zero_grad=False)),
                ("used Adam's default lr (0.001): pass lr=lr", _adam_variant(x0, loss_fn, lr=1e-3))]
    expect(got, ref.adam_loop(x0, loss_fn, ADAM_STEPS, ADAM_LR), Case(where[7:-1], ()), variants, rtol=1e-4, atol=1e-6)
    return f"correct: {ADAM_STEPS} steps, one loss evaluation each, clamped after every step, x0 untouched"


def _lbfgs(x: Tensor) -> torch.optim.LBFGS:
    return torch.optim.LBFGS([x], lr=1.0, max_iter=1, max_eval=26, line_search_fn="strong_wolfe")


@checker("lbfgs_closure")
def check_lbfgs_closure(fn) -> str:
    """``fn(x, opt, loss_fn) -> closure``: closure() zeroes grads, computes, backpropagates, returns the loss."""
    x0, loss_fn = _problem(seed=1, low=-0.3, high=1.3)  # pixels outside [0, 1]: a clamp would show
    x, rec = x0.clone().requires_grad_(True), Recorder(loss_fn)
    opt = _lbfgs(x)
    closure = call(fn, x, opt, rec, where="(making the closure)")
    if isinstance(closure, Tensor):
        raise Fail("returns a tensor, not a function: define closure() inside and `return closure` "
                   "without calling it")
    if not callable(closure):
        raise Fail(f"returns {'None' if closure is None else type(closure).__name__}: end with `return closure`")
    rec.seen.clear()
    stale = torch.full_like(x, 1000.0)
    x.grad = stale.clone()  # what an earlier evaluation left behind
    loss = call(closure, where="(calling the closure)")
    _check_closure_effects(x, x0, loss, rec, stale, loss_fn)
    y = x0.clone().requires_grad_(True)
    ref_opt = _lbfgs(y)
    ref_closure = ref.make_closure(y, ref_opt, loss_fn)
    for _ in range(LBFGS_STEPS):
        call(opt.step, closure, where="(in opt.step(closure))")
        ref_opt.step(ref_closure)
    if not torch.allclose(x.detach(), y.detach(), rtol=1e-4, atol=1e-6):
        raise Fail(f"after {LBFGS_STEPS} L-BFGS steps with your closure the image differs from the "
                   "reference run: does the closure compute the loss of x itself?")
    return (f"correct: zeroes the gradient, returns the loss, leaves the image alone; "
            f"{LBFGS_STEPS} L-BFGS steps took the loss from {float(loss_fn(x0)):.4g} to "
            f"{float(loss_fn(x.detach())):.4g}")


def _check_closure_effects(x, x0, loss, rec: Recorder, stale: Tensor, loss_fn) -> None:
    if not torch.equal(x.detach(), x0):
        raise Fail("the closure changed the image (a clamp?): never modify x inside an L-BFGS closure, "
                   "its memory would describe moves that did not happen; clamp once at the end")
    if not rec.seen:
        raise Fail("the closure never called loss_fn: compute loss = loss_fn(x) inside it")
    if loss is None:
        raise Fail("the closure returns None: end it with `return loss`, L-BFGS needs the value")
    if not isinstance(loss, (Tensor, float, int)) or (isinstance(loss, Tensor) and loss.numel() != 1):
        raise Fail(f"the closure returns {type(loss).__name__}: return the loss, a one-number tensor")
    xr = x0.clone().requires_grad_(True)
    want = loss_fn(xr)
    want.backward()
    value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
    if not math.isclose(value, float(want.detach()), rel_tol=1e-5, abs_tol=1e-8):
        raise Fail(f"the closure returns {value:.6g} but the loss at x is {float(want.detach()):.6g}: "
                   "return the loss you called backward() on")
    grad = x.grad
    if grad is None or torch.equal(grad, stale):
        raise Fail("x.grad is not set by the closure: call loss.backward() inside it")
    if torch.allclose(grad, stale + xr.grad, rtol=1e-4, atol=1e-6):
        raise Fail("forgot opt.zero_grad(): the old gradient was added to the new one")
    if not torch.allclose(grad, xr.grad, rtol=1e-4, atol=1e-6):
        raise Fail("x.grad after the closure is not the gradient of the loss at x")


@checker("resume_init")
def check_resume_init(fn) -> str:
    """``fn(path, content)``: load a saved PNG as a start image of the content's size and device."""
    gen = torch.Generator().manual_seed(5)
    y, x = torch.meshgrid(torch.linspace(0, 1, 10), torch.linspace(0, 1, 14), indexing="ij")
    saved = torch.stack([y, x, (3 * x * y).sin().abs()])[None]  # smooth: any resampling lands close
    with tempfile.TemporaryDirectory() as tmp:
        path = save_image(saved, Path(tmp) / "result.png")
        cases = [Case("content of the PNG's size, 10x14", (path, torch.rand(1, 3, 10, 14, generator=gen))),
                 Case("content of another size, 12x16", (path, torch.rand(1, 3, 12, 16, generator=gen)))]
        for case in cases:
            _check_resume_case(fn, case, saved)
        meta = torch.empty(1, 3, 10, 14, device="meta")
        got = call(fn, path, meta, where="(case: content on the 'meta' device, a stand-in for a GPU)")
        if isinstance(got, Tensor) and got.device != meta.device:
            raise Fail(f"the image is on {got.device} but the content is on another device: load it with "
                       "device=content.device")
    return f"correct on {len(cases)} sizes and on the content's device"


def _check_resume_case(fn, case: Case, saved: Tensor) -> None:
    path, content = case.args
    got = call(fn, path, content, where=case.where())
    want = ref.resume_init(path, content)
    if isinstance(got, Tensor) and got.shape != want.shape and got.dim() == 4:
        h, w = content.shape[-2:]
        if tuple(got.shape[-2:]) == (w, h):
            raise Fail(f"height and width are swapped: load_image's size is (H, W) = content.shape[-2:] "
                       f"{case.where()}")
        if tuple(got.shape[-2:]) == tuple(saved.shape[-2:]):
            raise Fail(f"kept the PNG's own size: load it at the content's, size=tuple(content.shape[-2:]) "
                       f"{case.where()}")
        raise Fail(f"wrong size: got {tuple(got.shape)}, expected the content's {tuple(content.shape)}: load "
                   f"with size=tuple(content.shape[-2:]) (max_side keeps the PNG's aspect ratio) {case.where()}")
    if isinstance(got, Tensor) and got.shape == content.shape and torch.equal(got, content):
        raise Fail(f"returned the content image, not the saved one: load the file at path {case.where()}")
    if isinstance(got, Tensor) and got.shape == want.shape and got.shape[-2:] != saved.shape[-2:]:
        got = got.detach()  # another resampling than load_image's is fine when it is close
        if got.dtype == want.dtype and (got - want).abs().mean() < 0.03:
            return
    expect(got, want, case, rtol=0, atol=1e-6)
