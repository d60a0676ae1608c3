"""Generic diagnosis: compare a learner's result with the reference and name the difference.

In order: not a tensor, dtype, shape, NaN/inf, then values: equal, one of the checker's known
mistakes ("variants"), transposed, or a constant multiple of the reference. Multiples are
collected over all cases and then matched against named factors (H*W, C, 2, 255, ...) by
:func:`explain_factors`, so "30 times too large" becomes "did you forget to divide by H*W?".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .verdict import Fail, call


@dataclass(frozen=True)
class Case:
    """One set of inputs: a label for people ("batch 2, non-square") and named sizes for factors."""

    label: str
    args: tuple
    sizes: Mapping[str, float] = field(default_factory=dict)

    def where(self) -> str:
        shapes = [tuple(a.shape) for a in self.args if isinstance(a, (Tensor, np.ndarray))]
        shape = "" if not shapes or len(set(shapes)) > 1 else f", input{'s' * (len(shapes) > 1)} {shapes[0]}"
        return f"(case: {self.label}{shape})"


@dataclass(frozen=True)
class Factor:
    """A size that a result can be off by, with the likely cause when it is too large or too small."""

    value: Callable[[Mapping[str, float]], float]
    too_large: str
    too_small: str
    name: str = ""  # shown as "30 times too large (30 = H*W)" when the number is not a constant


COMMON_FACTORS = (
    Factor(lambda s: 2.0, "did you multiply by 2, or add a term twice?", "did you multiply by 1/2?"),
    Factor(lambda s: 4.0, "did you multiply by 4?", "did you divide by 4 (as in Gatys et al.)? "
           "This course leaves the 1/4 out"),
    Factor(lambda s: 255.0, "did you forget to divide by 255, or multiply by it twice?",
           "did you divide by 255 twice, or forget to multiply by 255?"),
)


def article(word: str) -> str:
    """'a tensor', 'an ndarray'."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _close(got: Tensor, want: Tensor, rtol: float, atol: float) -> bool:
    if got.shape != want.shape:
        return False
    g, w = got.detach().double(), want.detach().double()
    scale = max(1.0, float(w.abs().max())) if w.numel() else 1.0
    return bool(torch.allclose(g, w, rtol=rtol, atol=atol * scale, equal_nan=False))


def check_tensor(got, want: Tensor, where: str, what: str = "your function") -> Tensor:
    """Fail unless ``got`` is a tensor of ``want``'s dtype; return it detached."""
    if got is None:
        raise Fail(f"{what} returns None: did you forget `return`? {where}")
    if not isinstance(got, Tensor):
        if isinstance(got, (int, float)) and want.dim() == 0:
            raise Fail(f"{what} returns a Python number, not a tensor: did you call .item() or float()? "
                       f"Return the tensor itself, so that gradients can flow {where}")
        raise Fail(f"{what} returns {article(type(got).__name__)}, not a torch tensor {where}")
    if got.dtype != want.dtype:
        hint = (" (NumPy computes in float64: make constants with x.new_tensor(...) or .float())"
                if got.dtype == torch.float64 else "")
        raise Fail(f"{what} returns {str(got.dtype)[6:]}, expected {str(want.dtype)[6:]}{hint} {where}")
    if got.device != want.device:
        raise Fail(f"{what} returns a tensor on {got.device}, but the input is on {want.device}: "
                   f"keep results on the input's device {where}")
    return got.detach()


def _shape_hint(got: Tensor, want: Tensor) -> str:
    if want.dim() == 0:
        return "; a loss is one number: reduce with .mean() or .sum()"
    if want.shape[0] == 1 and got.shape == want.shape[1:]:
        return "; the batch dimension is missing: keep it, e.g. with .unsqueeze(0)"
    if got.shape == want.shape[1:]:
        return (f"; one result for a batch of {want.shape[0]}: keep the batch dimension, with sizes "
                "taken from the input (B, C, H, W = x.shape)")
    if sorted(got.shape) == sorted(want.shape):
        return "; the right sizes in the wrong order: a permute or transpose too many or too few?"
    if got.numel() == want.numel():
        return f"; the right number of values: reshape to {tuple(want.shape)}?"
    if got.dim() == want.dim() == 4:
        off = [i for i in range(4) if got.shape[i] != want.shape[i]]
        if len(off) == 1:
            name = ("batch", "channels", "height", "width")[off[0]]
            return (f"; dimension {off[0]} ({name}) has the wrong size: did you index or slice "
                    f"dimension {off[0]} where you meant another?")
    return ""


def compare(got, want: Tensor, case: Case, variants: Sequence[tuple[str, Tensor]] = (), *,
            what: str = "your function", rtol: float = 1e-4, atol: float = 1e-5) -> float:
    """Return 1.0 if ``got`` matches ``want``, or r when got = r * want; else raise Fail.

    ``variants``: (diagnosis, result of that mistake) pairs, tried before the generic messages.
    """
    where = case.where()
    got = check_tensor(got, want, where, what)
    if what != "your function":
        where = f"({what}) {where}"
    known = next((msg for msg, v in variants if _close(got, v, rtol, atol)), None)
    if got.shape != want.shape:
        raise Fail(f"{known or 'wrong shape'}: got {tuple(got.shape)}, expected {tuple(want.shape)}"
                   f"{'' if known else _shape_hint(got, want)} {where}")
    if not bool(torch.isfinite(got).all()) and bool(torch.isfinite(want).all()):
        bad = "NaN" if bool(torch.isnan(got).any()) else "inf"
        raise Fail(f"{what} returns {bad} values (0/0, a root or power of a negative number, "
                   f"or an overflow?) {where}")
    if _close(got, want, rtol, atol):
        return 1.0
    if known:
        raise Fail(f"{known} {where}")
    if got.dim() >= 2 and got.shape[-1] == got.shape[-2] and _close(got, want.transpose(-1, -2), rtol, atol):
        raise Fail(f"transposed: the last two dimensions are swapped {where}")
    if got.dim() == 4 and got.shape[1] == 3 and _close(got, want.flip(1), rtol, atol):
        raise Fail(f"the colour channels are in reverse order (BGR instead of RGB, or the other way "
                   f"round): flip dimension 1 {where}")
    ratio = _ratio(got, want)
    if ratio is not None and _close(got, ratio * want, rtol, atol):
        return ratio
    raise Fail(f"wrong values: {_largest_error(got, want)} {where}")


def _ratio(got: Tensor, want: Tensor) -> float | None:
    g, w = got.double().flatten(), want.double().flatten()
    denom = float((w * w).sum())
    r = float((g * w).sum()) / denom if denom > 0 else None
    return r if r is not None and abs(r) > 1e-12 else None


def _largest_error(got: Tensor, want: Tensor) -> str:
    err = (got.double() - want.double()).abs()
    flat = int(err.flatten().argmax())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), got.shape)) if got.dim() else ()
    return (f"at index {idx} got {float(got.flatten()[flat]):.5g}, expected "
            f"{float(want.flatten()[flat]):.5g}")


def times(r: float) -> str:
    """'30 times too large', '2 times too small', 'negated' or '-2 times ...' for a ratio r."""
    if abs(r + 1) < 1e-4:
        return "the wrong sign (negated)"
    size = abs(r) if abs(r) >= 1 else 1 / abs(r)
    number = f"{round(size)}" if abs(size - round(size)) < 1e-3 * size else f"{size:.3g}"
    sign = "" if r > 0 else "the wrong sign and "
    return f"{sign}{number} times too {'large' if abs(r) >= 1 else 'small'}"


def explain_factors(ratios: Sequence[tuple[Case, float]], factors: Sequence[Factor] = ()) -> None:
    """Raise Fail naming the factor when the results were constant multiples of the reference."""
    off = [(c, r) for c, r in ratios if not math.isclose(r, 1.0, rel_tol=1e-4)]
    if not off:
        return
    case, r = off[0]
    for f in (*factors, *COMMON_FACTORS):
        values = [f.value(c.sizes) for c, _ in ratios]
        named = f" ({abs(r) if abs(r) >= 1 else 1 / abs(r):.4g} = {f.name})" if f.name else ""
        if all(math.isclose(r_, v, rel_tol=1e-3) for (_, r_), v in zip(ratios, values)):
            raise Fail(f"{times(r)}{named}: {f.too_large} {case.where()}")
        if all(math.isclose(r_, 1 / v, rel_tol=1e-3) for (_, r_), v in zip(ratios, values)):
            raise Fail(f"{times(r)}{named}: {f.too_small} {case.where()}")
    if all(math.isclose(r_, r, rel_tol=1e-3) for _, r_ in ratios):
        raise Fail(f"{times(r)}, by the same factor {r:.4g} on every case: a constant factor too many "
                   f"or too few {case.where()}")
    listed = ", ".join(f"{r_:.3g} ({c.label})" for c, r_ in off[:3])
    raise Fail(f"off by a factor that changes with the input size: {listed}; check what you "
               "divide (or forget to divide) by")


def expect(got, want: Tensor, case: Case, variants: Sequence[tuple[str, Tensor]] = (),
           factors: Sequence[Factor] = (), **tolerances) -> None:
    """:func:`compare` on one case; a constant multiple fails too, named if it is a known factor."""
    explain_factors([(case, compare(got, want, case, variants, **tolerances))], factors)


def snapshot(args: Sequence) -> list:
    """Copies of the tensors in ``args`` (tensors, or dicts of tensors) to detect in-place edits."""
    def copy(a):
        if isinstance(a, (Tensor, np.ndarray)):
            return a.detach().clone() if isinstance(a, Tensor) else a.copy()
        if isinstance(a, Mapping):
            return {k: copy(v) for k, v in a.items()}
        return a
    return [copy(a) for a in args]


def _same(old, new) -> bool:
    if isinstance(old, Tensor):
        return isinstance(new, Tensor) and old.shape == new.shape and torch.equal(old, new.detach())
    if isinstance(old, np.ndarray):
        return isinstance(new, np.ndarray) and old.shape == new.shape and np.array_equal(old, new)
    if isinstance(old, Mapping):
        return isinstance(new, Mapping) and set(old) == set(new) and all(_same(old[k], new[k]) for k in old)
    return True  # numbers and strings cannot change in place


def check_unchanged(before: Sequence, after: Sequence, names: Sequence[str], where: str) -> None:
    """Fail if an input changed during the call (an in-place edit), naming it."""
    for old, new, name in zip(before, after, names):
        if not _same(old, new):
            raise Fail(f"changed its input {name} in place: use out-of-place operations "
                       f"(y = x * 2, not x *= 2, x.mul_(2) or x[...] = ...) {where}")


def check_gradient(fn, args: Sequence, grad_of: Sequence[int], reference: Callable, where: str,
                   what: str = "your function") -> None:
    """Fail if the result has no grad_fn or its gradient differs from the reference's.

    ``grad_of``: positions in ``args`` of float tensors to differentiate with respect to.
    """
    def prepared():
        return [a.detach().clone().requires_grad_(i in grad_of) if isinstance(a, Tensor) else a
                for i, a in enumerate(args)]
    mine, ref = prepared(), prepared()
    out = call(fn, *mine, where=where)
    if not isinstance(out, Tensor) or out.grad_fn is None:
        raise Fail(f"not differentiable: the result has no grad_fn, so no gradient reaches the input "
                   "(.detach(), .item(), .numpy(), torch.no_grad() or a new torch.tensor(...) "
                   f"on the way?) {where}")
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    call(lambda: (out * weights).sum().backward(), where=where)
    (reference(*ref) * weights).sum().backward()
    for i in grad_of:
        g = mine[i].grad
        if g is None or not _close(g, ref[i].grad, 1e-3, 1e-5):
            raise Fail(f"the values are right but the gradient is not: is part of it computed with "
                       f".data, .detach() or outside autograd? {where}")


def check_device(fn, args: Sequence, where_label: str) -> None:
    """Run ``fn`` on copies of ``args`` on the 'meta' device: a tensor made on the CPU shows up.

    Only shapes travel there; an operation the meta device lacks proves nothing and is ignored.
    """
    meta = [a.to("meta") if isinstance(a, Tensor) else a for a in args]
    try:
        out = fn(*meta)
    except NotImplementedError:
        return
    except Exception as err:  # noqa: BLE001 - only device errors are diagnosed here
        if "device" in str(err):
            raise Fail(ON_CPU_ONLY + f" ({where_label})") from None
        return
    if isinstance(out, Tensor) and out.device.type != "meta":
        raise Fail(ON_CPU_ONLY + f" ({where_label})")


ON_CPU_ONLY = ("works only on the CPU: a tensor you create stays on the CPU when the input is on "
               "another device (the checker used the 'meta' device as a stand-in for a GPU); create "
               "it on the input's device, x.new_tensor([...]) or torch.tensor(..., device=x.device)")
