"""The ResNet family, model by model: faithful to the reference layouts, and every model
keeps the zoo's contract (shapes, config and `.keras` round trips)."""

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.layers.conv_bn import ConvBN
from attention_zoo.models.resnet import ResNetSpec
from tests.helpers import (
    RESNETS,
    check_mixed_precision,
    check_model_contract,
    random_inputs,
    registered_model,
    shares_registered_model,
)

LARGE = {"senet154", "resnet152", "se_resnet152", "legacy_se_resnet152"}
SMALL_IMAGES = random_inputs((2, 64, 64, 3))


def marks(name):
    # Its export test (tests/export/test_every_model.py) reads the same built model.
    return [shares_registered_model(name)] + ([pytest.mark.slow] if name in LARGE or "101" in name else [])


@pytest.mark.parametrize("name", [pytest.param(n, marks=marks(n)) for n in RESNETS])
def test_registered_model_meets_the_zoo_contract(name, tmp_path):
    info = attention_zoo.model_info(name)
    model = registered_model(name)
    if info.params is not None:
        assert attention_zoo.count_params(model) == info.params
    check_model_contract(model, SMALL_IMAGES, tmp_path, (2, 1000))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=marks(n)) for n in RESNETS if attention_zoo.model_info(n).gmacs is not None]
)
def test_macs_at_224_are_within_two_percent_of_the_reference_for_the_layout(name):
    model = registered_model(name)
    gmacs = attention_zoo.count_macs(model, input_shape=(224, 224, 3)) / 1e9
    assert gmacs == pytest.approx(attention_zoo.model_info(name).gmacs, rel=0.02)


def conv_layers(model):
    return [layer for layer in model.layers if isinstance(layer, ConvBN)]


def test_stride_two_convolutions_pad_explicitly_like_pytorch():
    model = attention_zoo.get("se_resnext50_32x4d")
    strided = [layer for layer in conv_layers(model) if layer.strides == (2, 2) and layer.kernel_size != (1, 1)]
    assert strided
    for layer in strided:
        assert layer.padding == "valid"
        assert isinstance(model.get_layer(f"{layer.name}_pad"), keras.layers.ZeroPadding2D)


def test_batchnorm_uses_pytorch_epsilon_and_momentum():
    model = attention_zoo.get("sk_resnet18")
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 20 and all(layer.epsilon == 1e-5 and layer.momentum == 0.9 for layer in norms)


@pytest.mark.parametrize("name, strided_conv", [("se_resnet50", "layer2_0_conv2"), ("legacy_se_resnet50", "layer2_0_conv1")])
def test_timm_layout_strides_the_3x3_and_the_official_senet_strides_the_first_1x1(name, strided_conv):
    model = attention_zoo.get(name)
    strided = {layer.name for layer in conv_layers(model) if layer.strides == (2, 2) and layer.name.startswith("layer2_0")}
    assert strided == {strided_conv, "layer2_0_downsample"}


@pytest.mark.parametrize("size, pooled", [(64, 16), (65, 16), (67, 17), (68, 17)])
def test_official_senet_stem_pool_is_caffe_ceil_mode(size, pooled):
    # conv 7x7/2 pad 3 -> floor((size - 1) / 2) + 1; ceil-mode pool 3/2 -> ceil((s - 3) / 2) + 1
    stem = (size - 1) // 2 + 1
    assert -(-(stem - 3) // 2) + 1 == pooled
    model = attention_zoo.get("legacy_se_resnet50", include_top=False)
    pool = keras.Model(model.input, model.get_layer("stem_pool").output)
    assert pool(random_inputs((1, size, size, 3))).shape[1] == pooled


def test_sknet50_attention_widths_follow_the_paper():
    model = attention_zoo.get("sknet50")
    widths = [model.get_layer(f"layer{s}_0_conv2").attention_channels for s in (1, 2, 3, 4)]
    assert widths == [32, 32, 32, 64]


def test_bam_sits_after_stages_one_to_three_not_inside_blocks():
    model = attention_zoo.get("bam_resnet50")
    bams = [layer.name for layer in model.layers if isinstance(layer, attention_zoo.layers.BottleneckAttention)]
    assert bams == ["bam1", "bam2", "bam3"]


def test_eca_kernel_sizes_per_stage_are_3_5_5_7():
    model = attention_zoo.get("eca_resnet50")
    kernels = [model.get_layer(f"layer{s}_0_eca").kernel_size for s in (1, 2, 3, 4)]
    assert kernels == [3, 5, 5, 7]


def test_any_block_can_take_any_attention_by_name():
    model = attention_zoo.get("resnet18", attention="bam", attention_options={"reduction": 8}, num_classes=3)
    gates = [layer for layer in model.layers if isinstance(layer, attention_zoo.layers.BottleneckAttention)]
    assert len(gates) == 8  # one per basic block
    assert model(SMALL_IMAGES).shape == (2, 3)


def test_blocks_start_as_identity_with_zero_initialised_last_batchnorm():
    model = attention_zoo.get("resnet18")
    assert np.all(keras.ops.convert_to_numpy(model.get_layer("layer1_0_conv2").bn.gamma) == 0)
    assert not ResNetSpec(zero_init_last=False).zero_init_last


@pytest.mark.parametrize("name", ["se_resnet18", "cbam_resnet18", "eca_resnet50", "bam_resnet50", "sk_resnet18"])
def test_attention_models_run_in_mixed_precision(name):
    check_mixed_precision(lambda: attention_zoo.get(name, num_classes=4), SMALL_IMAGES)


def test_spec_rejects_invalid_architectures():
    with pytest.raises(ValueError, match="block must be one of"):
        ResNetSpec(block="inverted")
    with pytest.raises(ValueError, match="4 stages"):
        ResNetSpec(layers=(2, 2, 2))
