"""Attention maps of the zoo's registered models, family by family: the ResNet attention
variants at 64x64, and the families whose attention is a mask, a gate, a sampling grid, a
glimpse path or a set of selected patches."""

import math

import numpy as np
import pytest

import attention_zoo
from attention_zoo.visualization import collect_attention
from tests.helpers import random_inputs, randomize_weights

IMAGES = random_inputs((2, 64, 64, 3), seed=5, low=0.0, high=1.0)
RESNETS = {
    # id: (name, overrides, attention layers, strides)
    "se": ("se_resnet18", {}, 8, (4, 8, 16, 32)),
    "eca": ("resnet18", {"attention": "eca"}, 8, (4, 8, 16, 32)),
    "cbam": ("cbam_resnet18", {}, 8, (4, 8, 16, 32)),
    "sk": ("sk_resnet18", {}, 8, (4, 8, 16, 32)),
    "bam": ("bam_resnet50", {}, 3, (4, 8, 16)),
    "non_local": ("resnet18", {"attention": "non_local"}, 8, (4, 8, 16, 32)),
}


def zoo_model(name, seed=0, **options):
    model = attention_zoo.get(name, **options)
    randomize_weights(model, seed=seed, scale=0.3)
    return model


@pytest.mark.parametrize("variant", list(RESNETS))
def test_resnet_attention_maps_have_their_kinds_shapes_and_ranges(variant):
    name, overrides, layers, strides = RESNETS[variant]
    maps = collect_attention(zoo_model(name, **overrides), IMAGES, query=(10, 50))
    assert len({m.layer for m in maps.values()}) == layers
    assert tuple(sorted({m.stride for m in maps.values()})) == strides
    for key, part in maps.items():
        assert part.stage == int(math.log2(part.stride)) - 2, key  # stride 4 is stage 0
        h, w = part.feature_size
        assert (h, w) == (64 // part.stride, 64 // part.stride)
        values = part.values
        if part.kind == "channel_weights":
            assert values.shape[0] == 2 and values.ndim == 2
            if not part.extras.get("logits"):
                assert 0.0 <= values.min() and values.max() <= 1.0, key
        elif part.kind in ("spatial_map", "gate"):
            assert values.shape == (2, h, w) and part.upsampled.shape == (2, 64, 64)
            if not part.extras.get("logits"):
                assert 0.0 <= values.min() and values.max() <= 1.0, key
        elif part.kind == "path_weights":
            assert values.shape[:2] == (2, 2)
            np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-5)
        elif part.kind == "self_attention":
            assert values.shape == (2, h, w) and part.upsampled.shape == (2, 64, 64)
            np.testing.assert_allclose(values.sum(axis=(1, 2)), 1.0, rtol=1e-5)
            assert part.extras["query_cell"] == (int(10 * h / 64), int(50 * w / 64))
        else:
            pytest.fail(f"{key}: unexpected kind {part.kind}")
    kinds = {m.kind for m in maps.values()}
    expected = {
        "se": {"channel_weights"},
        "eca": {"channel_weights"},
        "cbam": {"channel_weights", "spatial_map"},
        "sk": {"path_weights"},
        "bam": {"channel_weights", "spatial_map", "gate"},
        "non_local": {"self_attention"},
    }[variant]
    assert kinds == expected


def test_residual_attention_masks_are_read_per_stage_and_averaged_over_channels_for_overlays():
    maps = collect_attention(zoo_model("attention56_cifar"), random_inputs((2, 32, 32, 3), seed=1))
    assert [(m.kind, m.values.shape, m.stride) for m in maps.values()] == [
        ("mask", (2, 32, 32, 64), 1.0),
        ("mask", (2, 16, 16, 128), 2.0),
        ("mask", (2, 8, 8, 256), 4.0),
    ]
    for part in maps.values():
        assert 0.0 <= part.values.min() and part.values.max() <= 1.0  # the "mixed" sigmoid mask
        assert part.upsampled.shape == (2, 32, 32)
        np.testing.assert_allclose(part.upsampled.mean(), part.values.mean(), rtol=1e-3)


def zooming_transformer(model):
    """Theta = [[0.5, 0, 0.25], [0, 0.5, -0.25]]: a half-size window right of and above centre."""
    regression = model.get_layer("spatial_transformer").regression
    regression.bias.assign(np.array([0.5, 0.0, 0.25, 0.0, 0.5, -0.25], "float32"))
    regression.kernel.assign(np.zeros(regression.kernel.shape, "float32"))


def test_spatial_transformer_grid_is_given_in_input_pixels_with_the_transformed_image():
    model = attention_zoo.get("stn_cnn")
    zooming_transformer(model)
    images = random_inputs((2, 60, 60, 1), seed=2, low=0.0, high=1.0)
    part = collect_attention(model, images)["spatial_transformer"]
    assert part.kind == "sampling_grid" and part.values.shape == (2, 30, 30, 2)
    np.testing.assert_allclose(part.extras["theta"][0], [[0.5, 0.0, 0.25], [0.0, 0.5, -0.25]], atol=1e-6)
    # Output pixel (0, 0) is at normalised -29/30; through theta and back to input pixels:
    # x = (0.5 * -29/30 + 0.25 + 1) * 30 - 0.5 = 22.5, y = (0.5 * -29/30 - 0.25 + 1) * 30 - 0.5 = 7.5.
    np.testing.assert_allclose(part.extras["pixels"][:, 0, 0], [[22.5, 7.5]] * 2, atol=1e-4)
    np.testing.assert_allclose(part.extras["pixels"][:, -1, -1], [[51.5, 36.5]] * 2, atol=1e-4)
    transformed = part.extras["transformed"]
    assert transformed.shape == (2, 30, 30, 1)
    # One output pixel per input pixel, sampled half-way between four input pixels.
    crop = images[:, 7:38, 22:53, 0]
    expected = (crop[:, :-1, :-1] + crop[:, 1:, :-1] + crop[:, :-1, 1:] + crop[:, 1:, 1:]) / 4.0
    np.testing.assert_allclose(transformed[..., 0], expected, atol=1e-5)
    assert part.stride is None and part.stage is None


def test_a_classifier_behind_a_transformer_reports_its_maps_on_the_transformed_images():
    model = attention_zoo.get(
        "stn_classifier", classifier="resnet18", classifier_options={"attention": "cbam"}, input_shape=(64, 64, 3)
    )
    randomize_weights(model, seed=3, scale=0.3)
    zooming_transformer(model)
    maps = collect_attention(model, IMAGES, query=(32, 48))
    assert list(maps)[0] == "spatial_transformer"
    inner = [m for m in maps.values() if m.layer.startswith("resnet18/")]
    assert len(inner) == 16 and inner[1].key == "resnet18/layer1_0_cbam/spatial"
    transformed = maps["spatial_transformer"].extras["transformed"]
    for part in inner:
        assert part.frame is transformed or np.array_equal(part.frame, transformed)
    spatial = maps["resnet18/layer4_1_cbam/spatial"]
    assert spatial.values.shape == (2, 2, 2) and spatial.upsampled.shape == (2, 64, 64)
    assert spatial.stride == 32.0 and spatial.stage == 3
    only = collect_attention(model, IMAGES, layers=["resnet18/layer2_1_cbam/spatial"])
    assert list(only) == ["resnet18/layer2_1_cbam/spatial"]


def test_ram_glimpse_path_is_the_models_own_locations_in_pixels():
    model = zoo_model("ram", seed=4)
    images = random_inputs((2, 60, 60, 1), seed=4, low=0.0, high=1.0)
    part = collect_attention(model, images)["glimpse_sensor"]
    steps = model.num_glimpses
    assert part.kind == "glimpse_path" and part.values.shape[:2] == (2, steps) and part.values.shape[-1] == 2
    assert np.abs(part.values).max() <= 1.0
    expected = np.asarray(attention_zoo.layers.glimpse.locations_to_pixels(part.values, (60, 60)))
    np.testing.assert_allclose(part.extras["pixels"], expected, atol=1e-5)
    np.testing.assert_allclose(
        part.extras["pixels"], np.asarray(model.glimpse_locations(images, pixels=True)), atol=1e-5
    )
    widths = part.extras["patch_sizes"]
    assert widths[0] == model.patch_size and len(widths) == model.num_scales
    assert all(b == a * model.scale_factor for a, b in zip(widths, widths[1:]))


def test_dcn_selected_patches_come_with_their_saliency_at_the_input_resolution():
    model = zoo_model("dcn", seed=6)
    images = random_inputs((2, 100, 100, 1), seed=6, low=0.0, high=1.0)
    part = collect_attention(model, images)["patch_selection"]
    boxes = part.values
    assert part.kind == "selected_patches" and boxes.shape == (2, model.num_patches, 4)
    assert np.all(boxes[..., 2] - boxes[..., 0] == 14) and np.all(boxes[..., 3] - boxes[..., 1] == 14)
    assert part.extras["patches"].shape == (2, model.num_patches, 14, 14, 1)
    saliency = part.extras["saliency"]
    assert part.upsampled.shape == (2, 100, 100)
    for image in range(2):
        # The most salient cell is the first selected one, and its peak lands inside its box.
        row, col = part.extras["positions"][image, 0]
        assert saliency[image, row, col] == saliency[image].max()
        peak_row, peak_col = np.unravel_index(np.argmax(part.upsampled[image]), (100, 100))
        top, left, bottom, right = boxes[image, 0]
        assert top <= peak_row < bottom and left <= peak_col < right
        assert part.upsampled[image].max() <= saliency[image].max() + 1e-6


def test_maps_do_not_depend_on_how_the_images_are_batched():
    from tests.visualization.test_collect import every_attention_model

    model = every_attention_model()
    together = collect_attention(model, IMAGES[:, :32, :32], query=(5, 9))
    one_by_one = collect_attention(model, IMAGES[:, :32, :32], query=(5, 9), batch_size=1)
    assert list(together) == list(one_by_one)
    for key, part in together.items():
        # Batched matrix products sum in another order: float32 noise on saturated softmaxes.
        np.testing.assert_allclose(one_by_one[key].values, part.values, rtol=1e-3, atol=1e-4, err_msg=key)
