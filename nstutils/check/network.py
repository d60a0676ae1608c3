"""Checkers for the network side: layer names to torchvision indices, receptive fields, a
named-feature extractor.

The extractor is checked on a tiny network in VGG19's layout (the same 37 layers, 4 to 8
channels, random weights) with torchvision's in-place ReLUs, the trap of notebook 01.
"""

from __future__ import annotations

import numbers
from typing import Mapping

import torch
from torch import Tensor, nn

from ..layers import LAYER_INDEX, VGG19_LAYERS, layer_table
from . import reference as ref
from .compare import Case, check_unchanged, compare, snapshot
from .verdict import Fail, call, checker, one_line

TINY_CHANNELS = (4, 6, 8, 8, 8)  # per block; VGG19 has 64, 128, 256, 512, 512


def tiny_vgg(*, inplace: bool, seed: int = 0) -> nn.Sequential:
    """A VGG19-shaped ``nn.Sequential`` (37 layers, torchvision's indexing) with few channels."""
    gen, layers, c_in = torch.Generator().manual_seed(seed), [], 3
    for name in VGG19_LAYERS:
        if name.startswith("conv"):
            c_out = TINY_CHANNELS[int(name[4]) - 1]
            conv = nn.Conv2d(c_in, c_out, 3, padding=1, device="meta")  # no draw from the global RNG
            conv.weight = nn.Parameter(torch.randn(conv.weight.shape, generator=gen) * (2 / (9 * c_in)) ** 0.5)
            conv.bias = nn.Parameter(torch.randn(c_out, generator=gen) * 0.1)
            layers.append(conv)
            c_in = c_out
        else:
            layers.append(nn.ReLU(inplace=inplace) if name.startswith("relu") else nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers).requires_grad_(False)


def _without_pools(name: str) -> int:
    return LAYER_INDEX[name] - sum(1 for n in VGG19_LAYERS[: LAYER_INDEX[name]] if n.startswith("pool"))


def _conv_count(name: str) -> int:
    return sum(1 for n in VGG19_LAYERS[: LAYER_INDEX[name]] if n.startswith("conv"))


PATTERNS = (  # (what the learner's index would be, diagnosis)
    (lambda n: LAYER_INDEX[n] + 1, "one too large everywhere: torchvision counts from 0 (features[0] is conv1_1)"),
    (lambda n: LAYER_INDEX[n] - 1, "one too small everywhere: features[0] is conv1_1"),
    (_without_pools, "forgot the pooling layers: each block ends with a pool that has an index too "
                     "(conv4_2 is 21, not 19)"),
    (lambda n: LAYER_INDEX[n] - (n.startswith("relu")), "a ReLU got its convolution's index: the ReLU "
                                                        "after features[i] is features[i + 1]"),
)


def _as_int(value, name: str):
    """The learner's answer for ``name`` as an int, or Fail saying what it was instead."""
    if isinstance(value, str) and value.strip().isdigit():
        raise Fail(f"returns {value!r}, a string: return a number, int({value!r}) (case: {name!r})")
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise Fail(f"returns {one_line(repr(value), 40)} ({type(value).__name__}), expected an int "
                   f"(case: {name!r})")
    return int(value)


def _answers(fn) -> dict[str, int]:
    return {name: _as_int(call(fn, name, where=f"(case: {name!r})"), name) for name in VGG19_LAYERS}


@checker("layer_index")
def check_layer_index(fn) -> str:
    """``fn(name)``: a Caffe-style name ("conv4_2") -> torchvision's ``features`` index (21)."""
    got = _answers(fn)
    wrong = [n for n in VGG19_LAYERS if got[n] != LAYER_INDEX[n]]
    if not wrong:
        return f"correct for all {len(VGG19_LAYERS)} layers (conv1_1 -> 0 ... pool5 -> 36)"
    examples = ", ".join(f"{n} -> {got[n]} (expected {LAYER_INDEX[n]})" for n in wrong[:3])
    for index, diagnosis in PATTERNS:
        if all(got[n] == index(n) for n in VGG19_LAYERS):
            raise Fail(f"{diagnosis}: {examples}")
    convs = [n for n in wrong if n.startswith("conv")]
    if convs and all(got[n] == _conv_count(n) for n in convs):
        raise Fail(f"counted only the convolutions: every conv is followed by a ReLU and every block "
                   f"ends with a pool, and they have indices too: {examples}")
    raise Fail(f"wrong for {len(wrong)} of {len(VGG19_LAYERS)} layers: {examples}")


def fields(start: int = 1, conv: int = 2, pool: int = 1, doubles: bool = True,
           double_first: bool = False) -> dict[str, int]:
    """Receptive fields in pixels of every VGG19 layer, by the rule r += (k - 1) * j, j *= 2 at
    each pool; the arguments make the rule's typical mistakes (the defaults give the right one).

    ``conv``/``pool``: what a 3x3 conv / 2x2 pool adds, in units of j; ``doubles``: whether a
    pool doubles j; ``double_first``: whether j doubles before the pool adds its share.
    """
    out, r, j = {}, start, 1
    for name in VGG19_LAYERS:
        if name.startswith("conv"):
            r += conv * j
        elif name.startswith("pool"):
            j2 = j * 2 if doubles else j
            r += pool * (j2 if double_first else j)
            j = j2
        out[name] = r
    return out


RF = {row.name: row.receptive_field for row in layer_table()}
RF_PATTERNS = (
    (fields(start=0), "one too small everywhere: a pixel sees itself, so start at r = 1 (conv1_1 sees 3 px)"),
    (fields(start=2), "one too large everywhere: start at r = 1, a single pixel"),
    (fields(doubles=False), "forgot that each pool doubles j, the distance in input pixels between "
                            "neighbouring positions: after pool1 a 3x3 conv adds 2 * 2 px, after pool2 2 * 4 px"),
    (fields(doubles=False, pool=0), "forgot the pools: each 2x2 pool adds j px and then doubles j, the "
                                    "distance in input pixels between neighbouring positions"),
    (fields(pool=0), "a 2x2 pool widens the field too: r += (2 - 1) * j, then j doubles"),
    (fields(double_first=True), "doubled j before the pool added its share: first r += j, then j *= 2"),
    (fields(conv=3, pool=2), "added k * j instead of (k - 1) * j: a 3x3 conv adds 2 * j px, a 2x2 pool j px"),
    (fields(conv=3), "a 3x3 conv adds (3 - 1) * j = 2 * j px, not 3 * j"),
)


@checker("receptive_field")
def check_receptive_field(fn) -> str:
    """``fn(name)``: a layer name ("relu3_1") -> the side in input pixels of what one of its
    positions sees (24), for all 37 layers: r += (k - 1) * j per layer, j doubling at each pool."""
    got = _answers(fn)
    wrong = [n for n in VGG19_LAYERS if got[n] != RF[n]]
    if not wrong:
        return (f"correct for all {len(VGG19_LAYERS)} layers (conv1_1 sees {RF['conv1_1']} px, relu3_1 "
                f"{RF['relu3_1']}, relu5_1 {RF['relu5_1']})")
    examples = ", ".join(f"{n} -> {got[n]} (expected {RF[n]})" for n in wrong[:3])
    for table, diagnosis in RF_PATTERNS:
        if all(got[n] == table[n] for n in VGG19_LAYERS):
            raise Fail(f"{diagnosis}: {examples}")
    before = dict(zip(VGG19_LAYERS, [1, *(RF[n] for n in VGG19_LAYERS[:-1])]))
    if all(got[n] == before[n] for n in VGG19_LAYERS):
        raise Fail(f"one layer late: you returned r before adding the layer itself; update r "
                   f"first, then check the name: {examples}")
    if all(n.startswith("relu") for n in wrong):
        raise Fail(f"a ReLU acts on each position alone, so it sees what its convolution sees: {examples}")
    raise Fail(f"wrong for {len(wrong)} of {len(VGG19_LAYERS)} layers: {examples}")


def _all_outputs(x: Tensor, layers) -> dict[str, Tensor]:
    """Every layer's output up to one past the deepest of ``layers`` (to name off-by-one mistakes)."""
    last = min(max(LAYER_INDEX[n] for n in layers) + 1, len(VGG19_LAYERS) - 1)
    return ref.extract(tiny_vgg(inplace=False), x, VGG19_LAYERS[: last + 1])


def _which_layer(value: Tensor, outputs: Mapping[str, Tensor]) -> str | None:
    return next((n for n, o in outputs.items() if o.shape == value.shape and o.dtype == value.dtype
                 and o.device == value.device and torch.allclose(o, value)), None)


def _check_feature(name: str, got, outputs: Mapping[str, Tensor], case: Case) -> None:
    where, x = case.where(), case.args[0]
    if not isinstance(got, Tensor):
        raise Fail(f"features[{name!r}] is a {type(got).__name__}, not a tensor {where}")
    got = got.detach()
    if got.shape == x.shape and torch.equal(got, x):
        raise Fail(f"features[{name!r}] is the input itself, one layer early: keep x after running "
                   f"features[i], not before {where}")
    same = _which_layer(got, outputs)
    if same is None or same == name:
        compare(got, outputs[name], case, what=f"features[{name!r}]")
        return
    i, j = LAYER_INDEX[name], LAYER_INDEX[same]
    if j == i + 1 and name.startswith("conv"):
        raise Fail(f"features[{name!r}] holds {same}'s values: the in-place ReLU after it overwrote it. "
                   "Run ReLUs out of place (torch.relu(x), or nn.ReLU(inplace=False)) or keep x.clone() "
                   f"{where}")
    early = {i - 1: "one layer early: keep x after running features[i], not before",
             i + 1: "one layer late: keep x right after features[i]"}
    raise Fail(f"features[{name!r}] is the output of {same} (features[{j}]): "
               f"{early.get(j, 'check your name -> index mapping')} {where}")


@checker("features")
def check_features(fn) -> str:
    """``fn(net, x, layers)``: run x through ``net`` (VGG19 layout), return {name: output}."""
    gen = torch.Generator().manual_seed(3)
    # Sides of at least 32 px: a loop over the whole network passes five poolings.
    cases = [Case("conv1_1 and relu1_1 both, batch 1", (torch.randn(1, 3, 32, 40, generator=gen),
                                                         ("conv1_1", "relu1_1", "conv2_1"))),
             Case("layers out of order, batch 2, non-square", (torch.randn(2, 3, 48, 32, generator=gen),
                                                               ("relu2_2", "pool1", "conv3_1")))]
    for case in cases:
        x, layers = case.args
        where, before = case.where(), snapshot((x,))
        net = tiny_vgg(inplace=True)
        got = call(fn, net, x, layers, where=where)
        check_unchanged(before, (x,), ("x",), where)
        if any(isinstance(m, nn.ReLU) and not m.inplace for m in net):
            raise Fail(f"changed the network it was given (its ReLUs are no longer in place): leave "
                       f"the caller's network as it is and apply torch.relu(x) yourself instead {where}")
        _check_keys(got, layers, where)
        outputs = _all_outputs(x, layers)
        for name in layers:
            _check_feature(name, got[name], outputs, case)
    x, layers = cases[0].args
    got = call(fn, tiny_vgg(inplace=True), x.clone().requires_grad_(True), layers, where=cases[0].where())
    _check_keys(got, layers, cases[0].where())
    if any(not isinstance(t, Tensor) or t.grad_fn is None for t in got.values()):
        raise Fail(f"the features have no grad_fn: run the network without torch.no_grad() and "
                   f".detach(), so that gradients can reach the image {cases[0].where()}")
    return (f"correct on {len(cases)} cases ({'; '.join(c.label for c in cases)}), with in-place ReLUs "
            "in the network")


def _check_keys(got, layers, where: str) -> None:
    if not isinstance(got, Mapping):
        raise Fail(f"returns a {type(got).__name__}: return a dict {{layer name: tensor}} {where}")
    if any(not isinstance(k, str) for k in got):
        raise Fail(f"the keys must be layer names like 'conv1_1', got {list(got)[:4]}: "
                   f"use nu.layer_from_index(i) {where}")
    missing = [n for n in layers if n not in got]
    if missing:
        raise Fail(f"no {missing[0]!r} in the returned dict (its keys: {', '.join(got) or 'none'}) {where}")
    extra = [n for n in got if n not in layers]
    if extra:
        raise Fail(f"also returned {', '.join(extra)}: return only the layers asked for {where}")
