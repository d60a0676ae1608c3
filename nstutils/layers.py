"""VGG19 layer names and their cross-reference to other numbering schemes.

Every feature in nstutils is keyed by a Caffe-style name (``conv1_1``, ``relu1_1``, ``pool1``,
..., ``pool5``), never by a bare index. This module is the one place that maps those names to
torchvision's ``features.N`` indices, Keras's ``blockB_convC`` names and the string indices that
many tutorials use (``'0', '5', '10', '19', '28'``). Taught in notebooks/01_images_and_features.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

# (number of conv layers) per block of VGG19, configuration "E" of Simonyan & Zisserman (2014).
_BLOCKS = ((1, 64, 2), (2, 128, 2), (3, 256, 4), (4, 512, 4), (5, 512, 4))


def _names() -> tuple[str, ...]:
    names: list[str] = []
    for block, _, convs in _BLOCKS:
        for c in range(1, convs + 1):
            names += [f"conv{block}_{c}", f"relu{block}_{c}"]
        names.append(f"pool{block}")
    return tuple(names)


VGG19_LAYERS: tuple[str, ...] = _names()
"""All 37 layer names in forward order; ``VGG19_LAYERS[i]`` is torchvision's ``features[i]``."""

LAYER_INDEX: dict[str, int] = {name: i for i, name in enumerate(VGG19_LAYERS)}
"""Layer name -> torchvision ``features`` index, e.g. ``LAYER_INDEX["conv4_2"] == 21``."""

CONV_LAYERS: tuple[str, ...] = tuple(n for n in VGG19_LAYERS if n.startswith("conv"))

# The index strings used by several PyTorch courses for the style layers (conv1_1 ... conv5_1)
# and the content layer (conv4_2).
TUTORIAL_STYLE_INDICES: tuple[str, ...] = ("0", "5", "10", "19", "28")
TUTORIAL_CONTENT_INDEX: str = "21"


def torchvision_index(name: str) -> int:
    """Return torchvision's ``vgg19().features`` index of layer ``name`` (``conv4_2`` -> 21)."""
    return LAYER_INDEX[check_layers((name,))[0]]


def layer_from_index(index: int | str) -> str:
    """Return the Caffe-style name of torchvision's ``features[index]`` (``'21'`` -> ``conv4_2``)."""
    i = int(index)
    if not 0 <= i < len(VGG19_LAYERS):
        raise ValueError(f"VGG19 features index {i} out of range; valid: 0..{len(VGG19_LAYERS) - 1}")
    return VGG19_LAYERS[i]


def keras_name(name: str) -> str:
    """Return the Keras ``applications.VGG19`` layer name for ``name``.

    Keras fuses each ReLU into its convolution, so the *output* of Keras's ``block4_conv2`` is our
    ``relu4_2`` while its *weights* are those of ``conv4_2``; both map to ``block4_conv2``.
    """
    name = check_layers((name,))[0]
    kind, rest = name[:4], name[4:]
    block = rest.split("_")[0]
    if kind == "pool":
        return f"block{block}_pool"
    return f"block{block}_conv{rest.split('_')[1]}"


def pools_before(name: str) -> int:
    """Return how many 2x2 poolings an image passes through before reaching layer ``name``."""
    return sum(1 for n in VGG19_LAYERS[: LAYER_INDEX[name] + 1] if n.startswith("pool"))


def check_layers(layers) -> tuple[str, ...]:
    """Return ``layers`` as a tuple, raising ``ValueError`` that lists valid names if one is unknown."""
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    unknown = [n for n in layers if n not in LAYER_INDEX]
    if unknown:
        raise ValueError(f"unknown layer {unknown[0]!r}; valid: {', '.join(VGG19_LAYERS)}")
    if not layers:
        raise ValueError(f"no layers given; valid: {', '.join(VGG19_LAYERS)}")
    return layers


@dataclass(frozen=True)
class LayerInfo:
    """One row of the VGG19 architecture table (see :func:`layer_table`)."""

    name: str
    torchvision: int
    keras: str
    channels: int
    height: int
    width: int
    params: int
    receptive_field: int


def layer_table(height: int = 224, width: int = 224) -> list[LayerInfo]:
    """Describe every VGG19 layer for an input of ``height x width`` pixels.

    Output shape, parameter count (3x3 conv: C_in*C_out*9 + C_out) and receptive field r, which
    grows as r += (k - 1) * j for each layer of kernel k while the stride product j doubles at
    each pool.
    """
    rows, c_in, h, w, rf, jump = [], 3, height, width, 1, 1
    channels = {b: c for b, c, _ in _BLOCKS}
    for name in VGG19_LAYERS:
        params = 0
        if name.startswith("conv"):
            c_out = channels[int(name[4])]
            params, c_in, rf = c_in * c_out * 9 + c_out, c_out, rf + 2 * jump
        elif name.startswith("pool"):
            h, w, rf, jump = h // 2, w // 2, rf + jump, jump * 2
        rows.append(LayerInfo(name, LAYER_INDEX[name], keras_name(name), c_in, h, w, params, rf))
    return rows
