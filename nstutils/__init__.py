"""nstutils: the helper package of the nst-course neural style transfer course.

Images are (1, 3, H, W) float32 RGB tensors in [0, 1]; features are dicts keyed by Caffe-style
layer names (``relu4_2``); preprocessing happens only inside :class:`VGGFeatures`.
"""

import sys as _sys

if _sys.argv[:1] == ["-m"]:  # `python -m nstutils`: Ctrl-C or kill while torch loads gives one line
    from .interrupts import install as _install

    _install()

from .color import COLOR_MODES, luminance_swap, match_color_linear, match_histogram, stylize_luminance_only, stylize_with_color
from .device import choose_device, choose_precision
from .features import VGGFeatures, deprocess, preprocess
from .images import load_image, read_metadata, save_image, to_pil
from .layers import VGG19_LAYERS, keras_name, layer_from_index, layer_table, torchvision_index
from .losses import content_loss, gram, relative_weights, style_loss, tv_loss
from .memory import available_memory, estimate_memory
from .objective import Targets, loss_terms, make_targets
from .optimize import DEFAULTS, StepInfo, StepRecord, StylizeResult, stylize
from .weights import VGG19, load_vgg19

__version__ = "0.1.0"

__all__ = [
    "COLOR_MODES", "luminance_swap", "match_color_linear", "match_histogram", "stylize_luminance_only",
    "stylize_with_color", "DEFAULTS", "VGG19", "VGG19_LAYERS", "StepInfo", "StepRecord", "StylizeResult", "Targets",
    "VGGFeatures", "available_memory", "choose_device", "choose_precision", "content_loss", "deprocess", "estimate_memory", "gram", "keras_name", "layer_from_index",
    "layer_table", "load_image", "load_vgg19", "loss_terms", "make_targets", "preprocess",
    "read_metadata", "relative_weights", "save_image", "stylize", "style_loss", "to_pil",
    "torchvision_index", "tv_loss",
]
