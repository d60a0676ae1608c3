"""Checker for relative layer weights, w_l' = w_l / (sum_k w_k * mean(T_l^2)) (notebook 02)."""

from __future__ import annotations

import numbers
from typing import Mapping

import torch
from torch import Tensor

from ..losses import gram, relative_weights
from .compare import Case, expect
from .verdict import Fail, call, checker


def _cases() -> list[Case]:
    gen = torch.Generator().manual_seed(8)
    grams = {"relu1_1": gram(torch.rand(1, 3, 4, 4, generator=gen)),
             "relu2_1": gram(10 * torch.rand(1, 5, 2, 3, generator=gen)),
             "relu3_1": gram(-2 * torch.rand(1, 2, 3, 3, generator=gen))}
    return [Case("three layers, weights 1, 2 and 0.5", (grams, {"relu1_1": 1.0, "relu2_1": 2.0, "relu3_1": 0.5})),
            Case("weights=None, meaning equal weights", (grams, None)),
            Case("one layer, weight 3", ({"relu4_1": grams["relu2_1"]}, {"relu4_1": 3.0}))]


def _as_tensor(got, layers, where: str) -> Tensor:
    """The learner's {layer: weight} as a float64 tensor in ``layers``' order."""
    if not isinstance(got, Mapping):
        raise Fail(f"returns {type(got).__name__}: return a dict {{layer: weight}} {where}")
    missing = [n for n in layers if n not in got]
    if missing:
        raise Fail(f"no weight for {missing[0]!r} in the returned dict (its keys: {', '.join(map(str, got))}) {where}")
    values = []
    for n in layers:
        v = got[n]
        if isinstance(v, Tensor) and v.numel() == 1 and v.is_floating_point():
            v = float(v.detach())
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise Fail(f"the weight of {n!r} is {type(v).__name__}, expected a number {where}")
        values.append(float(v))
    return torch.tensor(values, dtype=torch.float64)


@checker("relative_weights")
def check_relative_weights(fn) -> str:
    """``fn(targets, weights)``: {layer: target}, {layer: w} or None -> {layer: w / (sum(w) mean(T^2))}."""
    for case in _cases():
        targets, weights = case.args
        layers = list(targets)
        got = call(fn, {n: t.clone() for n, t in targets.items()}, None if weights is None else dict(weights),
                   where=case.where(), hints={TypeError: "weights=None means equal weights, 1 for every layer",
                          AttributeError: "weights=None means equal weights, 1 for every layer: "
                                          "test `if weights is None` first"})
        w = torch.tensor([1.0 if weights is None else weights[n] for n in layers], dtype=torch.float64)
        ms = torch.tensor([float(targets[n].pow(2).mean()) for n in layers], dtype=torch.float64)
        numel = torch.tensor([targets[n].numel() for n in layers], dtype=torch.float64)
        mean = torch.tensor([float(targets[n].mean()) for n in layers], dtype=torch.float64)
        variants = [("did not divide by the sum of the weights", w / ms),
                    ("ignored the weights you were given", 1 / (len(layers) * ms)),
                    ("divided by the sum of squares: divide by their mean, T.pow(2).mean()",
                     w / (w.sum() * ms * numel)),
                    ("divided by the square of the mean: use the mean of the squares, T.pow(2).mean()",
                     w / (w.sum() * mean ** 2)),
                    ("divided by the root mean square: use the mean square itself", w / (w.sum() * ms.sqrt())),
                    ("multiplied by the mean square: divide by it", w * ms / w.sum())]
        want = torch.tensor([relative_weights(targets, weights)[n] for n in layers], dtype=torch.float64)
        expect(_as_tensor(got, layers, case.where()), want, case, variants, rtol=1e-5, atol=1e-12)
    return f"correct on {len(_cases())} cases ({'; '.join(c.label for c in _cases())})"
