"""Figures of attention maps: PNGs that show the maps (read back and compared pixel-wise),
the right figure for each kind of attention, and clear errors."""

import os

import keras
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

import attention_zoo
from attention_zoo.layers import SqueezeExcite
from attention_zoo.visualization import (
    AttentionMap,
    collect_attention,
    display_image,
    overlay,
    plot_attention,
    plot_attention_maps,
    plot_channel_weights,
    plot_glimpses,
    plot_overlays,
    plot_path_weights,
    plot_selected_patches,
    plot_spatial_transformer,
    save_figure,
    select_maps,
)
from tests.helpers import random_inputs, randomize_weights
from tests.visualization.test_collect import every_attention_model

IMAGES = random_inputs((2, 32, 32, 3), seed=3, low=0.0, high=1.0)


def read_png(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype="float32")


def colour_pixels(pixels, rgb, tolerance=12):
    """How many pixels have (within `tolerance` per channel) the colour `rgb` (0..255)."""
    return int(np.all(np.abs(pixels - np.asarray(rgb, "float32")) <= tolerance, axis=-1).sum())


def axes_titles(figure):
    return [ax.get_title() for ax in figure.get_axes()]


@pytest.fixture(scope="module")
def model():
    return every_attention_model()


@pytest.fixture(scope="module")
def maps(model):
    return collect_attention(model, IMAGES, query=(20, 6))


def test_an_overlay_blends_a_colormap_of_the_map_into_the_image_at_its_resolution():
    image = random_inputs((16, 24, 3), seed=1, low=0.0, high=1.0)
    heat = np.tile(np.linspace(0.0, 3.0, 24, dtype="float32"), (16, 1))
    blended = overlay(image, heat, cmap="jet", alpha=0.5)
    assert blended.shape == (16, 24, 3)
    np.testing.assert_allclose(overlay(image, heat, alpha=0.0), image, atol=1e-6)
    jet = colormaps["jet"]
    np.testing.assert_allclose(overlay(image, heat, alpha=1.0)[:, 0], np.tile(jet(0.0)[:3], (16, 1)), atol=1e-6)
    np.testing.assert_allclose(overlay(image, heat, alpha=1.0)[:, -1], np.tile(jet(1.0)[:3], (16, 1)), atol=1e-6)
    np.testing.assert_allclose(blended, 0.5 * image + 0.5 * overlay(image, heat, alpha=1.0), atol=1e-6)
    # A flat map is one colour (the middle of the scale), not noise stretched to the full range.
    flat = overlay(image, np.full((16, 24), 0.3, "float32"), alpha=1.0)
    np.testing.assert_allclose(flat, np.broadcast_to(jet(0.5)[:3], flat.shape), atol=1e-6)
    with pytest.raises(ValueError, match=r"must have the image's size \(16, 24\)"):
        overlay(image, heat[:8], alpha=0.5)


def test_images_are_displayed_from_unit_8bit_or_normalised_pixels():
    unit = random_inputs((4, 4, 3), seed=2, low=0.0, high=1.0)
    np.testing.assert_allclose(display_image(unit), unit)
    np.testing.assert_allclose(display_image(unit * 255.0), unit, atol=1e-6)
    normalised = display_image(unit * 4.0 - 2.0)
    assert normalised.min() == 0.0 and normalised.max() == 1.0
    assert display_image(unit[..., :1]).shape == (4, 4, 3)  # grayscale shown as RGB


def test_plot_attention_writes_a_png_with_a_section_per_kind_of_attention(model, tmp_path):
    path = tmp_path / "attention.png"
    figure = plot_attention(model, IMAGES, path=path, query=(20, 6), dpi=60)
    pixels = read_png(path)
    width, height = figure.get_size_inches() * 60
    assert pixels.shape == (round(height), round(width), 3)
    assert pixels.std() > 30.0, "the figure must not be blank"
    titles = "\n".join(axes_titles(figure))
    # Overlays of every spatial map (five layers: all of them), channel gates, SK paths,
    # DANet channel affinity: each section is there.
    for key in ("cbam/spatial", "bam/gate", "non_local", "position", "pool", "se", "eca", "cbam/channel"):
        assert key in titles, key
    assert "selective kernel" in titles and "channel x channel" in titles


def test_an_overlay_differs_from_a_plain_rendering_of_the_input_where_the_map_is(maps, tmp_path):
    plot_overlays(IMAGES, maps, path=tmp_path / "plain.png", layers=["cbam"], alpha=0.0, dpi=60)
    plot_overlays(IMAGES, maps, path=tmp_path / "overlay.png", layers=["cbam"], alpha=0.6, dpi=60)
    plain, blended = read_png(tmp_path / "plain.png"), read_png(tmp_path / "overlay.png")
    assert plain.shape == blended.shape
    changed = np.abs(plain - blended).max(axis=-1) > 25
    # The images take up a good part of the figure; with the map blended in they change.
    assert changed.mean() > 0.15
    assert np.abs(plain - blended).mean() > 5.0
    # Away from the panels (margins, titles) nothing changes.
    assert (~changed[:, :10]).all()


def test_a_different_map_gives_a_different_overlay(model, maps, tmp_path):
    other = collect_attention(model, IMAGES, layers=["non_local"], query=(2, 30))
    plot_overlays(IMAGES, maps, path=tmp_path / "a.png", layers=["non_local"], dpi=60)
    plot_overlays(IMAGES, other, path=tmp_path / "b.png", layers=["non_local"], dpi=60)
    assert np.abs(read_png(tmp_path / "a.png") - read_png(tmp_path / "b.png")).mean() > 1.0


def test_channel_gates_are_drawn_as_bars_between_zero_and_one(maps, tmp_path):
    figure = plot_channel_weights(IMAGES, maps, path=tmp_path / "channels.png", dpi=60)
    axes = figure.get_axes()
    assert len(axes) == 2 * 4  # two images x (se, eca, cbam, bam) channel maps
    assert "bam/channel" in axes[3].get_title()
    # Gates on a 0..1 scale (rows are images, columns se, eca, cbam, bam); BAM's logits get their own.
    assert all(axes[i].get_ylim() == (0.0, 1.0) for i in (0, 1, 2, 4, 5, 6))
    assert axes[3].get_ylim()[0] < 0.0
    pixels = read_png(tmp_path / "channels.png")
    assert colour_pixels(pixels, [31, 119, 180]) > 500  # tab:blue bars


def test_selective_kernel_paths_are_stacked_bars_in_both_path_colours(maps, tmp_path):
    figure = plot_path_weights(IMAGES, maps, path=tmp_path / "paths.png", dpi=60)
    assert len(figure.get_axes()) == 2  # one per image
    pixels = read_png(tmp_path / "paths.png")
    tab10 = colormaps["tab10"]
    for path in range(2):
        assert colour_pixels(pixels, [round(255 * c) for c in tab10(path)[:3]]) > 200
    heights = [bar.get_height() for bar in figure.get_axes()[0].patches]
    np.testing.assert_allclose(sum(heights), 1.0, rtol=1e-5)  # one layer: its two shares sum to one


def test_a_model_with_only_channel_gates_gets_bar_charts_and_no_overlays(tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x, _ = SqueezeExcite(8, reduction=2, return_attention=True, name="se")(x)
    se_only = keras.Model(inputs, x, name="se_only")
    randomize_weights(se_only)
    figure = plot_attention(se_only, IMAGES[0], path=tmp_path / "se.png", dpi=60)
    assert [len(ax.images) for ax in figure.get_axes()] == [0]
    assert "se" in axes_titles(figure)[0]
    with pytest.raises(ValueError, match="nothing to draw for overlay: the maps are of kind"):
        plot_attention(se_only, IMAGES[0], kind="overlay")
    with pytest.raises(ValueError, match="unknown plot kind"):
        plot_attention(se_only, IMAGES[0], kind="heatmap")
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs), name="plain")
    with pytest.raises(ValueError, match="plain has no attention layers"):
        plot_attention(plain, IMAGES[0])


def fake(layer, kind, stage, part=None):
    return AttentionMap(layer, part, kind, np.zeros((1, 4)), "Fake", stride=2.0 ** (stage + 2), stage=stage)


def test_the_default_figure_keeps_the_last_layer_of_each_stage_when_there_are_many():
    many = {m.key: m for m in (fake(f"layer{s + 1}_{b}", "spatial_map", s) for s in range(4) for b in range(2))}
    assert [m.layer for m in select_maps(many, ("spatial_map",))] == ["layer1_1", "layer2_1", "layer3_1", "layer4_1"]
    assert len(select_maps(many, ("spatial_map",), per_stage=None)) == 8
    assert [m.layer for m in select_maps(many, ("spatial_map",), layers=["layer2_0"])] == ["layer2_0"]
    few = {m.key: m for m in (fake(f"bam{s}", kind, s, kind) for s in range(3) for kind in ("spatial_map", "gate"))}
    # A layer with several spatial maps is drawn once, with the one that gates the features.
    assert [m.key for m in select_maps(few, ("gate", "spatial_map"))] == ["bam0/gate", "bam1/gate", "bam2/gate"]


def test_spatial_transformer_figure_outlines_the_sampling_grid_on_the_input(tmp_path):
    model = attention_zoo.get("stn_cnn")
    regression = model.get_layer("spatial_transformer").regression
    regression.bias.assign(np.array([0.5, 0.0, 0.25, 0.0, 0.5, -0.25], "float32"))
    images = random_inputs((1, 60, 60, 1), seed=2, low=0.0, high=0.4)  # dark: the red outline stands out
    maps = collect_attention(model, images)
    figure = plot_spatial_transformer(images, maps, path=tmp_path / "stn.png", dpi=60)
    titles = [ax.get_title() for ax in figure.get_axes()]
    assert titles == ["input", "spatial_transformer\nsampling grid", "transformed"]
    pixels = read_png(tmp_path / "stn.png")
    third = pixels.shape[1] // 3
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 90) & (pixels[..., 2] < 90)
    assert red[:, third : 2 * third].sum() > 100  # the outline, around a window half the image wide
    assert red[:, :third].sum() == 0 and red[:, 2 * third :].sum() == 0


def test_glimpse_figure_draws_the_path_over_the_image(tmp_path):
    model = attention_zoo.get("ram")
    randomize_weights(model, seed=4, scale=0.3)
    images = random_inputs((1, 60, 60, 1), seed=4, low=0.0, high=0.3)
    maps = collect_attention(model, images)
    figure = plot_glimpses(images, maps, path=tmp_path / "ram.png", dpi=60)
    ax = figure.get_axes()[0]
    assert len(ax.patches) == model.num_glimpses * model.num_scales  # a square per glimpse and scale
    path_line = ax.lines[0]
    drawn = np.c_[path_line.get_xdata(), path_line.get_ydata()]
    np.testing.assert_allclose(drawn, maps["glimpse_sensor"].extras["pixels"][0])
    assert read_png(tmp_path / "ram.png").std() > 20.0


def test_dcn_figure_boxes_the_selected_patches(tmp_path):
    model = attention_zoo.get("dcn")
    randomize_weights(model, seed=6, scale=0.3)
    images = random_inputs((1, 100, 100, 1), seed=6, low=0.0, high=1.0)
    maps = collect_attention(model, images)
    figure = plot_selected_patches(images, maps, path=tmp_path / "dcn.png", dpi=60)
    boxes_axis, saliency_axis, _ = figure.get_axes()
    assert len(boxes_axis.patches) == len(saliency_axis.patches) == model.num_patches
    first = boxes_axis.patches[0]
    top, left, bottom, right = maps["patch_selection"].values[0, 0]
    assert (first.get_x(), first.get_y(), first.get_width(), first.get_height()) == (
        left - 0.5, top - 0.5, right - left, bottom - top
    )
    assert read_png(tmp_path / "dcn.png").std() > 20.0


def test_a_failed_write_leaves_no_file_behind(maps, tmp_path, monkeypatch):
    figure = plot_attention_maps(IMAGES, maps, kind="overlay", layers=["pool"])
    target = tmp_path / "out" / "figure.png"

    def broken(path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(figure, target)
    assert os.listdir(tmp_path / "out") == []
