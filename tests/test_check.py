"""nstutils.check: every checker passes the right answer, names typical mistakes, never raises on
a learner's error, and the registry falls back to nstutils' versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nstutils as nu
from nstutils import check
from nstutils.check import reference as ref
from nstutils.check.network import tiny_vgg
from nstutils.features import CAFFE_MEAN_BGR
from nstutils.layers import CONV_LAYERS, LAYER_INDEX, VGG19_LAYERS

MEAN = CAFFE_MEAN_BGR


@pytest.fixture(autouse=True)
def one_thread():
    """The checkers work on tiny tensors, which one thread computes fastest (and on a busy machine,
    by far: threads waiting for each other made this file five times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mean(x):
    return x.new_tensor(MEAN).view(1, 3, 1, 1)


def stub(*args, **kwargs):
    raise NotImplementedError


def assert_verdict(verdict, status, *parts):
    assert verdict.status == status, str(verdict)
    for part in parts:
        assert part in verdict.message, str(verdict)
    assert "\n" not in str(verdict)


# ---------------------------------------------------------------- to_tensor

@pytest.mark.parametrize("fn, expected", [
    (lambda a: torch.from_numpy(a).reshape(1, 3, *a.shape[:2]).float() / 255, "instead of permute"),
    (lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float(), "255 times too large"),
    (lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 255, "batch dimension is missing"),
    (lambda a: torch.from_numpy(a / 255.0).permute(2, 0, 1)[None], "float64"),
    (lambda a: torch.from_numpy(a).permute(2, 1, 0)[None].float() / 255, "swapped height and width"),
    (lambda a: a / 255, "not a torch tensor"),
    (lambda a: torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).float() // 255, "integer division `//`"),
    (lambda a: torch.from_numpy(np.divide(a, 255, out=a, casting="unsafe")).permute(2, 0, 1)[None].float(),
     "changed its input the array in place"),
])
def test_to_tensor_mistakes(fn, expected):
    assert_verdict(check.check_to_tensor(fn), "fail", expected)


# ---------------------------------------------------------------- preprocess and deprocess

def _numpy_mean(img):
    return img.flip(1) * 255 - torch.from_numpy(np.array(MEAN)).view(1, 3, 1, 1)


def _in_place(img):
    img.mul_(255)
    return img.flip(1) - _mean(img)


def _cpu_mean(img):
    return img.flip(1) * 255 - torch.tensor(MEAN).view(1, 3, 1, 1)


@pytest.mark.parametrize("fn, expected", [
    (lambda img: 255 * img - _mean(img), "forgot the BGR flip"),
    (lambda img: 255 * img.flip(1), "forgot to subtract the mean"),
    (lambda img: 255 * img.flip(1) - _mean(img).flip(1), "mean in the wrong order"),
    (lambda img: img.flip(1) - _mean(img), "forgot to scale to 0-255"),
    (lambda img: 255 * img.flip(1) + _mean(img), "added the mean"),
    (lambda img: nu.preprocess(img, "imagenet"), "torchvision's recipe"),
    (lambda img: 255 * img.flip(-1) - _mean(img), "left-right"),
    (lambda img: 255 * img.flip(0) - _mean(img), "flipped the batch"),
    (_in_place, "changed its input img in place"),
    (lambda img: nu.preprocess(img, "caffe").detach(), "not differentiable"),
    (_numpy_mean, "float64"),
    (_cpu_mean, "works only on the CPU"),
    (lambda img: 255 * img[:, [2, 1, 0]] - img.new_tensor(MEAN), "give per-channel constants the shape (1, 3, 1, 1)"),
    (lambda img: 255 * img[:, :, [2, 1, 0]] - _mean(img), "dimension 2 (height) has the wrong size"),
])
def test_preprocess_mistakes(fn, expected):
    assert_verdict(check.check_preprocess(fn), "fail", expected)


@pytest.mark.parametrize("fn, expected", [
    (lambda x: nu.deprocess(x, "caffe").clamp(0, 1), "clamped to [0, 1]"),
    (lambda x: (x + _mean(x)) / 255, "forgot to flip BGR back"),
    (lambda x: ((x - _mean(x)) / 255).flip(1), "subtracted the mean again"),
    (lambda x: (x.flip(1) + _mean(x)) / 255, "flipped to RGB before adding the mean"),
    (lambda x: (x + _mean(x)).flip(1), "forgot to divide by 255"),
    (lambda x: nu.deprocess(x, "imagenet"), "torchvision"),
])
def test_deprocess_mistakes(fn, expected):
    assert_verdict(check.check_deprocess(fn), "fail", expected)


# ---------------------------------------------------------------- layer names

def _without_pools(name):
    return LAYER_INDEX[name] - sum(n.startswith("pool") for n in VGG19_LAYERS[: LAYER_INDEX[name]])


@pytest.mark.parametrize("fn, expected", [
    (lambda n: LAYER_INDEX[n] + 1, "torchvision counts from 0"),
    (_without_pools, "forgot the pooling layers"),
    (lambda n: CONV_LAYERS.index(n) if n in CONV_LAYERS else 0, "counted only the convolutions"),
    (lambda n: LAYER_INDEX[n] - n.startswith("relu"), "a ReLU got its convolution's index"),
    (lambda n: str(LAYER_INDEX[n]), "a string"),
    (lambda n: float(LAYER_INDEX[n]), "expected an int"),
    (lambda n: torch.zeros(40, 40), "... (Tensor), expected an int"),
    (lambda n: {"conv1_1": 0}[n], "raised KeyError: 'relu1_1'"),
    (lambda n: 3 if n == "pool5" else LAYER_INDEX[n], "wrong for 1 of 37 layers: pool5 -> 3 (expected 36)"),
])
def test_layer_index_mistakes(fn, expected):
    assert_verdict(check.check_layer_index(fn), "fail", expected)


def _trap(net, x, layers):
    out = {}
    for name, module in zip(VGG19_LAYERS, net):
        x = module(x)  # torchvision's in-place ReLU overwrites the conv output kept below
        if name in layers:
            out[name] = x
    return out


def _early(net, x, layers):
    out = {}
    for name, module in zip(VGG19_LAYERS, net):
        if name in layers:
            out[name] = x
        x = torch.relu(x) if isinstance(module, torch.nn.ReLU) else module(x)
    return out


def _switch_off_inplace(net, x, layers):
    for m in net:
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False  # right values, but the caller's network is changed
    return ref.extract(net, x, layers)


def _no_grad(net, x, layers):
    with torch.no_grad():
        return ref.extract(net, x, layers)


@pytest.mark.parametrize("fn, expected", [
    (_trap, "the in-place ReLU after it overwrote it"),
    (_early, "one layer early"),
    (_no_grad, "no grad_fn"),
    (lambda net, x, layers: list(ref.extract(net, x, layers).values()), "return a dict"),
    (lambda net, x, layers: {LAYER_INDEX[n]: f for n, f in ref.extract(net, x, layers).items()}, "layer names"),
    (lambda net, x, layers: ref.extract(net, x, layers[:1]), "no 'relu1_1' in the returned dict"),
    (lambda net, x, layers: ref.extract(net, x, (*layers, "pool3")), "also returned pool3"),
    (_switch_off_inplace, "changed the network it was given"),
])
def test_features_mistakes(fn, expected):
    assert_verdict(check.check_features(fn), "fail", expected)


# ---------------------------------------------------------------- Gram

def _flat(f):
    return f.reshape(f.shape[0], f.shape[1], -1)


def _gram_in_place(f):
    b, c, h, w = f.shape
    f /= h * w
    return torch.bmm(_flat(f), _flat(f).transpose(1, 2)) * (h * w)


@pytest.mark.parametrize("fn, expected", [
    (lambda f: torch.bmm(_flat(f), _flat(f).transpose(1, 2)),
     "30 times too large (30 = H*W): did you forget to divide by H*W"),
    (lambda f: torch.bmm(_flat(f), _flat(f).transpose(1, 2)) / f[0].numel(), "did you divide by C*H*W"),
    (lambda f: f.flatten(0, 1).flatten(1) @ f.flatten(0, 1).flatten(1).T / f.shape[2] / f.shape[3],
     "folded the batch into the channels"),
    (lambda f: _flat(f).transpose(1, 2) @ _flat(f) / f.shape[2] / f.shape[3], "F^T F"),
    (lambda f: nu.gram(f)[0], "first image's Gram only"),
    (_gram_in_place, "changed its input feats in place"),
    (lambda f: nu.gram(f).detach(), "not differentiable"),
    (lambda f: nu.gram(f).numpy(), "ndarray, not a torch tensor"),
    (lambda f: nu.gram(f).to("meta"), "returns a tensor on meta, but the input is on cpu"),
    (lambda f: None, "returns None: did you forget `return`?"),
    (lambda f: f.reshape(f.shape[0], -1) @ f, "raised RuntimeError"),
    (lambda f: torch.mm(_flat(f), _flat(f).transpose(1, 2)), "torch.mm takes 2-D matrices"),
    (lambda f: _flat(f) @ _flat(f).transpose(0, 2), "the shapes do not fit"),
    (lambda f: (lambda F: F @ F.T / F.shape[1])(f.view(f.shape[1], -1)), "keep the batch dimension"),
    (lambda f: (lambda F: F @ F.T / F.shape[1])(f.view(f.shape[1], f.shape[2] * f.shape[3])),
     "keep the batch dimension (the check uses batches of 2 and 3)"),
])
def test_gram_mistakes(fn, expected):
    assert_verdict(check.check_gram(fn), "fail", expected)


# ---------------------------------------------------------------- losses

@pytest.mark.parametrize("fn, expected", [
    (lambda f, p: ((f - p) ** 2).sum(), "did you sum instead of taking the mean"),
    (lambda f, p: 0.5 * ((f - p) ** 2).sum(), "Gatys et al.'s 1/2 * sum"),
    (lambda f, p: ((f - p) ** 2).mean().sqrt(), "square root"),
    (lambda f, p: (f - p).abs().mean(), "absolute differences"),
    (lambda f, p: ((f - p) ** 2).mean().item(), "Python number"),
    (lambda f, p: ((f - p) ** 2).mean(dim=(1, 2, 3)), "one loss per image"),
    (lambda f, p: 0.5 * ((f - p) ** 2).mean(), "2 times too small: did you multiply by 1/2?"),
    (lambda f, p: (f.sub_(p) ** 2).mean(), "changed its input feats in place"),
    (lambda f, p: ((f - p) ** 2).mean() + (f - 2).log().sum(), "returns NaN values"),
    (lambda f, p: ((f - p) ** 2).sum() / f[0].numel(), "2 times too large (2 = B): did you average over each image"),
])
def test_content_loss_mistakes(fn, expected):
    assert_verdict(check.check_content_loss(fn), "fail", expected)


def _style(term, weighted=True):
    def loss(feats, targets, weights):
        return sum((weights[n] if weighted else 1.0) * term(nu.gram(feats[n]), targets[n], feats[n]) for n in targets)
    return loss


def _over_feats(feats, targets, weights):
    return sum(weights[n] * ((nu.gram(feats[n]) - targets[n]) ** 2).mean() for n in feats)


def _unnormalized(g, a, f):
    return ((g * f.shape[-1] * f.shape[-2] - a) ** 2).mean()


@pytest.mark.parametrize("fn, expected", [
    (_style(lambda g, a, f: ((g - a) ** 2).mean(), weighted=False), "ignored layer_weights"),
    (lambda *args: _style(lambda g, a, f: ((g - a) ** 2).mean())(*args) / 2, "divided by the number of layers"),
    (_style(lambda g, a, f: ((g - a) ** 2).sum()), "summed the squared Gram differences"),
    (_over_feats, "loop over the layers of target_grams"),
    (_style(_unnormalized), "your Gram is not divided by H*W"),
    (_style(lambda g, a, f: ((g - a) ** 2).mean() / 4), "4 times too small: did you divide by 4"),
    (lambda feats, grams, w: sum(w[n] * ((feats[n] - grams[n]) ** 2).mean() for n in grams),
     "compare Gram with Gram"),
])
def test_style_loss_mistakes(fn, expected):
    assert_verdict(check.check_style_loss(fn), "fail", expected)


def _dx(x):
    return x[..., :, 1:] - x[..., :, :-1]


def _dy(x):
    return x[..., 1:, :] - x[..., :-1, :]


@pytest.mark.parametrize("fn, kinds, expected", [
    (lambda x, kind: (_dx(x) ** 2).mean(), ("squared",), "only horizontal differences"),
    (lambda x, kind: ((x.roll(-1, -1) - x) ** 2).mean() + ((x.roll(-1, -2) - x) ** 2).mean(), ("squared",),
     "torch.roll"),
    (lambda x, kind: (_dx(x) ** 2).sum() + (_dy(x) ** 2).sum(), ("squared",), "summed the differences"),
    (lambda x, kind: nu.tv_loss(x, "squared"), ("squared", "absolute"), "that is the squared kind"),
    (lambda x, kind: (_dx(x)[..., :-1, :] ** 2 + _dy(x)[..., :, :-1] ** 2).mean(), ("power",),
     "forgot the power 1.25"),
    (lambda x, kind: (_dx(x)[..., :-1, :].abs() ** 2.5 + _dy(x)[..., :, :-1].abs() ** 2.5).mean(), ("power",),
     "raised each difference to a power separately"),
    (lambda x, kind: (_dx(x)[..., 1:, :] ** 2 + _dy(x)[..., :, 1:] ** 2).pow(1.25).mean(), ("power",), "wrong side"),
    (lambda x, kind: (_dx(x)[..., :-1, :] ** 2 + _dy(x)[..., :, :-1] ** 2).pow(1.25).sum(), ("power",), "Keras"),
    (lambda x, kind: _dx(x).mean() + _dy(x).mean(), ("absolute",), "forgot the absolute value"),
    (lambda x: nu.tv_loss(x), ("squared",), "lambda img, kind: my_tv(img)"),
    (lambda x, kind: (_dx(x) ** 2 + _dy(x) ** 2).pow(1.25).mean(), ("power",), "crop both to (H-1, W-1)"),
])
def test_tv_loss_mistakes(fn, kinds, expected):
    assert_verdict(check.check_tv_loss(fn, kinds), "fail", expected)


def test_tv_loss_of_one_kind_passes_and_names_the_kinds():
    v = check.check_tv_loss(lambda x, kind: nu.tv_loss(x, "power"), ("power",))
    assert_verdict(v, "pass", "'power'")


def _relative(scale):
    def weights(targets, w):
        w = w or {n: 1.0 for n in targets}
        return {n: w[n] / scale(targets[n], sum(w.values())) for n in targets}
    return weights


@pytest.mark.parametrize("fn, expected", [
    (_relative(lambda t, total: t.pow(2).mean()), "did not divide by the sum of the weights"),
    (_relative(lambda t, total: total * t.pow(2).sum()), "divided by the sum of squares"),
    (_relative(lambda t, total: total * t.mean() ** 2), "square of the mean"),
    (_relative(lambda t, total: total * t.pow(2).mean().sqrt()), "root mean square"),
    (lambda targets, w: {n: w[n] / sum(w.values()) / float(targets[n].pow(2).mean()) for n in targets},
     "weights=None means equal"),
    (lambda targets, w: nu.relative_weights(targets, w).values(), "return a dict"),
    (lambda targets, w: {n: (w[n] if n in (w or {}) else 1) / sum(w.values()) / float(targets[n].pow(2).mean())
                         for n in targets},
     "test `if weights is None` first"),
    (lambda targets, w: {n: str(v) for n, v in nu.relative_weights(targets, w).items()}, "expected a number"),
])
def test_relative_weights_mistakes(fn, expected):
    assert_verdict(check.check_relative_weights(fn), "fail", expected)


def test_relative_weights_may_be_tensors():
    fn = lambda targets, w: {n: torch.tensor(v) for n, v in nu.relative_weights(targets, w).items()}  # noqa: E731
    assert_verdict(check.check_relative_weights(fn), "pass", "weights=None")


# ---------------------------------------------------------------- optimization

def _adam(clamp="after", zero_grad=True, lr=None, extra_steps=0, copy=True):
    def loop(x0, loss_fn, steps, lr_):
        x = x0.detach().clone().requires_grad_(True) if copy else x0.requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr or lr_)
        for _ in range(steps + extra_steps):
            if clamp == "before":
                with torch.no_grad():
                    x.clamp_(0, 1)
            if zero_grad:
                opt.zero_grad()
            loss_fn(x).backward()
            opt.step()
            if clamp == "after":
                with torch.no_grad():
                    x.clamp_(0, 1)
            if clamp == "no_grad_missing":
                x.clamp_(0, 1)
            if clamp == "out_of_place":
                x = x.clamp(0, 1)  # a new tensor, tied to this step's graph
        return x.detach().clamp(0, 1) if clamp == "end" else x.detach()
    return loop


@pytest.mark.parametrize("fn, expected", [
    (_adam(clamp="end"), "left [0, 1] during the run"),
    (_adam(clamp="none"), "left [0, 1] during the run"),
    (_adam(clamp="before"), "clamp after opt.step(), not before it"),
    (_adam(zero_grad=False), "forgot opt.zero_grad()"),
    (_adam(lr=1e-3), "default lr"),
    (_adam(extra_steps=1), "called the loss 7 times for steps=6"),
    (_adam(copy=False), "changed x0 in place"),
    (_adam(clamp="no_grad_missing"), "inside `with torch.no_grad():`"),
    (_adam(clamp="out_of_place"), "did you write x = x.clamp(0, 1)?"),
    (lambda x0, loss_fn, steps, lr: x0.clone(), "called the loss 0 times"),
    (lambda x0, loss_fn, steps, lr: ref.adam_loop(x0, loss_fn, steps, lr)[0], "return the optimized image"),
])
def test_adam_loop_mistakes(fn, expected):
    assert_verdict(check.check_adam_loop(fn), "fail", expected)


def _closure(clamp=False, zero_grad=True, backward=True, ret=True, step_inside=False):
    def make(x, opt, loss_fn):
        def closure():
            if clamp:
                with torch.no_grad():
                    x.clamp_(0, 1)
            if zero_grad:
                opt.zero_grad()
            loss = loss_fn(x)
            if backward:
                loss.backward()
            if step_inside:
                opt.step(closure)
            return loss if ret else None
        return closure
    return make


@pytest.mark.parametrize("fn, expected", [
    (_closure(clamp=True), "the closure changed the image"),
    (_closure(zero_grad=False), "forgot opt.zero_grad()"),
    (_closure(backward=False), "call loss.backward()"),
    (_closure(ret=False), "the closure returns None"),
    (_closure(step_inside=True), "does the closure call opt.step()?"),
    (lambda x, opt, loss_fn: ref.make_closure(x, opt, loss_fn)(), "returns a tensor, not a function"),
    (lambda x, opt, loss_fn: None, "end with `return closure`"),
    (lambda x, opt, loss_fn: ref.make_closure(x, opt, lambda y: loss_fn(y.detach())), "does not require grad"),
])
def test_lbfgs_closure_mistakes(fn, expected):
    assert_verdict(check.check_lbfgs_closure(fn), "fail", expected)


@pytest.mark.parametrize("fn, expected", [
    (lambda path, content: nu.load_image(path), "kept the PNG's own size"),
    (lambda path, content: nu.load_image(path, size=tuple(content.shape[-2:])[::-1]), "height and width are swapped"),
    (lambda path, content: content, "returned the content image"),
    (lambda path, content: 255 * ref.resume_init(path, content), "255 times too large"),
    (lambda path, content: nu.load_image(path, size=tuple(content.shape[-2:])), "load it with device=content.device"),
    (lambda path, content: str(path), "not a torch tensor"),
    (lambda path, content: nu.load_image(path, max_side=max(content.shape[-2:])), "max_side keeps"),
    (lambda path, content: ref.resume_init(path, content).flip(1), "colour channels are in reverse order"),
])
def test_resume_init_mistakes(fn, expected):
    assert_verdict(check.check_resume_init(fn), "fail", expected)


def test_resume_init_accepts_another_resampling():
    def bilinear(path, content):
        img = nu.load_image(path, device=content.device)
        return torch.nn.functional.interpolate(img, size=tuple(content.shape[-2:]), mode="bilinear",
                                               align_corners=False)
    assert_verdict(check.check_resume_init(bilinear), "pass")


# ---------------------------------------------------------------- receptive fields (notebook 05)

def _rf(start=1, conv=2, pool=1, doubles=True, pool_after=False):
    """A learner's loop over the 37 layers, with the knobs of its typical mistakes."""
    def fn(name):
        r, j = start, 1
        for layer in VGG19_LAYERS:
            if layer.startswith("conv"):
                r += conv * j
            elif layer.startswith("pool"):
                if pool_after:
                    j *= 2
                    r += pool * j
                else:
                    r += pool * j
                    j *= 2 if doubles else 1
            if layer == name:
                return r
    return fn


@pytest.mark.parametrize("fn, expected", [
    (_rf(start=0), "start at r = 1"),
    (_rf(doubles=False), "forgot that each pool doubles j"),
    (_rf(doubles=False, pool=0), "forgot the pools"),
    (_rf(pool=0), "a 2x2 pool widens the field too"),
    (_rf(pool_after=True), "doubled j before the pool added its share"),
    (_rf(conv=3), "not 3 * j"),
    (_rf(conv=3, pool=2), "added k * j instead of (k - 1) * j"),
    (lambda n: _rf()(n) + (4 if n.startswith("relu") else 0), "a ReLU acts on each position alone"),
    (lambda n: None if n.startswith("pool") else _rf()(n), "returns None (NoneType), expected an int"),
    (lambda n: 1 if n == "conv1_1" else _rf()(VGG19_LAYERS[VGG19_LAYERS.index(n) - 1]), "one layer late"),
    (lambda n: float(_rf()(n)), "expected an int"),
    (lambda n: {"relu3_1": 24}[n], "raised KeyError: 'conv1_1'"),
])
def test_receptive_field_mistakes(fn, expected):
    assert_verdict(check.check_receptive_field(fn), "fail", expected)


def test_receptive_field_values():
    assert [check.reference.receptive_field(n) for n in ("conv1_1", "relu3_1", "relu4_2", "relu5_1")] == \
        [3, 24, 84, 156]
    assert all(_rf()(n) == check.reference.receptive_field(n) for n in VGG19_LAYERS)


# ---------------------------------------------------------------- colour (notebook 07)

M_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])
M_INV = torch.linalg.inv(M_YIQ.double()).float()


def _yiq(x, m=M_YIQ):
    return torch.einsum("ij,bjhw->bihw", m.to(x), x)


def _swap(x, c):
    """Notebook 07's worked answer."""
    yx, yc = _yiq(x), _yiq(c)
    return _yiq(torch.cat([yx[:, :1], yc[:, 1:]], dim=1), M_INV).clamp(0, 1)


def _swap_in_place(x, c):
    x.clamp_(0.1, 0.9)    # "tidy the input first"
    return _swap(x, c)


@pytest.mark.parametrize("fn, expected", [
    (lambda x, c: _swap(c, x), "took the luminance from c and the colours from x"),
    (lambda x, c: _yiq(torch.cat([_yiq(x)[:, :1], _yiq(c)[:, 1:]], 1), M_INV), "did not clamp"),
    (lambda x, c: _yiq(torch.cat([_yiq(x)[:, :1], _yiq(c)[:, 1:]], 1), M_YIQ).clamp(0, 1),
     "converted back to RGB with M"),
    (lambda x, c: _yiq(torch.cat([_yiq(x)[:, :1], _yiq(c)[:, 1:]], 1), M_YIQ.T).clamp(0, 1), "use M_inv"),
    (lambda x, c: torch.cat([_yiq(x)[:, :1], _yiq(c)[:, 1:]], 1), "returned Y, I, Q"),
    (lambda x, c: _yiq(torch.cat([_yiq(x)[:, :1], torch.zeros_like(c[:, 1:])], 1), M_INV).clamp(0, 1),
     "a grey picture"),
    (lambda x, c: _yiq(torch.cat([_yiq(x)[:, :1], _yiq(c)[:, 1:]], 1).clamp(0, 1), M_INV).clamp(0, 1),
     "clamped in YIQ"),
    (lambda x, c: _yiq(torch.cat([_yiq(c)[:, 1:], _yiq(x)[:, :1]], 1), M_INV).clamp(0, 1), "wrong order"),
    (lambda x, c: _yiq(torch.cat([x.mean(1, keepdim=True), _yiq(c)[:, 1:]], 1), M_INV).clamp(0, 1),
     "the mean of R, G and B"),
    (lambda x, c: _swap(x[:1], c[:1]), "wrong shape"),
    (lambda x, c: torch.cat([_yiq(x)[:, 0], _yiq(c)[:, 1:]], 1), "x[:, :1] keeps it"),
    (lambda x, c: _swap(x, c).detach(), "not differentiable"),
    (_swap_in_place, "changed its input x in place"),
    (lambda x, c: _swap(x, c).double(), "float64"),
])
def test_luminance_swap_mistakes(fn, expected):
    assert_verdict(check.check_luminance_swap(fn), "fail", expected)


def _match(L_s, L_c):
    """Notebook 07's worked answer."""
    mu_s, mu_c = L_s.mean(), L_c.mean()
    sigma_s, sigma_c = L_s.std(correction=0), L_c.std(correction=0)
    return sigma_c / sigma_s * (L_s - mu_s) + mu_c


def _sd(t):
    return t.std(correction=0)


@pytest.mark.parametrize("fn, expected", [
    (lambda s, c: _match(c, s), "matched the wrong way round"),
    (lambda s, c: s - s.mean() + c.mean(), "matched the mean only"),
    (lambda s, c: _sd(s) / _sd(c) * (s - s.mean()) + c.mean(), "the ratio is upside down"),
    (lambda s, c: c.var(correction=0) / s.var(correction=0) * (s - s.mean()) + c.mean(), "used the variances"),
    (lambda s, c: _sd(c) / _sd(s) * s + c.mean(), "without centring it"),
    (lambda s, c: _sd(c) / _sd(s) * (s - s.mean()), "forgot to add the content's mean"),
    (lambda s, c: _sd(c) / _sd(s) * (s - s.mean()) + s.mean(), "added the style's mean back"),
    (lambda s, c: _match(s, c).clamp(0, 1), "clamped to [0, 1]"),
    (lambda s, c: _sd(c) / _sd(s) * (s - s.mean()).detach() + c.mean(), "the gradient is not"),
    (lambda s, c: _match(s.sub_(0.5), c), "changed its input L_s in place"),
    (lambda s, c: 2 * _match(s, c), "a constant times the right values"),
])
def test_match_luminance_mistakes(fn, expected):
    assert_verdict(check.check_match_luminance(fn), "fail", expected)


def test_match_luminance_accepts_the_sample_std_with_a_note():
    verdict = check.check_match_luminance(lambda s, c: c.std() / s.std() * (s - s.mean()) + c.mean())
    assert_verdict(verdict, "pass", "correction=1")
    assert "correction=1" not in check.check_match_luminance(_match).message


# ---------------------------------------------------------------- a whole stylization

def test_stylization_passes_with_nstutils_losses_and_a_gram_of_another_normalization():
    def gram_sum(f):  # no division by H*W: a constant factor per layer, which the weights absorb
        return nu.gram(f) * f.shape[-1] * f.shape[-2]

    def style_sum(feats, targets, weights):
        return sum(weights[n] * ((gram_sum(feats[n]) - targets[n]) ** 2).mean() for n in targets)
    v = check.check_stylization(nu.content_loss, style_sum, nu.tv_loss, gram=gram_sum, optimize=ref.adam_loop)
    assert_verdict(v, "pass", "your losses and your loop", "stayed in [0, 1]")


@pytest.mark.parametrize("losses, options, expected", [
    ((lambda f, p: -nu.content_loss(f, p), nu.style_loss, nu.tv_loss), {},
     "content_loss pushes the image the wrong way"),
    ((nu.content_loss, lambda f, a, w: nu.style_loss(f, a, w).detach(), nu.tv_loss), {}, "grad_fn"),
    ((nu.content_loss, nu.style_loss, lambda x, kind: nu.tv_loss(x, kind) * float("nan")), {},
     "your tv_loss returns nan"),
    ((nu.content_loss, nu.style_loss, lambda x, kind: nu.tv_loss(x, "absolute") + _dx(x).mean()), {},
     "tv_loss pulls the image elsewhere"),
    ((nu.content_loss, nu.style_loss, nu.tv_loss), {"optimize": lambda x0, f, steps, lr: x0.clone()},
     "did not change"),
    ((nu.content_loss, nu.style_loss, nu.tv_loss), {"optimize": lambda x0, f, steps, lr: 2 * x0}, "outside [0, 1]"),
    ((nu.content_loss, stub, nu.tv_loss), {}, "not done yet"),
])
def test_stylization_mistakes(losses, options, expected):
    v = check.check_stylization(*losses, **options)
    assert_verdict(v, "not done" if expected == "not done yet" else "fail", expected)


# ---------------------------------------------------------------- other right answers pass too

def _gram_loop(feats):
    b, c, h, w = feats.shape
    f = feats.reshape(b, c, h * w)
    rows = [[(f[:, i] * f[:, j]).sum(-1) for j in range(c)] for i in range(c)]
    return torch.stack([torch.stack(r, -1) for r in rows], -2) / (h * w)


def _extract_with_clones(net, x, layers):
    out = {}
    for name, module in zip(VGG19_LAYERS, net):
        x = module(x)
        if name in layers:
            out[name] = x.clone()  # a copy survives the in-place ReLU that follows
        if len(out) == len(layers):
            return out


def _adam_with_data(x0, loss_fn, steps, lr):
    x = x0.clone().requires_grad_()
    opt = torch.optim.Adam([x], lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        x.data = x.data.clamp(0, 1)
    return x


def _closure_with_grad_none(x, opt, loss_fn):
    def closure():
        x.grad = None
        loss = loss_fn(x)
        loss.backward(retain_graph=True)
        return loss.item()
    return closure


ALTERNATIVES = [
    ("to_tensor", lambda a: torch.tensor(a).float().div(255).permute(2, 0, 1)[None]),
    ("preprocess", lambda img: img[:, [2, 1, 0]] * 255 - torch.tensor(MEAN, device=img.device).view(1, 3, 1, 1)),
    ("preprocess", lambda img: (img.flip(1) - img.new_tensor(MEAN).view(1, 3, 1, 1) / 255) * 255),
    ("deprocess", lambda x: torch.stack([x[:, 2] + MEAN[2], x[:, 1] + MEAN[1], x[:, 0] + MEAN[0]], 1) / 255),
    ("layer_index", lambda name: VGG19_LAYERS.index(name)),
    ("features", _extract_with_clones),
    ("gram", lambda f: torch.einsum("bchw,bdhw->bcd", f, f) / (f.shape[2] * f.shape[3])),
    ("gram", _gram_loop),
    ("content_loss", torch.nn.functional.mse_loss),
    ("content_loss", lambda f, p: ((f - p) ** 2).sum() / f.numel()),
    ("style_loss", lambda f, a, w: sum(w[n] * torch.nn.functional.mse_loss(nu.gram(f[n]),
                                                                           a[n].expand(len(f[n]), -1, -1))
                                       for n in a)),
    ("tv_loss", lambda x, kind: nu.tv_loss(x, kind) if kind != "squared" else
     torch.diff(x, dim=-1).pow(2).mean() + torch.diff(x, dim=-2).pow(2).mean()),
    ("relative_weights", lambda t, w: {n: (w or {k: 1 for k in t})[n] / (sum((w or {k: 1 for k in t}).values())
                                                                         * t[n].pow(2).mean().item()) for n in t}),
    ("adam_loop", _adam_with_data),
    ("lbfgs_closure", _closure_with_grad_none),
    ("resume_init", lambda path, content: nu.load_image(path, size=content.shape[-2:], device=content.device)),
    ("receptive_field", _rf()),
    ("luminance_swap", _swap),
    ("luminance_swap", lambda x, c: (c + _yiq(x)[:, :1] - _yiq(c)[:, :1]).clamp(0, 1)),
    ("match_luminance", _match),
]


@pytest.mark.parametrize("name, fn", ALTERNATIVES)
def test_other_right_answers_pass(name, fn):
    assert_verdict(check.EXERCISES[name][0](fn), "pass")


# ---------------------------------------------------------------- every checker

RIGHT = {name: fallback for name, (_, fallback) in check.EXERCISES.items()}


@pytest.mark.parametrize("name", list(check.EXERCISES))
def test_every_checker_passes_the_right_answer_and_says_not_done_for_the_stub(name):
    checker = check.EXERCISES[name][0]
    assert_verdict(checker(RIGHT[name]), "pass", "correct")
    assert_verdict(checker(stub), "not done", "not done yet")


def _raises(*args, **kwargs):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize("name", list(check.EXERCISES))
@pytest.mark.parametrize("fn, expected", [
    (_raises, "raised ZeroDivisionError: division by zero"),
    (lambda *args: "hello", "str"),
    (lambda *args: {"a": 1}, "dict"),
    (lambda *args: float("nan"), "float"),
    (42, "expected your function, got a int"),
    (lambda *args: torch.tensor([]), ""),
    (lambda *args: torch.empty(1, 3, 6, 5, device="meta"), ""),
    (lambda *args: (torch.ones(1),), ""),
    (lambda *args: args[0], ""),
])
def test_a_checker_never_raises_on_the_learners_mistakes(name, fn, expected):
    verdict = check.EXERCISES[name][0](fn)
    assert_verdict(verdict, "fail", expected)


def test_checkers_leave_the_global_random_state_alone():
    state = torch.get_rng_state()
    for checker, right in check.EXERCISES.values():
        checker(right)
    check.check_stylization(nu.content_loss, nu.style_loss, nu.tv_loss)
    assert torch.equal(torch.get_rng_state(), state)


def test_stylization_never_raises_on_the_learners_mistakes():
    assert_verdict(check.check_stylization(_raises, nu.style_loss, nu.tv_loss), "fail", "ZeroDivisionError")
    assert_verdict(check.check_stylization(nu.content_loss, nu.style_loss, nu.tv_loss, gram=lambda f: "G"),
                   "fail", "your gram returns a str")


def test_a_bug_in_the_use_of_a_checker_raises():
    with pytest.raises(ValueError, match="unknown TV kind 'bogus'"):
        check.check_tv_loss(nu.tv_loss, ("bogus",))
    with pytest.raises(ValueError, match="unknown exercise 'grams'"):
        check.Exercises().submit("grams", nu.gram)


# ---------------------------------------------------------------- the generic diagnosis

def test_compare_names_transposes_reversed_channels_and_constant_factors():
    from nstutils.check.compare import Case, Factor, compare, explain_factors
    from nstutils.check.verdict import Fail

    want = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    case = Case("square", (want,), {"K": 7})
    for got, expected in ((want.transpose(-1, -2), "transposed"), (want.flip(1), "reverse order"),
                          (want.double(), "float64, expected float32"), (want[0], r"wrong shape: got \(3, 4, 4\)")):
        with pytest.raises(Fail, match=expected):
            compare(got, want, case)
    assert compare(want * 7, want, case) == pytest.approx(7)
    seven = Factor(lambda s: s["K"], "did you multiply by K?", "did you divide by K?", "K")
    with pytest.raises(Fail, match=r"^7 times too small \(7 = K\): did you divide by K\?"):
        explain_factors([(case, 1 / 7)], [seven])
    with pytest.raises(Fail, match="by the same factor 3 on every case"):
        explain_factors([(case, 3.0), (case, 3.0)])
    explain_factors([(case, 1.0)])  # no factor: nothing to say


# ---------------------------------------------------------------- verdicts and skipping

def test_verdict_lines_and_pick():
    ok, bad = check.check_gram(nu.gram), check.check_gram(stub)
    assert str(ok).startswith("✓ gram: correct on 4 cases (batch 2, non-square; 1 channel;")
    assert str(bad) == ("○ gram: not done yet: replace `raise NotImplementedError` with your code (in this "
                        "function or one it calls)")
    mine = lambda f: f  # noqa: E731
    assert ok.pick(mine, nu.gram) is mine and bad.pick(mine, nu.gram) is nu.gram
    with pytest.raises(ValueError, match="unknown status"):
        check.Verdict("gram", "passed", "")


def test_printing_forms_print_one_line(capsys):
    check.gram(lambda f: torch.bmm(_flat(f), _flat(f).transpose(1, 2)))
    check.tv_loss(nu.tv_loss, kinds=("squared",))
    check.stylization(nu.content_loss, nu.style_loss, nu.tv_loss)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("✗ gram: 30 times too large (30 = H*W): did you forget to divide by H*W, the number of "
                        "positions? (case: batch 2, non-square, input (2, 8, 6, 5))")
    assert lines[1].startswith("✓ tv_loss: correct for 'squared'") and lines[2].startswith("✓ stylization:")
    assert len(lines) == 3


def test_exercises_use_the_learners_function_only_when_it_passed(capsys):
    mine = check.Exercises()
    assert mine.gram is nu.gram and mine.use("content_loss") is nu.content_loss  # skipped: nstutils'
    right = lambda f: nu.gram(f)  # noqa: E731
    mine.submit("gram", right)
    assert mine.gram is right
    mine.submit("gram", lambda f: nu.gram(f) * 2)  # a later, wrong attempt replaces it
    assert mine.gram is nu.gram
    mine.submit("content_loss", stub)
    assert mine.content_loss is nu.content_loss
    mine.submit("tv_loss", lambda x, kind: nu.tv_loss(x, "power"), kinds=("power",))
    assert mine.tv_loss is not nu.tv_loss
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✓ gram: correct")
    assert out[1].startswith("✗ gram: 2 times too large") and out[1].endswith("-> later cells use nstutils' version")
    assert out[2].startswith("○ content_loss: not done yet")
    assert repr(mine) == ("Exercises(gram: nstutils (fail); content_loss: nstutils (not done); "
                          "tv_loss: yours (pass))")
    with pytest.raises(AttributeError, match="no exercise 'grams'; valid: to_tensor"):
        mine.grams  # noqa: B018


def test_fallbacks_work_in_the_learners_signatures(tmp_path):
    img = torch.rand(1, 3, 8, 6, generator=torch.Generator().manual_seed(0))
    use = check.Exercises().use
    torch.testing.assert_close(use("deprocess")(use("preprocess")(img)), img)
    assert use("layer_index")("conv4_2") == 21
    arr = np.asarray(nu.to_pil(img))
    torch.testing.assert_close(use("to_tensor")(arr), (img * 255).round() / 255)
    net = tiny_vgg(inplace=True)
    assert list(use("features")(net, img, "relu1_1")) == ["relu1_1"]
    path = nu.save_image(img, tmp_path / "x.png")
    assert use("resume_init")(path, torch.zeros(1, 3, 4, 3)).shape == (1, 3, 4, 3)
