"""Named VGG19 feature maps of an image, with the preprocessing its weights expect.

Taught in notebooks/01_images_and_features.ipynb.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn

from .device import PRECISIONS
from .layers import LAYER_INDEX, VGG19_LAYERS, check_layers, pools_before
from .weights import VGG19
from .winograd import MIN_IN_CHANNELS, WinogradConv2d

# Caffe's BGR channel means of the ImageNet training set, in 0-255 units (VGG's original recipe).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet statistics for RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ("max", "avg")


def preprocess(img: Tensor, kind: str) -> Tensor:
    """Map an RGB image in [0, 1] to what VGG19's weights expect.

    caffe: x' = 255 * x[:, ::-1] - mean_BGR (BGR order, 0-255, mean subtracted, no std);
    imagenet: x' = (x - mean) / std. Args: img (B, 3, H, W). Returns (B, 3, H, W).
    """
    if kind == "caffe":
        mean = img.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        return img.flip(1) * 255.0 - mean
    if kind == "imagenet":
        mean = img.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = img.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (img - mean) / std
    raise ValueError(f"unknown preprocessing {kind!r}; valid: caffe, imagenet")


def deprocess(x: Tensor, kind: str) -> Tensor:
    """Invert :func:`preprocess` exactly (before any clipping). Returns RGB, nominally in [0, 1]."""
    if kind == "caffe":
        mean = x.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        return ((x + mean) / 255.0).flip(1)
    if kind == "imagenet":
        mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return x * std + mean
    raise ValueError(f"unknown preprocessing {kind!r}; valid: caffe, imagenet")


def min_side(layers) -> int:
    """Return the smallest image side (pixels) that reaches every layer in ``layers``."""
    return 2 ** max(pools_before(n) for n in check_layers(layers))


class VGGFeatures(nn.Module):
    """Frozen VGG19 feature extractor returning ``dict[str, Tensor]`` keyed by layer name.

    Args:
        vgg: a :class:`VGG19` from :func:`load_vgg19` (it is copied, never modified).
        layers: if given, the network is cut after the deepest of them (less memory and time);
            calls may then only ask for layers up to that depth. Default: keep all 37.
        pooling: "max" (VGG's own) or "avg" (Gatys et al. report smoother results with average
            pooling; the weights were trained with max pooling, so this is a departure).
    Call: ``extractor(img, layers=(...))`` with img (B, 3, H, W) RGB in [0, 1];
    returns {name: (B, C_l, H_l, W_l)}.
    """

    def __init__(self, vgg: VGG19, *, layers=None, pooling: str = "max"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        depth = len(VGG19_LAYERS) if layers is None else 1 + max(LAYER_INDEX[n] for n in check_layers(layers))
        mods = []
        for name, mod in zip(VGG19_LAYERS[:depth], vgg.features):
            if name.startswith("pool"):
                mod = nn.AvgPool2d(2, 2) if pooling == "avg" else nn.MaxPool2d(2, 2)
            elif name.startswith("relu"):
                mod = nn.ReLU(inplace=False)  # never in place: conv outputs may be features too
            else:
                mod = copy.deepcopy(mod)
            mods.append(mod)
        self.layers = VGG19_LAYERS[:depth]
        self.net = nn.Sequential(*mods).eval().requires_grad_(False)
        self.preprocessing = vgg.preprocessing
        self.weights_id = vgg.weights_id
        self.pooling = pooling
        self.default_layers = self.layers if layers is None else check_layers(layers)
        self.eval().requires_grad_(False)

    def _check(self, img: Tensor, layers: tuple[str, ...]) -> None:
        beyond = [n for n in layers if n not in self.layers]
        if beyond:
            raise ValueError(f"layer {beyond[0]!r} is deeper than this extractor (cut after "
                             f"{self.layers[-1]}); valid: {', '.join(self.layers)}")
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(f"expected an image of shape (B, 3, H, W), got {tuple(img.shape)}")
        side = min(img.shape[-2:])
        too_deep = [n for n in layers if side < min_side((n,))]
        if too_deep:
            ok = [n for n in self.layers if side >= min_side((n,))]
            raise ValueError(f"image {img.shape[-2]}x{img.shape[-1]} is too small for "
                             f"{too_deep[0]!r} (needs a side of at least {min_side(too_deep)} px); "
                             f"valid at this size: {', '.join(ok)}")
        param = next(self.net.parameters())
        if img.device != param.device:
            raise ValueError(f"image is on {img.device} but the extractor is on {param.device}; "
                             "move one with .to(device)")

    def forward(self, img: Tensor, layers=None, *, precision: str = "fp32") -> dict[str, Tensor]:
        """Return {name: (B, C_l, H_l, W_l)} features of ``img`` (B, 3, H, W) in [0, 1].

        precision: "fp32", or "bf16" to run the convolutions in bfloat16 (autocast; about 1.5x
        faster on CPUs with AVX512-BF16 or AMX, and on recent GPUs). The features come back in
        the dtype they were computed in: float32, or bfloat16 under "bf16" (a float32 copy
        would cost memory and time and add no information). The losses compute in float32
        either way; only the Gram products take bfloat16 inputs (see ``losses.gram``).
        Under "bf16" the features are also channels-last in memory (the same values; oneDNN's
        bfloat16 convolutions and max-pooling are faster that way; in float32 it made no difference).
        """
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        layers = self.default_layers if layers is None else check_layers(layers)
        self._check(img, layers)
        wanted, last = set(layers), max(LAYER_INDEX[n] for n in layers)
        x, feats = preprocess(img, self.preprocessing), {}
        if precision == "bf16":
            x = x.contiguous(memory_format=torch.channels_last)  # every layer keeps the format
        with torch.autocast(img.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            for name, mod in zip(self.layers[: last + 1], self.net):
                x = mod(x)
                if name in wanted:
                    feats[name] = x
        return feats

    def winograd(self) -> "VGGFeatures":
        """Return a copy whose 3x3 convolutions compute by Winograd's F(4x4, 3x3) where it pays.

        The same features up to rounding (about 1e-5 of the largest value), about 1.5x faster in
        float32 on CPUs (see :mod:`nstutils.winograd`); the layers with at least MIN_IN_CHANNELS
        (128) input channels, conv2_2 onwards. The copy shares this extractor's weights and adds
        their transforms (4x the memory of those weights). ``stylize(conv="auto")`` uses it for float32 CPU runs.
        """
        fast = copy.copy(self)
        fast._modules = dict(self._modules)  # its own module table: a shallow copy would share it
        fast.net = nn.Sequential(*(WinogradConv2d(m) if isinstance(m, nn.Conv2d) and m.in_channels >= MIN_IN_CHANNELS
                                   else m for m in self.net))
        return fast



def channel_means(vgg: VGG19, images: Sequence[Tensor]) -> dict[str, Tensor]:
    """Mean activation of every ReLU channel over ``images`` and all their positions.

    s_l[c] = (1/N) sum_n mean_p relu_l(x_n)[c, p]: each image counts once, whatever its size.
    Args: vgg; images: (B, 3, H, W) tensors in [0, 1] on vgg's device, each side >= 16 px.
    Returns: {"relu1_1": (64,), ..., "relu5_4": (512,)} float32 on vgg's device.
    """
    if not images:
        raise ValueError("no calibration images given; pass a list of (B, 3, H, W) images")
    ex = VGGFeatures(vgg)
    relus = tuple(n for n in VGG19_LAYERS if n.startswith("relu"))
    sums, count = {}, 0
    with torch.no_grad():
        for img in images:
            feats = ex(img, layers=relus)
            for n in relus:
                sums[n] = sums.get(n, 0) + feats[n].float().mean(dim=(2, 3)).sum(0)  # (C,)
            count += img.shape[0]
    return {n: s / count for n, s in sums.items()}


def normalize_vgg(vgg: VGG19, images: Sequence[Tensor]) -> VGG19:
    """Return a copy of ``vgg`` rescaled as Gatys et al.'s: every ReLU's mean activation is 1.

    Gatys et al. (2015, 2016) used a *normalized* VGG19: each filter is scaled so that its mean
    activation over images and positions is 1 (they used ImageNet validation images; here the
    caller's ``images``). With s_l = :func:`channel_means` (s_0 = 1 for the input):
    W'_l[o, i] = W_l[o, i] * s_{l-1}[i] / s_l[o], b'_l[o] = b_l[o] / s_l[o]. ReLU and pooling commute
    with positive per-channel factors, so for *every* image conv'_l = conv_l / s_l and
    relu'_l = relu_l / s_l, channel by channel: the same features, on another scale per channel.
    A channel silent on all the images (s = 0) keeps its scale (factor 1).
    Taught in notebooks/02_gram_matrices.ipynb.
    """
    means = channel_means(vgg, images)
    out = copy.deepcopy(vgg)
    prev = None  # the input (the preprocessed image) keeps its scale
    with torch.no_grad():
        for name, mod in zip(VGG19_LAYERS, out.features):
            if not name.startswith("conv"):
                continue
            s = means["relu" + name[4:]]
            s = torch.where(s > 0, s, torch.ones_like(s))  # (C_out,)
            mod.weight.div_(s.view(-1, 1, 1, 1))
            if prev is not None:
                mod.weight.mul_(prev.view(1, -1, 1, 1))  # undo the previous layer's scaling
            mod.bias.div_(s)
            prev = s
    out.weights_id = f"{vgg.weights_id}, normalized (mean activation 1 on {len(images)} images)"
    return out
