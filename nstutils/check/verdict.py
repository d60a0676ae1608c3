"""The result of a check, and the guard that turns a learner's error into a one-line diagnosis.

A checker is a function decorated with :func:`checker`: it calls the learner's code only through
:func:`call`, and ends early with ``raise Fail(message)``. Nothing else is caught, so a bug in a
checker still raises, while a learner's exception never escapes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

STATUSES = ("pass", "fail", "not done")
MARKS = {"pass": "✓", "fail": "✗", "not done": "○"}
NOT_DONE = ("not done yet: replace `raise NotImplementedError` with your code (in this function or "
            "one it calls)")

# Substrings of PyTorch's error messages, and what a beginner should do about them.
ERROR_HINTS = (
    ("leaf Variable that requires grad is being used in an in-place operation",
     "edit a tensor that requires grad only inside `with torch.no_grad():`"),
    ("does not require grad and does not have a grad_fn",
     "the loss does not depend on a tensor that requires grad: call x.requires_grad_(True) and "
     "avoid .detach(), .item(), .numpy() and torch.no_grad() on the way to the loss"),
    ("can't optimize a non-leaf Tensor",
     "give the optimizer a leaf tensor: x = x0.detach().clone().requires_grad_(True)"),
    ("backward through the graph a second time",
     "compute the loss anew each time instead of reusing one from before"),
    ("modified by an inplace operation",
     "an in-place operation (x += ..., .clamp_(), ReLU(inplace=True)) changed a tensor that "
     "autograd still needs: use the out-of-place form"),
    ("maximum recursion depth", "a function calls itself: does the closure call opt.step()? "
     "L-BFGS calls the closure, not the other way round"),
    ("is not on the expected device", "create new tensors on the input's device: "
     "x.new_tensor([...]) or torch.tensor(..., device=x.device)"),
    ("Expected all tensors to be on the same device", "create new tensors on the input's device: "
     "x.new_tensor([...]) or torch.tensor(..., device=x.device)"),
    ("Tensors must have same number of dimensions", "torch.cat joins tensors with the same number of "
     "dimensions: x[:, 0] drops the channel dimension, x[:, :1] keeps it"),
    ("view size is not compatible", "use .reshape(...) instead of .view(...)"),
    ("is invalid for input of size", "the sizes you reshape to do not multiply to the tensor's size: "
     "take them from the tensor, B, C, H, W = x.shape, and keep the batch dimension (the check "
     "uses batches of 2 and 3)"),
    ("must match the size of tensor b (3) at non-singleton dimension 3", "a (3,) tensor lines up with the "
     "last dimension, the width: give per-channel constants the shape (1, 3, 1, 1) with .view(1, 3, 1, 1)"),
    ("must match the size of tensor", "the shapes do not fit: print them; for a batch of matrices "
     "transpose with .transpose(1, 2), not .T"),
    ("self must be a matrix", "torch.mm takes 2-D matrices; for a batch use torch.bmm or @"),
    ("positional argument", "does your function take the arguments the exercise asks for, in that order?"),
    ("cannot be multiplied", "check the shapes of both factors with print(t.shape)"),
    ("Expected size for first two dimensions of batch2", "torch.bmm multiplies (B, n, m) by (B, m, p)"),
)


@dataclass(frozen=True)
class Verdict:
    """What a checker found: ``status`` is "pass", "fail" or "not done"; ``message`` one line.

    ``str(verdict)`` is the line a notebook prints, e.g. "✓ gram: correct on 4 cases (...)".
    """

    name: str
    status: str
    message: str

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; valid: {', '.join(STATUSES)}")

    @property
    def ok(self) -> bool:
        """True when the learner's function passed."""
        return self.status == "pass"

    def __str__(self) -> str:
        return f"{MARKS[self.status]} {self.name}: {self.message}"

    def pick(self, mine, fallback):
        """Return ``mine`` if it passed, else ``fallback`` (skipping an exercise is allowed)."""
        return mine if self.ok else fallback


class Fail(Exception):
    """Raised inside a checker to end it with a diagnosis; :func:`checker` turns it into a Verdict."""

    def __init__(self, message: str, status: str = "fail"):
        super().__init__(message)
        self.message, self.status = message, status


def checker(name: str):
    """Decorate ``body(fn, ...) -> pass message`` into ``check(fn, ...) -> Verdict`` named ``name``."""

    def wrap(body: Callable[..., str]) -> Callable[..., Verdict]:
        @functools.wraps(body)
        def run(fn, *args, **kwargs) -> Verdict:
            if not callable(fn):
                return Verdict(name, "fail", f"expected your function, got a {type(fn).__name__}: "
                                             "pass the function itself, without calling it")
            try:
                return Verdict(name, "pass", one_line(body(fn, *args, **kwargs)))
            except Fail as stop:
                return Verdict(name, stop.status, one_line(stop.message))

        return run

    return wrap


def one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line (a learner's repr may span several), at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(err: BaseException, generic: bool = True) -> str:
    """One line for an exception raised by the learner's code: its type, message and a hint.

    ``generic``: add the first of :data:`ERROR_HINTS` that matches (a checker with a hint of its
    own for this error passes False).
    """
    text = one_line(str(err), 140) or "(no message)"
    line = f"raised {type(err).__name__}: {text}"
    if not generic:
        return line
    for needle, hint in ERROR_HINTS:
        if needle in str(err):
            return f"{line} ({hint})"
    return line


def call(fn, *args, where: str = "", hints: dict | None = None, **kwargs):
    """Call the learner's ``fn``; its exception becomes ``Fail`` (NotImplementedError: "not done").

    ``where`` (e.g. "(case: batch 2)") ends the message; ``hints`` maps an exception type, or a
    (type, substring of its message) pair, to advice for this exercise, which then replaces the
    generic hint of :data:`ERROR_HINTS`.
    """
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise Fail(NOT_DONE, "not done") from None
    except Exception as err:  # noqa: BLE001 - a learner's error is a diagnosis, not a crash
        own = next((h for key, h in (hints or {}).items() if _matches(err, key)), None)
        line = describe_error(err) if own is None else f"{describe_error(err, generic=False)} ({own})"
        raise Fail(f"{line} {where}".rstrip()) from None


def _matches(err: BaseException, key) -> bool:
    kind, needle = key if isinstance(key, tuple) else (key, "")
    return isinstance(err, kind) and needle in str(err)
