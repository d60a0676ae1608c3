"""An image picker for the playground: sample images or an upload, shown as a thumbnail.

Core ipywidgets only, for ipywidgets 7.7.1 (Colab's) and 8.x. Imported by
:mod:`nstutils.widgets`, never by ``import nstutils``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import ipywidgets as w
from PIL import Image, ImageOps
from torch import Tensor

from .images import to_pil

MIN_SIDE = 32
"""Uploads with a shorter side than this (pixels) are refused: too small to carry a style."""
THUMB = 130


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """Return [(name, bytes)] from a FileUpload ``value`` of any ipywidgets version.

    ipywidgets 7: {name: {"metadata": {...}, "content": bytes}};
    ipywidgets 8: a tuple of {"name": ..., "content": memoryview, ...}.
    """
    if not value:
        return []
    if isinstance(value, dict):
        return [(str(name), bytes(item["content"])) for name, item in value.items()]
    return [(str(item["name"]), bytes(item["content"])) for item in value]


def image_bytes(img: Tensor | Image.Image, fmt: str = "jpeg", max_side: int | None = None) -> bytes:
    """Encode an image ((1, 3, H, W) tensor or PIL) as JPEG or PNG bytes, optionally shrunk."""
    pil = img if isinstance(img, Image.Image) else to_pil(img)
    if max_side is not None and max(pil.size) > max_side:
        pil = pil.copy()
        pil.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    pil.convert("RGB").save(buf, "JPEG" if fmt == "jpeg" else "PNG", quality=90)
    return buf.getvalue()


def check_upload(name: str, data: bytes) -> Image.Image:
    """Decode uploaded bytes; raise ValueError with a readable reason if unusable."""
    try:
        pil = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        pil.load()
    except Exception as err:
        raise ValueError(f"{name!r} is not a readable image ({type(err).__name__}); "
                         "upload a JPEG or PNG file") from None
    if min(pil.size) < MIN_SIDE:
        raise ValueError(f"{name!r} is too small ({pil.size[0]}x{pil.size[1]} px); upload an "
                         f"image with at least {MIN_SIDE} px on each side")
    return pil


class ImagePicker:
    """A dropdown of sample images, an upload button and a thumbnail of the chosen image.

    ``value`` is the chosen name; ``source(name)`` its Path or uploaded bytes. Unusable uploads
    are reported through ``on_error(message)`` and leave the choice unchanged.
    """

    def __init__(self, title: str, samples: dict[str, Path], *, value: str | None = None,
                 on_error: Callable[[str], None] | None = None):
        self.sources: dict[str, Path | bytes] = dict(samples)
        self.on_error = on_error or (lambda message: None)
        if not self.sources:
            raise ValueError(f"no sample images for {title!r}; put .jpg files in the data folder")
        value = value if value in self.sources else next(iter(self.sources))
        self.dropdown = w.Dropdown(options=list(self.sources), value=value,
                                   layout=w.Layout(width="196px"))
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload",
                                   layout=w.Layout(width="118px"))
        self.thumb = w.Image(format="jpeg", layout=w.Layout(width=f"{THUMB}px", height=f"{THUMB}px",
                                                             object_fit="contain", margin="2px 6px 2px 0"))
        self.dropdown.observe(lambda change: self._show(), names="value")
        self.upload.observe(self._on_upload, names="value")
        self._show()
        title_html = w.HTML(f"<b>{title}</b>", layout=w.Layout(width="58px"))
        hint = w.HTML(f"<div style='font-size:11px;line-height:1.3;color:#555;margin-top:4px'>or "
                      f"your own JPEG or PNG, at least {MIN_SIDE} px a side</div>",
                      layout=w.Layout(width="118px"))
        self.box = w.VBox([w.HBox([title_html, self.dropdown]), w.HBox([self.thumb, w.VBox([self.upload, hint])])],
                          layout=w.Layout(width="262px", margin="0 4px 0 0"))

    @property
    def value(self) -> str:
        return self.dropdown.value

    def source(self, name: str | None = None) -> Path | bytes:
        return self.sources[name or self.value]

    def image_bytes(self, max_side: int = THUMB) -> bytes:
        """Return the chosen image as JPEG bytes, shrunk to ``max_side``."""
        src = self.source()
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as pil:
            return image_bytes(ImageOps.exif_transpose(pil), "jpeg", max_side)

    def _show(self) -> None:
        if self.dropdown.value in self.sources:
            self.thumb.value = self.image_bytes(THUMB)

    def add(self, name: str, data: bytes) -> bool:
        """Add uploaded bytes under ``name`` and choose them; False (with a message) if unusable."""
        try:
            check_upload(name, data)
        except ValueError as err:
            self.on_error(str(err))
            return False
        label, n = f"{Path(name).stem} (upload)", 1
        while label in self.sources and self.sources[label] != data:  # same name, another photo
            n += 1
            label = f"{Path(name).stem} (upload {n})"
        self.sources[label] = data
        self.dropdown.options = list(self.sources)
        self.dropdown.value = label
        self._show()
        return True

    def _on_upload(self, change) -> None:
        try:
            files = uploaded_files(change["new"])
        except (KeyError, TypeError) as err:
            self.on_error(f"could not read the upload ({err})")
            return
        for name, data in files[-1:]:  # one file at a time (multiple=False)
            self.add(name, data)
