"""The Residual Attention Network family: the official ImageNet layout (exact parameter count
and MACs of the Caffe deploy prototxts), its Attention Modules and mask types, the CIFAR
variants, and the zoo's contract on every backend.

The ImageNet models are built at 224 (their static default) once per module; forward passes
stay at batch 1, and the rest runs on the CIFAR models or small overrides of them.
"""

import keras
import numpy as np
import pytest
from keras import ops

import attention_zoo
from attention_zoo.models.residual_attention import AttentionMask, CaffeMaxPool2D, ResizeLike
from tests.helpers import (
    assert_gradients_reach_every_weight,
    assert_keras_file_round_trip,
    check_layer,
    random_inputs,
)

pytestmark = pytest.mark.every_backend

# Computed from imagenet_model/Attention-{56,92}-deploy.prototxt (fwang91/residual-attention-network):
# convolution and FC weights, FC bias, BN scale and shift; MACs of convolutions and the FC at 224.
OFFICIAL = {
    "attention56": {"params": 31_810_728, "macs": 6_270_836_736},
    "attention92": {"params": 52_466_344, "macs": 10_533_789_696},
}
# Fewer modules, same widths: a stage-1 module with two mask skips, a stage-3 module without and
# the projection units hold every kind of layer, and sharing the full models' shapes keeps
# JAX from compiling its operations again.
TINY = dict(modules=(1, 0, 1), final_units=1)
CIFAR_IMAGES = random_inputs((2, 32, 32, 3))


def numpy(x):
    return ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def attention56():
    return attention_zoo.get("attention56")


@pytest.fixture(scope="module")
def attention56_cifar():
    return attention_zoo.get("attention56_cifar", num_classes=10)


def attention_layers(model):
    return [layer for layer in model.layers if isinstance(layer, AttentionMask)]


# The official ImageNet layout.


def test_attention56_matches_the_official_parameter_count_and_macs(attention56):
    assert attention_zoo.count_params(attention56) == OFFICIAL["attention56"]["params"]
    assert attention_zoo.model_info("attention56").params == OFFICIAL["attention56"]["params"]
    macs = attention_zoo.count_macs(attention56, input_shape=(224, 224, 3))
    assert macs == OFFICIAL["attention56"]["macs"]
    assert macs / 1e9 == pytest.approx(attention_zoo.model_info("attention56").gmacs, rel=0.02)


def test_attention92_matches_the_official_parameter_count_and_macs():
    model = attention_zoo.get("attention92")
    assert attention_zoo.count_params(model) == OFFICIAL["attention92"]["params"]
    assert attention_zoo.model_info("attention92").params == OFFICIAL["attention92"]["params"]
    # Built at its static default of 224, so no rebuild is needed to count at 224.
    assert model.input_shape == (None, 224, 224, 3)
    macs = attention_zoo.count_macs(model)
    assert macs == OFFICIAL["attention92"]["macs"]
    assert macs / 1e9 == pytest.approx(attention_zoo.model_info("attention92").gmacs, rel=0.02)
    assert [len([m for m in attention_layers(model) if m.name.startswith(f"stage{s}")]) for s in (1, 2, 3)] == [1, 2, 3]


def test_attention56_classifies_a_224_image_with_features_and_masks_at_56_28_14_7(attention56):
    assert attention56.input_shape == (None, 224, 224, 3)
    features = attention_zoo.pyramid_outputs(attention56)
    masks = attention_zoo.attention_outputs(attention56)
    probe = keras.Model(attention56.input, [attention56.output, features, masks])
    logits, features, masks = probe(random_inputs((1, 224, 224, 3)), training=False)
    assert tuple(logits.shape) == (1, 1000)
    assert np.all(np.isfinite(numpy(logits)))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "P2": (1, 56, 56, 256),
        "P3": (1, 28, 28, 512),
        "P4": (1, 14, 14, 1024),
        "P5": (1, 7, 7, 2048),
    }
    assert {k: tuple(v.shape) for k, v in masks.items()} == {
        "stage1_module1_attention": (1, 56, 56, 256),
        "stage2_module1_attention": (1, 28, 28, 512),
        "stage3_module1_attention": (1, 14, 14, 1024),
    }
    for mask in masks.values():
        assert np.all((numpy(mask) > 0) & (numpy(mask) < 1))


def test_masks_pool_down_to_7x7_with_2_1_0_skip_units_and_upsample_to_the_trunk(attention56):
    names = [layer.name for layer in attention56.layers]
    for stage, skips, size in [(1, 2, 56), (2, 1, 28), (3, 0, 14)]:
        module = f"stage{stage}_module1"
        assert attention56.get_layer(f"{module}_bottom_add").output.shape[1:3] == (7, 7)
        assert sorted(n for n in names if n.startswith(f"{module}_skip") and n.endswith("_add")) == [
            f"{module}_skip{level}_add" for level in range(1, skips + 1)
        ]
        pools = [n for n in names if n.startswith(f"{module}_pool")]
        assert len(pools) == skips + 1
        assert all(isinstance(attention56.get_layer(n), CaffeMaxPool2D) for n in pools)
        # The mask branch starts where the trunk does: after the module's first p units.
        first_pool = attention56.get_layer(f"{module}_pool1")
        assert first_pool.input is attention56.get_layer(f"{module}_pre_add").output
        assert attention56.get_layer(f"{module}_upsample1").output.shape[1:3] == (size, size)


def test_units_are_preactivation_bottlenecks_without_biases_and_batchnorm_uses_pytorch_epsilon(attention56):
    convs = [layer for layer in attention56.layers if isinstance(layer, keras.layers.Conv2D)]
    assert not any(layer.use_bias for layer in convs)
    assert [attention56.get_layer(f"stage2_module1_trunk_1_conv{i}").filters for i in (1, 2, 3)] == [128, 128, 512]
    # The unit's first layer is its own BN-ReLU, applied to the raw residual sum it receives.
    bn1 = attention56.get_layer("stage2_module1_trunk_1_bn1")
    assert bn1.input is attention56.get_layer("stage2_module1_pre_add").output
    # Projections read the activated input and stride on the 3x3, with PyTorch/Caffe padding.
    assert attention56.get_layer("stage2_unit_shortcut").input is attention56.get_layer("stage2_unit_bn1_relu").output
    assert attention56.get_layer("stage2_unit_conv2").strides == (2, 2)
    assert attention56.get_layer("stage2_unit_conv2").padding == "valid"
    assert isinstance(attention56.get_layer("stage2_unit_conv2_pad"), keras.layers.ZeroPadding2D)
    norms = [layer for layer in attention56._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.epsilon == 1e-5 and layer.momentum == 0.9 for layer in norms)


# Attention Modules and their masks.


def test_module_output_is_one_plus_mask_times_trunk(attention56_cifar):
    layer = attention56_cifar.get_layer("stage1_module1_attention")
    trunk, mask_features = layer.input
    # The trunk is the module's last trunk unit; the mask the bilinear upsampling of the branch.
    assert trunk is attention56_cifar.get_layer("stage1_module1_trunk_2_add").output
    assert mask_features is attention56_cifar.get_layer("stage1_module1_upsample1").output
    fused, mask = layer.output
    probe = keras.Model(attention56_cifar.input, [trunk, fused, mask])
    trunk, fused, mask = (numpy(t) for t in probe(CIFAR_IMAGES, training=False))
    assert np.all((mask > 0) & (mask < 1))
    assert mask.std() > 1e-3  # not a constant gate
    np.testing.assert_allclose(fused, (1 + mask) * trunk, rtol=1e-5, atol=1e-5)


def mask_layer_inputs(channels=32, size=6):
    return [random_inputs((2, size, size, channels), seed=1), random_inputs((2, size, size, channels), seed=2)]


@pytest.mark.parametrize("attention_type", ["mixed", "channel", "spatial"])
def test_attention_mask_layer_meets_the_layer_contract(attention_type, tmp_path):
    inputs = mask_layer_inputs()
    check_layer(
        AttentionMask(32, attention_type=attention_type, return_attention=True),
        inputs,
        tmp_path,
        expected_shapes=[(2, 6, 6, 32), (2, 6, 6, 32)],
    )


@pytest.mark.parametrize("attention_type", ["mixed", "channel", "spatial"])
def test_attention_types_follow_the_papers_definitions(attention_type):
    trunk, features = mask_layer_inputs()
    layer = AttentionMask(32, attention_type=attention_type, return_attention=True)
    fused, mask = layer([trunk, features], training=False)
    fused, mask = numpy(fused), numpy(mask)
    logits = numpy(layer.mask_logits(features, training=False)).astype("float64")
    if attention_type == "mixed":
        expected = 1 / (1 + np.exp(-logits))
        assert np.all((mask > 0) & (mask < 1))
    elif attention_type == "channel":
        expected = logits / np.linalg.norm(logits, axis=-1, keepdims=True)
        np.testing.assert_allclose(np.linalg.norm(mask, axis=-1), 1.0, rtol=1e-5)
    else:
        mean = logits.mean(axis=(1, 2), keepdims=True)
        std = np.sqrt(logits.var(axis=(1, 2), keepdims=True) + layer.epsilon)
        expected = 1 / (1 + np.exp(-(logits - mean) / std))
        # Each channel's map, before the sigmoid, has zero mean over the positions.
        np.testing.assert_allclose(np.log(mask / (1 - mask)).mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(mask, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused, (1 + mask) * trunk, rtol=1e-5, atol=1e-6)


def test_attention_type_and_upsampling_are_options_of_every_module():
    model = attention_zoo.get(
        "attention56_cifar", num_classes=10, attention_type="channel", align_corners=False, **TINY
    )
    assert {layer.attention_type for layer in attention_layers(model)} == {"channel"}
    resizes = [layer for layer in model.layers if isinstance(layer, ResizeLike)]
    assert len(resizes) == 4 and not any(layer.align_corners for layer in resizes)
    probe = keras.Model(model.input, [model.output, attention_zoo.attention_outputs(model)])
    logits, masks = probe(CIFAR_IMAGES)
    assert tuple(logits.shape) == (2, 10)
    assert set(masks) == {"stage1_module1_attention", "stage3_module1_attention"}
    for mask in masks.values():
        norms = np.linalg.norm(numpy(mask), axis=-1)
        # A position where the head's ReLU zeroes every channel has no direction: its mask is 0.
        assert np.mean(norms == 0) < 0.01
        np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="attention_type must be one of"):
        attention_zoo.get("attention56_cifar", attention_type="soft")


def test_attention_mask_rejects_mismatched_inputs():
    layer = AttentionMask(8)
    with pytest.raises(ValueError, match="takes \\[trunk, mask_features\\]"):
        layer.build((None, 6, 6, 8))
    with pytest.raises(ValueError, match="spatial size"):
        AttentionMask(8).build([(None, 6, 6, 8), (None, 3, 3, 8)])
    with pytest.raises(ValueError, match="was created for 8 channels"):
        AttentionMask(8).build([(None, 6, 6, 4), (None, 6, 6, 4)])


# Caffe's pooling and interpolation.


def caffe_max_pool(x):
    """Caffe's 3x3/2 max pool in ceil mode: the last window is clipped at the border."""
    height, width = x.shape[1:3]
    out_h, out_w = -(-(height - 3) // 2) + 1, -(-(width - 3) // 2) + 1
    out = np.empty((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            out[:, i, j] = x[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("size", [(2, 3), (7, 9), (8, 8), (14, 13)])
def test_max_pool_is_caffe_ceil_mode_even_on_negative_inputs(size):
    x = random_inputs((2, *size, 3), low=-5.0, high=-1.0)
    pooled = numpy(CaffeMaxPool2D()(x))
    np.testing.assert_array_equal(pooled, caffe_max_pool(x))
    assert pooled.shape[1:3] == (size[0] // 2, size[1] // 2)


def bilinear(x, size, align_corners):
    """Bilinear resize, the textbook way: each output pixel from its 4 source neighbours."""

    def sources(out_size, in_size):
        if align_corners:
            return np.arange(out_size) * ((in_size - 1) / (out_size - 1) if out_size > 1 else 0.0)
        return np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)

    rows, cols = sources(size[0], x.shape[1]), sources(size[1], x.shape[2])
    out = np.zeros((x.shape[0], *size, x.shape[3]))
    for i, r in enumerate(rows):
        r0, fr = int(np.floor(r)), r - np.floor(r)
        r1 = min(r0 + 1, x.shape[1] - 1)
        for j, c in enumerate(cols):
            c0, fc = int(np.floor(c)), c - np.floor(c)
            c1 = min(c0 + 1, x.shape[2] - 1)
            top = x[:, r0, c0] * (1 - fc) + x[:, r0, c1] * fc
            bottom = x[:, r1, c0] * (1 - fc) + x[:, r1, c1] * fc
            out[:, i, j] = top * (1 - fr) + bottom * fr
    return out


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("shapes", [((7, 7), (14, 14)), ((3, 6), (7, 13)), ((1, 1), (4, 4))])
def test_mask_upsampling_is_bilinear_to_the_reference_size(align_corners, shapes):
    (height, width), size = shapes
    x = random_inputs((2, height, width, 3))
    reference = np.zeros((2, *size, 5), "float32")
    resized = numpy(ResizeLike(align_corners)([x, reference]))
    np.testing.assert_allclose(resized, bilinear(x, size, align_corners), rtol=1e-5, atol=1e-5)


def test_caffe_interpolation_maps_corners_onto_corners():
    x = random_inputs((1, 7, 7, 2))
    resized = numpy(ResizeLike(align_corners=True)([x, np.zeros((1, 14, 14, 1), "float32")]))
    np.testing.assert_allclose(resized[:, [0, 0, -1, -1], [0, -1, 0, -1]], x[:, [0, 0, -1, -1], [0, -1, 0, -1]])


# CIFAR variants and the zoo's contract.


def test_cifar_models_take_32x32_images_with_stages_at_32_16_8(attention56_cifar):
    assert attention56_cifar.input_shape == (None, 32, 32, 3)
    assert attention56_cifar(CIFAR_IMAGES).shape == (2, 10)
    masks = attention_zoo.attention_outputs(attention56_cifar)
    assert {k: tuple(v.shape[1:]) for k, v in masks.items()} == {
        "stage1_module1_attention": (32, 32, 64),
        "stage2_module1_attention": (16, 16, 128),
        "stage3_module1_attention": (8, 8, 256),
    }
    # Stage ends are named by their true strides, so features_only (strides 4 to 32) refuses.
    assert [attention56_cifar.get_layer(f"stage{s}_stride{k}_output") for s, k in [(1, 1), (2, 2), (3, 4), (4, 4)]]
    with pytest.raises(ValueError, match="no multi-scale features"):
        attention_zoo.feature_model(attention56_cifar)


def trunk_depth(model):
    """Weighted layers on the trunk: the stem conv, 3 per unit outside the mask branches, the FC."""
    mask_units = ("_down", "_bottom", "_skip", "_up")
    units = [
        layer.name
        for layer in model.layers
        if layer.name.endswith("_conv3") and not any(part in layer.name for part in mask_units)
    ]
    return 1 + 3 * len(units) + 1


def test_networks_are_as_deep_as_their_names(attention56):
    # Both layouts have 36m + 20 trunk layers, m the modules per stage (on average on ImageNet).
    assert trunk_depth(attention56) == 56


def test_cifar_layout_is_the_papers_with_equal_modules_and_two_units_per_stage(attention56_cifar):
    # Section 4.1: the same number m of modules in each of the three stages, plus two units per
    # stage, so 36m + 20 trunk layers; no last stage after the 8 px one.
    attention92_cifar = attention_zoo.get("attention92_cifar", num_classes=10)
    for model, modules, depth in [(attention56_cifar, 1, 56), (attention92_cifar, 2, 92)]:
        assert trunk_depth(model) == depth
        per_stage = [len([m for m in attention_layers(model) if m.name.startswith(f"stage{s}_")]) for s in (1, 2, 3)]
        assert per_stage == [modules] * 3
        for stage in (1, 2, 3):
            # The closing unit follows the last module and ends the stage.
            closing = model.get_layer(f"stage{stage}_post_unit_bn1")
            assert closing.input is model.get_layer(f"stage{stage}_module{modules}_post_add").output
            stage_end = model.get_layer(f"stage{stage}_stride{2 ** (stage - 1)}_output")
            assert stage_end.input is model.get_layer(f"stage{stage}_post_unit_add").output
        assert not [layer.name for layer in model.layers if layer.name.startswith("stage4_unit")]
    # Parameters fixed by the paper's counts, not by the text: 1.9 M reported for Attention-92.
    assert attention_zoo.count_params(attention56_cifar) == 1_030_362
    assert attention_zoo.count_params(attention92_cifar) == 1_841_242
    assert attention_zoo.count_params(attention92_cifar) == pytest.approx(1.9e6, rel=0.05)
    for name, model in [("attention56_cifar", attention56_cifar), ("attention92_cifar", attention92_cifar)]:
        info = attention_zoo.model_info(name)
        assert info.params == attention_zoo.count_params(model)
        assert info.gmacs == pytest.approx(attention_zoo.count_macs(model) / 1e9, rel=1e-9)
    assert attention_zoo.model_info("attention92_cifar").reported["cifar10_error"] == 4.99


def test_a_network_without_a_last_stage_needs_its_width_and_stride_unchanged():
    with pytest.raises(ValueError, match="final_units=0"):
        attention_zoo.get("attention56", final_units=0)


def test_config_and_keras_file_round_trips_keep_outputs_and_masks(attention56_cifar, tmp_path):
    loaded = assert_keras_file_round_trip(attention56_cifar, CIFAR_IMAGES, tmp_path)
    maps = [keras.Model(m.input, attention_zoo.attention_outputs(m))(CIFAR_IMAGES) for m in (attention56_cifar, loaded)]
    assert len(maps[1]) == 3
    for name in maps[0]:
        np.testing.assert_allclose(numpy(maps[1][name]), numpy(maps[0][name]), rtol=1e-6, atol=1e-6)


def test_gradients_reach_every_weight():
    # One module with a mask skip holds every kind of layer; the rest are plain units.
    options = {**TINY, "modules": (1, 0, 0), "skips": (1, 0, 0)}
    model = attention_zoo.get("attention56_cifar", num_classes=10, **options)
    assert len(attention_layers(model)) == 1
    assert_gradients_reach_every_weight(model, CIFAR_IMAGES)


# Input sizes.


def test_sizes_left_out_get_the_static_default_size():
    assert attention_zoo.model_info("attention56").default_input_size == 224
    assert attention_zoo.model_info("attention56_cifar").default_input_size == 32
    model = attention_zoo.get("attention56_cifar", input_shape=(None, 13, 3), num_classes=10, **TINY)
    assert model.input_shape == (None, 32, 13, 3)
    # 13 -> 6 -> 3 -> 1 in the mask, then upsampled to 3, 6 and back to the trunk's 13.
    sizes = [model.get_layer(f"stage1_module1_{name}").output.shape[2] for name in ("down1_add", "bottom_add")]
    assert sizes == [6, 1]
    assert attention_zoo.attention_outputs(model)["stage1_module1_attention"].shape[1:] == (32, 13, 64)


def test_imagenet_layout_builds_at_its_minimum_size_and_at_sizes_not_multiples_of_32():
    # 7x7/2 conv: ceil(n / 2); Caffe's ceil-mode pool: floor(n / 2). 31 -> 16 -> 8, 45 -> 23 -> 11;
    # the stage-1 mask then pools 8 -> 4 -> 2 -> 1 and 11 -> 5 -> 2 -> 1 and upsamples back.
    # (Pooling and upsampling at odd sizes are checked numerically above.)
    model = attention_zoo.get("attention56", input_shape=(31, 45, 3), num_classes=10, **TINY)
    assert model.get_layer("stage1_module1_bottom_add").output.shape[1:3] == (1, 1)
    masks = attention_zoo.attention_outputs(model)
    assert masks["stage1_module1_attention"].shape[1:] == (8, 11, 256)
    assert masks["stage3_module1_attention"].shape[1:] == (2, 3, 1024)
    assert model.output.shape == (None, 10)


def test_incompatible_input_sizes_get_clear_errors(attention56_cifar):
    with pytest.raises(ValueError, match="attention56 needs inputs of at least 31x31"):
        attention_zoo.get("attention56", input_shape=(30, 64, 3))
    with pytest.raises(ValueError, match="attention56_cifar needs inputs of at least 8x8"):
        attention_zoo.get("attention56_cifar", input_shape=(7, 7, 3))
    # The minimum follows the architecture: a mask with 3 skips pools 4 times.
    with pytest.raises(ValueError, match=r"at least 16x16 pixels: its mask branches max-pool up to 4 times"):
        attention_zoo.get("attention56_cifar", input_shape=(12, 12, 3), skips=(3, 1, 0), **TINY)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 32, 32, 3\)"):
        attention56_cifar(random_inputs((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="unknown option"):
        attention_zoo.get("attention56_cifar", mask_type="mixed")
