import io

import numpy as np
import pytest
import torch
from PIL import Image

import nstutils as nu
from conftest import DATA, pattern


def _check(img, h, w):
    assert img.shape == (1, 3, h, w) and img.dtype == torch.float32
    assert img.is_contiguous() and 0 <= img.min() and img.max() <= 1


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "1"])
def test_every_mode_becomes_rgb(mode, tmp_path):
    rgb = Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8))
    pil = rgb.convert("L").convert(mode) if mode in ("I;16", "I", "1") else rgb.convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16", "I") else "x.png")
    pil.save(path)
    _check(nu.load_image(path), 20, 30)


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.full((4, 5), 65535 // 2, dtype=np.uint16)
    pil = Image.fromarray(arr)
    assert pil.mode == "I;16"
    img = nu.load_image(pil)
    assert img.mean().item() == pytest.approx(0.5, abs=0.01)


def test_transparency_composited_over_white():
    pil = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert torch.allclose(nu.load_image(pil), torch.ones(1, 3, 4, 4))


def test_exif_orientation_is_applied():
    pil = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif.tobytes())
    _check(nu.load_image(buf.getvalue()), 40, 20)


def test_sources_path_pil_bytes_numpy(tmp_path):
    path = DATA / "content/grace_hopper_portrait.jpg"
    a = nu.load_image(path)
    b = nu.load_image(Image.open(path))
    c = nu.load_image(path.read_bytes())
    d = nu.load_image(np.asarray(Image.open(path)))
    e = nu.load_image(np.asarray(Image.open(path), dtype=np.float32) / 255)
    for x in (b, c, d):
        assert torch.equal(a, x)
    assert torch.allclose(a, e, atol=1 / 255)
    _check(a, 606, 517)


def test_resize_keeps_aspect_ratio_or_uses_explicit_size():
    path = DATA / "content/tubingen_neckarfront.jpg"  # 1024 x 768
    _check(nu.load_image(path, max_side=128), 96, 128)
    _check(nu.load_image(path, size=(50, 70)), 50, 70)
    _check(nu.load_image(path, size=32), 32, 32)


def test_round_trip_of_8bit_png_is_exact(tmp_path):
    arr = (np.random.default_rng(1).random((17, 23, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = nu.load_image(tmp_path / "a.png")
    nu.save_image(img, tmp_path / "b.png")
    assert torch.equal(nu.load_image(tmp_path / "b.png"), img)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), arr)


def test_save_clamps_writes_jpeg_and_metadata(tmp_path):
    img = pattern() * 3 - 1
    nu.save_image(img, tmp_path / "x.png", metadata={"k": "v"})
    back = nu.load_image(tmp_path / "x.png")
    assert torch.allclose(back, img.clamp(0, 1), atol=0.5 / 255)
    assert nu.read_metadata(tmp_path / "x.png") == {"k": "v"}
    nu.save_image(pattern(), tmp_path / "x.jpg")
    _check(nu.load_image(tmp_path / "x.jpg"), 32, 40)
    with pytest.raises(ValueError, match="suffix"):
        nu.save_image(img, tmp_path / "x.gif")


def test_input_not_mutated_and_to_pil():
    img = pattern()
    before = img.clone()
    pil = nu.to_pil(img)
    assert pil.size == (40, 32) and pil.mode == "RGB"
    assert torch.equal(img, before)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        nu.load_image(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        nu.load_image(tmp_path / "bad.jpg")
    with pytest.raises(ValueError):
        nu.load_image(b"garbage")
    with pytest.raises(ValueError, match="shape"):
        nu.load_image(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        nu.to_pil(torch.zeros(1, 4, 5, 5))
