"""Load and save images as ``(1, 3, H, W)`` float32 RGB tensors in [0, 1].

Taught in notebooks/01_images_and_features.ipynb.
"""

from __future__ import annotations

import io
import os
import tempfile
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
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds; all mean "unreadable"
            raise ValueError(f"bytes are not a readable image ({err})") from None
    path = Path(src)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        return Image.open(path)
    except Exception as err:  # noqa: BLE001 - includes PIL's DecompressionBombError
        raise ValueError(f"{path} is not a readable image ({err})") from None


def _name(src) -> str:
    """How an error message names ``src``: its path, or what kind of object it is."""
    return str(src) if isinstance(src, (str, os.PathLike)) else f"the {type(src).__name__} image"


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
    elif not np.isfinite(arr).all():
        raise ValueError("the array holds NaN or infinite values; an image needs finite values in [0, 1]")
    elif arr.size and arr.max() > 1.5:
        raise ValueError(f"float array with values up to {arr.max():.4g}; images are floats in [0, 1] "
                         "(divide by 255) or uint8 arrays")
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
        out_h, out_w = (size, size) if isinstance(size, int) else tuple(size)
        for name, v in (("height", out_h), ("width", out_w)):
            _check_side(v, f"size {name}")
        return int(out_w), int(out_h)
    if max_side is None:
        return w, h
    _check_side(max_side, "max_side")
    scale = int(max_side) / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _check_side(value, name: str) -> None:
    try:
        whole = not isinstance(value, bool) and float(value) == int(value) and int(value) >= 1
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise ValueError(f"{name} must be a positive whole number of pixels, got {value!r}")


def image_size(src, *, max_side: int | None = None, size=None) -> tuple[int, int]:
    """Return the (H, W) that :func:`load_image` would give, reading only the file's header.

    EXIF orientation is taken into account. Raises what ``load_image`` raises for a missing or
    unreadable file, without decoding the pixels (a gigapixel file costs nothing here).
    """
    pil = _open(src)
    w, h = pil.size
    try:
        if pil.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees when shown
            w, h = h, w
    except Exception:  # noqa: BLE001 - a damaged EXIF block: load_image will say so
        pass
    out_w, out_h = _target_size(w, h, max_side, size)
    return out_h, out_w


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
    w, h = _target_size(*pil.size, max_side, size)  # bad sizes fail before any decoding
    try:
        pil = ImageOps.exif_transpose(pil)
        pil = _to_rgb(pil)
        w, h = _target_size(*pil.size, max_side, size)
        if (w, h) != pil.size:
            pil = pil.resize((w, h), Image.Resampling.LANCZOS)
        arr = np.asarray(pil, dtype=np.float32) / 255.0  # (H, W, 3)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{_name(src)} could not be decoded ({err})") from None
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous().to(device)


def to_pil(img: Tensor) -> Image.Image:
    """Convert a ``(1, 3, H, W)`` or ``(3, H, W)`` tensor to an 8-bit RGB PIL image (clamped to [0, 1])."""
    if img.dim() == 4:
        if img.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(img.shape)}")
        img = img[0]
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"expected an image of shape (1, 3, H, W), got {tuple(img.shape)}")
    if not bool(torch.isfinite(img).all()):
        raise ValueError("the image holds NaN or infinite values; refusing to write it as black pixels")
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
               quality: int = 95, overwrite: bool = True) -> Path:
    """Write ``img`` ((1, 3, H, W) in [0, 1], clamped) as PNG or JPEG, chosen by the suffix.

    ``metadata`` (str -> str) is stored as PNG text chunks (ignored for JPEG). The file is
    written atomically (:func:`write_atomic`): a full disk or a Ctrl-C while writing leaves
    any old file at ``path`` whole. ``overwrite=False`` raises FileExistsError instead of
    replacing an existing file. Returns the path written.
    """
    path = Path(path)
    fmt = image_format(path)
    pil = to_pil(img)
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in (metadata or {}).items():
            info.add_text(str(key), str(value))
        options = {"pnginfo": info}
    else:
        options = {"quality": quality}
    write_atomic(path, lambda f: pil.save(f, fmt, **options), overwrite=overwrite)
    return path


def write_atomic(path: str | Path, write, *, overwrite: bool = True) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it to ``path``.

    The move is ``os.replace`` (or, with ``overwrite=False``, ``os.link``, which refuses an
    existing file), one atomic step: readers see the old file or the whole new one, never a
    part. On any error or interrupt the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes it private (0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _link(tmp: str, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists (FileExistsError), in one step where the
    file system has hard links (a file made a moment ago by another program counts too)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network or FAT file systems): check, then move
        if path.exists():
            raise FileExistsError(f"{path} exists") from None
        os.replace(tmp, path)


def _file_mode(path: Path) -> int:
    """The permissions a new file gets: those of the file it replaces, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def read_metadata(path: str | Path) -> dict[str, str]:
    """Return the PNG text chunks of ``path`` (empty for other formats)."""
    with _open(path) as pil:
        try:
            return dict(getattr(pil, "text", {}) or {})
        except Exception as err:  # noqa: BLE001 - a damaged or oversized text chunk
            raise ValueError(f"{path}: its metadata could not be read ({err})") from None
