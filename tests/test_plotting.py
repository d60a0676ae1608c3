"""The plotting helpers draw what they are given (Agg backend, tiny inputs, no windows)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from nstutils import plotting  # noqa: E402


def test_plot_layer_values_groups_bars_by_layer():
    values = {"a": {"relu1_1": 1.0, "relu2_1": 10.0}, "b": {"relu1_1": 100.0, "relu3_1": 1e3}}
    fig = plotting.plot_layer_values(values, ylabel="mean")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["relu1_1", "relu2_1", "relu3_1"]
    assert len(ax.patches) == 4  # one bar per (series, layer) pair present
    assert sorted(p.get_height() for p in ax.patches) == [1.0, 10.0, 100.0, 1e3]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "mean"
    plt.close(fig)


def test_plot_layer_values_draws_on_a_given_axis():
    fig, ax = plt.subplots()
    out = plotting.plot_layer_values({"only": {"x": 2.0}}, log=False, ax=ax)
    assert out is fig and ax.get_yscale() == "linear" and ax.get_legend() is None
    plt.close(fig)


def test_show_maps_shared_scale_and_shapes():
    maps = {"zeros": torch.zeros(1, 1, 4, 5), "ramp": torch.arange(20.0).view(4, 5)}
    fig = plotting.show_maps(maps)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2
    assert all(im.get_clim() == (0.0, 19.0) for im in images)
    assert [ax.get_title() for ax in fig.axes if ax.get_images()] == ["zeros", "ramp"]
    plt.close(fig)


def test_show_maps_own_scale_and_bad_shape():
    fig = plotting.show_maps({"a": torch.ones(3, 3), "b": torch.arange(9.0).view(3, 3)}, shared=False)
    clims = [im.get_clim() for ax in fig.axes for im in ax.get_images()]
    assert clims[1] == (0.0, 8.0)
    plt.close(fig)
    with pytest.raises(ValueError, match="not 2-D"):
        plotting.show_maps({"rgb": torch.zeros(1, 3, 4, 4)})
