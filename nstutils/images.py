"""Load and save images as ``(1, 3, H, W)`` float32 RGB tensors in [0, 1].

Taught in notebooks/01_images_and_features.ipynb.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin
from torch import Tensor



def _open(src) -> Image.Image:
    if isinstance(src, Image.Image):
        return src
    if isinstance(src, np.ndarray):
        return _from_array(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        try:
            return Image.open(io.BytesIO(bytes(src)))
        except Exception as err:
            raise ValueError(f"bytes are not a readable image ({err})") from None
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        return Image.open(path)
    except Exception as err:
        raise ValueError(f"{path} is not a readable image ({err})") from None


def _from_array(arr: np.ndarray) -> Image.Image:
    """Accept (H, W), (H, W, 3|4) uint8/uint16, or float arrays in [0, 1]."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an array of shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.dtype == np.uint8:
        return Image.fromarray(arr)
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 65535.0)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"unsupported array dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
    return Image.fromarray(np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8))


def _to_rgb(pil: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB, compositing transparency over white."""
    if pil.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: PIL's convert("L") clips instead of scaling, so scale by hand.
        arr = np.asarray(pil, dtype=np.float64)
        peak = 65535.0 if pil.mode != "I" or arr.max() > 255 else 255.0
        pil = Image.fromarray(np.round(np.clip(arr / peak, 0, 1) * 255).astype(np.uint8))
    if pil.mode == "P":
        pil = pil.convert("RGBA")
    if pil.mode in ("RGBA", "LA", "PA"):
        pil = pil.convert("RGBA")
        background = Image.new("RGBA", pil.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(background, pil)
    return pil.convert("RGB")


def _target_size(w: int, h: int, max_side, size) -> tuple[int, int]:
    """Return (W, H) after resizing; aspect ratio kept when only ``max_side`` is given."""
    if size is not None:
        out_h, out_w = (int(size), int(size)) if isinstance(size, int) else map(int, size)
        return out_w, out_h
    if max_side is None:
        return w, h
    scale = int(max_side) / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def load_image(src, *, max_side: int | None = None, size: tuple[int, int] | int | None = None,
               device: str | torch.device = "cpu") -> Tensor:
    """Load an image as a contiguous ``(1, 3, H, W)`` float32 RGB tensor in [0, 1].

    Args:
        src: a path, raw bytes, a PIL image or a numpy array (uint8, uint16 or float in [0, 1]).
        max_side: resize so that the longer side has this many pixels, keeping the aspect ratio.
        size: an explicit ``(H, W)`` (or one int for a square); overrides ``max_side``.
        device: where the tensor lives.
    EXIF orientation is applied; any mode (L, LA, P, RGBA, CMYK, I;16, ...) becomes RGB, with
    transparency composited over white. Resampling is Lanczos (antialiased when shrinking).
    """
    pil = _open(src)
    try:
        pil = ImageOps.exif_transpose(pil)
        pil = _to_rgb(pil)
    except OSError as err:
        raise ValueError(f"image could not be decoded ({err})") from None
    w, h = _target_size(*pil.size, max_side, size)
    if min(w, h) < 1:
        raise ValueError(f"target size {h}x{w} is empty")
    if (w, h) != pil.size:
        pil = pil.resize((w, h), Image.Resampling.LANCZOS)
    arr = np.asarray(pil, dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def to_pil(img: Tensor) -> Image.Image:
    """Convert a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor to an 8-bit RGB PIL image (clamped to [0, 1])."""
    if img.dim() == 4:
        if img.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(img.shape)}")
        img = img[0]
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"expected an image of shape (1, 3, H, W), got {tuple(img.shape)}")
    arr = img.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def image_format(path: str | Path) -> str:
    """Return "PNG" or "JPEG" for ``path``'s suffix; raise ValueError for any other suffix."""
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot save {path.name!r}: use a .png, .jpg or .jpeg suffix")
    return fmt


def save_image(img: Tensor, path: str | Path, *, metadata: dict[str, str] | None = None,
               quality: int = 95) -> Path:
    """Write ``img`` ((1, 3, H, W) in [0, 1], clamped) as PNG or JPEG, chosen by the suffix.

    ``metadata`` (str -> str) is stored as PNG text chunks (ignored for JPEG).
    Returns the path written.
    """
    path = Path(path)
    fmt = image_format(path)
    pil = to_pil(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in (metadata or {}).items():
            info.add_text(str(key), str(value))
        pil.save(path, "PNG", pnginfo=info)
    else:
        pil.save(path, "JPEG", quality=quality)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """Return the PNG text chunks of ``path`` (empty for other formats)."""
    with Image.open(path) as pil:
        return dict(getattr(pil, "text", {}) or {})
