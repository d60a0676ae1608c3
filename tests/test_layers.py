import json

import pytest
import torch
from conftest import TORCHVISION_RECORD, live_torchvision

import nstutils as nu
from nstutils import layers as L


def test_names_and_count():
    assert len(nu.VGG19_LAYERS) == 37
    assert nu.VGG19_LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert nu.VGG19_LAYERS[-1] == "pool5"
    assert len(L.CONV_LAYERS) == 16


def test_torchvision_record_matches_torchvision():
    tv = live_torchvision()
    if tv is None:
        pytest.skip("torchvision is not installed (or cannot load beside this torch)")
    recorded = json.loads(TORCHVISION_RECORD.read_text())["modules"]
    assert recorded == [repr(m) for m in tv.models.vgg19(weights=None).features]


def test_torchvision_indices_match_the_architecture(torchvision_features):
    tv = torchvision_features
    kinds = {torch.nn.Conv2d: "conv", torch.nn.ReLU: "relu", torch.nn.MaxPool2d: "pool"}
    assert len(tv) == len(nu.VGG19_LAYERS)
    for i, name in enumerate(nu.VGG19_LAYERS):
        assert name.startswith(kinds[type(tv[i])]), (i, name)
        assert nu.torchvision_index(name) == i
        assert nu.layer_from_index(str(i)) == name


def test_tutorial_indices():
    assert [nu.layer_from_index(i) for i in L.TUTORIAL_STYLE_INDICES] == [
        "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    assert nu.layer_from_index(L.TUTORIAL_CONTENT_INDEX) == "conv4_2"
    assert nu.torchvision_index("conv4_2") == 21


def test_keras_names():
    assert nu.keras_name("conv4_2") == "block4_conv2"
    assert nu.keras_name("relu4_2") == "block4_conv2"  # Keras fuses the ReLU into the conv
    assert nu.keras_name("pool3") == "block3_pool"
    assert nu.keras_name("relu1_1") == "block1_conv1"


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown layer 'relu4_9'; valid: conv1_1, relu1_1"):
        nu.torchvision_index("relu4_9")
    with pytest.raises(ValueError):
        nu.layer_from_index(37)


def test_layer_table_known_values():
    rows = {r.name: r for r in nu.layer_table(224, 224)}
    assert sum(r.params for r in rows.values()) == 20_024_384  # VGG19's convolutions
    assert (rows["conv1_1"].params, rows["conv1_1"].receptive_field) == (1792, 3)
    assert (rows["pool5"].channels, rows["pool5"].height, rows["pool5"].width) == (512, 7, 7)
    assert rows["relu4_2"].height == 28
    assert rows["pool1"].receptive_field == 6 and rows["conv2_1"].receptive_field == 10
    assert rows["conv5_4"].receptive_field == 252 and rows["pool5"].receptive_field == 268


def test_layer_table_matches_torchvision_parameter_counts(torchvision_features):
    tv = torchvision_features
    for row in nu.layer_table():
        assert row.params == sum(p.numel() for p in tv[row.torchvision].parameters())
