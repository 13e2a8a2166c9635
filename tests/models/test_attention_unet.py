"""Attention U-Net (Oktay et al., 2018) in 2-D: the official architecture, its options and the
zoo's contract, on every backend.

Most tests share one small configuration (base width 4, depth 4, 32x32): on JAX every new
weight shape costs an XLA compilation of its initialiser, so new shapes are kept few."""

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo.layers.attention_gate import AttentionGate
from attention_zoo.models.attention_unet import AttentionUNetSpec
from attention_zoo.utils.counting import conv_macs, count_macs
from tests.helpers import (
    assert_gradients_reach_every_weight,
    assert_keras_file_round_trip,
    check_mixed_precision,
    check_model_contract,
    random_inputs,
    randomize_weights,
)

pytestmark = pytest.mark.every_backend

IMAGES = random_inputs((2, 32, 32, 3))
# Biases the batch mean of a following training-mode BatchNorm cancels: the official code keeps
# conv biases before every BN, and the gate's output BN (beta) feeds the 1x1 conv-BN-ReLU that
# combines the gated skip.
BIASES_BEFORE_BATCHNORM = (
    "conv1/bias",
    "conv2/bias",
    "gating_conv/bias",
    "combine_conv/bias",
    "out_conv/bias",
    "out_bn/beta",
)


def tiny(**options):
    options = {"base_filters": 4, "depth": 4, "input_shape": (32, 32, 3), "num_classes": 3, **options}
    return attention_zoo.get("attention_unet", **options)


def gates(model):
    return {layer.name: layer for layer in model.layers if isinstance(layer, AttentionGate)}


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_model_info_cites_the_paper_and_its_pancreas_results():
    info = attention_zoo.model_info("attention_unet")
    assert info.family == "attention_unet"
    assert info.paper.title == "Attention U-Net: Learning Where to Look for the Pancreas"
    assert info.citation.startswith("@inproceedings{oktay2018attention")
    assert info.reported["pancreas_ct150_dice"] == 0.840
    assert info.reported["unet_pancreas_ct150_dice"] == 0.814
    assert (info.default_input_size, info.min_input_size) == (256, 16)


def official_params(base, in_channels, num_classes, gates=True, deep_supervision=True, dims=3):
    """Parameters of the official pancreas models (unet_CT_dsv_3D; with gates
    unet_CT_single_att_dsv_3D), counted from their module definitions; dims=2 counts the same
    modules with 2-D kernels (3x3 convs, 2x2 theta)."""

    def conv(cin, cout, kernel, bias=True):
        return cin * cout * kernel**dims + (cout if bias else 0)

    def double_conv(cin, cout):  # UnetConv3: 2 x (3x3x3 conv with bias, BN)
        return conv(cin, cout, 3) + conv(cout, cout, 3) + 4 * cout

    f = [base * 2**level for level in range(5)]
    total = double_conv(in_channels, f[0]) + sum(double_conv(a, b) for a, b in zip(f, f[1:]))
    total += sum(double_conv(deep + skip, skip) for deep, skip in zip(f[1:], f))  # UnetUp3_CT
    if deep_supervision:  # UnetDsv3 heads on the four decoder levels, fused by `final`
        total += sum(conv(c, num_classes, 1) for c in f[:4]) + conv(4 * num_classes, num_classes, 1)
    else:
        total += conv(f[0], num_classes, 1)
    if gates:
        total += conv(f[4], f[4], 1) + 2 * f[4]  # UnetGridGatingSignal3
        for level in (1, 2, 3):  # MultiAttentionBlock: grid gate (inter = in) + combine_gates
            c, g = f[level], f[level + 1]
            gate = conv(c, c, 2, bias=False) + conv(g, c, 1) + conv(c, 1, 1) + conv(c, c, 1) + 2 * c
            total += gate + conv(c, c, 1) + 2 * c
    return total


def _as_3d(model):
    """The parameters of the same network with every k x k kernel made k x k x k."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += kh * kw * kh * cin * cout + (cout if layer.use_bias else 0)
        elif isinstance(layer, keras.layers.BatchNormalization):
            total += 2 * layer.gamma.shape[0]
    return total


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("deep_supervision", [False, True])
def test_the_network_is_the_official_pancreas_model_in_2d(gated, deep_supervision):
    model = tiny(deep_supervision=deep_supervision, attention_gates=gated)
    count = official_params(4, 3, 3, gates=gated, deep_supervision=deep_supervision, dims=2)
    assert attention_zoo.count_params(model) == count
    assert _as_3d(model) == official_params(4, 3, 3, gates=gated, deep_supervision=deep_supervision)


def test_registered_parameter_count_is_the_default_configuration_as_built():
    # `get("attention_unet")` builds base 64, depth 4, 3 channels and get's num_classes=1000;
    # the formula is checked against built models above.
    info = attention_zoo.model_info("attention_unet")
    assert info.params == official_params(64, 3, 1000, deep_supervision=False, dims=2)


def test_the_official_formula_gives_the_papers_unet_size_in_the_papers_setting():
    # feature_scale=4 (base 16), one CT channel, two classes. The paper reports 5.88 M for its
    # U-Net and 6.40 M for Attention U-Net, which the released single-gate code (6.21 M)
    # does not reproduce; the two-gate variant (unet_CT_multi_att_dsv_3D) has 6.47 M.
    assert official_params(16, 1, 2, gates=False) == pytest.approx(5.88e6, rel=2e-3)
    assert official_params(16, 1, 2, gates=True) == 6_213_613


def test_missing_spatial_sizes_take_a_static_default_of_256():
    model = tiny(input_shape=(None, None, 3))
    assert tuple(model.input.shape) == (None, 256, 256, 3)
    assert tuple(model.output.shape) == (None, 256, 256, 3)
    assert tuple(tiny(input_shape=(None, 64, 3)).input.shape) == (None, 256, 64, 3)
    assert tuple(tiny(input_shape=(None, None, 3), default_size=64).output.shape) == (None, 64, 64, 3)


def test_output_is_per_pixel_logits_at_full_resolution_and_the_model_round_trips(tmp_path):
    model = tiny()
    check_model_contract(model, IMAGES, tmp_path, (2, 32, 32, 3))


def test_every_skip_but_the_highest_resolution_one_is_gated():
    model = tiny()
    assert sorted(gates(model)) == ["attention_gate1", "attention_gate2", "attention_gate3"]  # depth - 1
    maps = attention_zoo.attention_outputs(model)
    assert {name: tuple(m.shape) for name, m in maps.items()} == {
        "attention_gate1": (None, 16, 16, 1),
        "attention_gate2": (None, 8, 8, 1),
        "attention_gate3": (None, 4, 4, 1),
    }
    # The full-resolution encoder features reach the top decoder level untouched.
    concat = model.get_layer("decoder0_concat")
    assert concat.input[0] is model.get_layer("encoder0_relu2").output


def test_gate_at_level_l_is_gated_by_decoder_level_l_plus_one_and_the_deepest_by_the_bottleneck():
    model = tiny()
    for name, layer in gates(model).items():
        level = int(name[-1])
        skip, signal = layer.input
        assert skip is model.get_layer(f"stage{level - 1}_output").output  # encoder level at stride 2**level
        source = "gating_relu" if level == 3 else f"decoder{level + 1}_relu2"
        assert signal is model.get_layer(source).output
    assert model.get_layer("gating_conv").input is model.get_layer("stage3_output").output
    # The official gates: theta 2x2/2 without bias, gate width = skip width.
    gate = model.get_layer("attention_gate2")
    assert gate.sub_sample_factor == 2 and gate.inter_channels == gate.channels == 16
    assert tuple(gate.theta.kernel.shape) == (2, 2, 16, 16) and not gate.theta.use_bias


def test_gate_coefficients_lie_in_the_unit_interval():
    model = tiny()
    randomize_weights(model, seed=1, scale=0.3)
    maps = keras.Model(model.input, attention_zoo.attention_outputs(model))(IMAGES, training=False)
    for coefficients in maps.values():
        coefficients = numpy(coefficients)
        assert np.all((coefficients > 0) & (coefficients < 1))


def test_unet_encoder_levels_are_named_stage_outputs_by_stride_so_pyramid_features_work():
    model = tiny(depth=5, include_top=False)
    for stage in range(5):
        assert model.get_layer(f"stage{stage}_output").output.shape[1] == 32 // 2 ** (stage + 1)
    assert tuple(model.output.shape) == (None, 32, 32, 4)  # without the top: full-resolution features
    features = attention_zoo.feature_model(model)(IMAGES)
    assert {level: tuple(f.shape) for level, f in features.items()} == {
        "P2": (2, 8, 8, 16),
        "P3": (2, 4, 4, 32),
        "P4": (2, 2, 2, 64),
        "P5": (2, 1, 1, 128),
    }


def test_deep_supervision_fuses_upsampled_per_level_predictions_into_the_logits(tmp_path):
    model = tiny(deep_supervision=True)
    randomize_weights(model, seed=2)
    outputs = model(IMAGES, training=False)
    aux = ["aux_stride1", "aux_stride2", "aux_stride4", "aux_stride8"]
    assert sorted(outputs) == aux + ["logits"]
    assert all(tuple(value.shape) == (2, 32, 32, 3) for value in outputs.values())
    # logits = 1x1 conv of the aux predictions, full resolution first (the official dsv fusion).
    fuse = model.get_layer("logits")
    stacked = np.concatenate([numpy(outputs[key]) for key in aux], -1)
    expected = stacked @ numpy(fuse.kernel)[0, 0] + numpy(fuse.bias)
    np.testing.assert_allclose(numpy(outputs["logits"]), expected, rtol=1e-4, atol=1e-4)
    # The auxiliary heads are bilinear upsamplings of coarse predictions.
    assert model.get_layer("dsv2_upsample").interpolation == "bilinear"
    loaded = assert_keras_file_round_trip(model, IMAGES, tmp_path)
    assert sorted(attention_zoo.attention_outputs(loaded)) == ["attention_gate1", "attention_gate2", "attention_gate3"]


def test_macs_of_the_gates_and_their_convolutions_are_counted():
    gated, plain = tiny(), tiny(attention_gates=False)
    extra = conv_macs((1, 2, 2, 64), (1, 1), 64, 64)  # the gating signal on the 2x2 bottleneck
    for layer in gates(gated).values():
        skip = layer.input[0].shape
        extra += layer.count_macs(skip)
        extra += conv_macs(skip, (1, 1), skip[-1], skip[-1])  # the combining 1x1 conv
    assert count_macs(gated) == count_macs(plain) + extra > count_macs(plain)


def test_gradients_reach_every_trainable_weight():
    assert_gradients_reach_every_weight(tiny(), IMAGES, biases_before_batchnorm=BIASES_BEFORE_BATCHNORM)


def test_transposed_convolution_upsampling_and_the_plain_unet_baseline():
    model = tiny(upsampling="transpose")
    ups = [model.get_layer(f"decoder{level}_upsample") for level in range(4)]
    assert all(isinstance(layer, keras.layers.Conv2DTranspose) and layer.strides == (2, 2) for layer in ups)
    assert tuple(model(IMAGES).shape) == (2, 32, 32, 3)
    plain = tiny(attention_gates=False)
    assert not gates(plain) and "gating_conv" not in {layer.name for layer in plain.layers}
    assert attention_zoo.count_params(plain) < attention_zoo.count_params(tiny())


def test_zoo_encoder_is_the_registry_backbone_and_the_output_is_full_resolution(tmp_path):
    images = random_inputs((1, 64, 64, 3))
    backbone = attention_zoo.get("resnet18", include_top=False, input_shape=(64, 64, 3))
    randomize_weights(backbone, seed=3)
    weights = tmp_path / "resnet18.weights.h5"
    backbone.save_weights(weights)

    model = attention_zoo.get(
        "attention_unet", encoder="resnet18", encoder_weights=str(weights), input_shape=(64, 64, 3), num_classes=3
    )
    encoder = model.get_layer("encoder")
    assert attention_zoo.count_params(encoder) == attention_zoo.count_params(backbone)
    for loaded, saved in zip(encoder.weights, backbone.weights):
        np.testing.assert_array_equal(numpy(loaded), numpy(saved))
    # Taps: the stem's last stride-2 feature (what the stem max-pool reads) and P2..P5.
    assert encoder.output["stride2"] is encoder.get_layer("stem_pool_pad").input
    assert encoder.output["stride32"] is encoder.get_layer("stage4_output").output
    assert sorted(gates(model)) == ["attention_gate2", "attention_gate3", "attention_gate4"]
    assert tuple(model(images).shape) == (1, 64, 64, 3)
    assert_keras_file_round_trip(model, images, tmp_path)


def test_zoo_encoder_with_a_deep_stem_taps_its_last_stride_two_layer():
    model = attention_zoo.get(
        "attention_unet", encoder="resnet18", encoder_options={"stem": "deep"}, input_shape=(32, 32, 3), num_classes=2
    )
    encoder = model.get_layer("encoder")
    assert encoder.output["stride2"] is encoder.get_layer("stem_pool_pad").input
    assert encoder.output["stride2"].shape[1] == 16
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        attention_zoo.get("attention_unet", encoder="resnet18", encoder_stride2_layer="nope", input_shape=(32, 32, 3))


def test_sizes_not_divisible_by_the_total_stride_are_refused_with_the_required_multiple():
    with pytest.raises(ValueError, match=r"attention_unet: input size 60x64 is not a multiple of 16 \(2\*\*depth"):
        tiny(input_shape=(60, 64, 3))
    with pytest.raises(ValueError, match="input size 48x48 is not a multiple of 32"):
        attention_zoo.get("attention_unet", encoder="resnet18", input_shape=(48, 48, 3))


def test_pad_to_multiple_pads_inside_the_model_and_crops_every_output_back(tmp_path):
    images = random_inputs((2, 27, 30, 3), seed=4)
    padded_model = tiny(input_shape=(27, 30, 3), pad_to_multiple=True, deep_supervision=True)
    assert isinstance(padded_model.get_layer("pad_to_multiple"), keras.layers.ZeroPadding2D)
    reference = tiny(input_shape=(32, 32, 3), deep_supervision=True)
    randomize_weights(padded_model, seed=5)
    reference.set_weights(padded_model.get_weights())
    outputs = padded_model(images, training=False)
    # 27 -> 32 pads 2 rows on top and 3 below; 30 -> 32 one column each side.
    expected = reference(np.pad(images, ((0, 0), (2, 3), (1, 1), (0, 0))), training=False)
    for key, value in outputs.items():
        assert tuple(value.shape) == (2, 27, 30, 3)
        np.testing.assert_allclose(numpy(value), numpy(expected[key])[:, 2:29, 1:31], rtol=1e-5, atol=1e-5)
    assert_keras_file_round_trip(padded_model, images, tmp_path)


def test_attention_unet_runs_in_mixed_precision():
    check_mixed_precision(lambda: tiny(), IMAGES)


def test_bad_options_get_clear_errors():
    with pytest.raises(ValueError, match="unknown option"):
        tiny(filters=8)
    with pytest.raises(ValueError, match="pooling must be None"):
        tiny(include_top=False, pooling="avg")
    with pytest.raises(ValueError, match="deep_supervision needs"):
        tiny(include_top=False, deep_supervision=True)
    with pytest.raises(ValueError, match="upsampling must be one of"):
        tiny(upsampling="nearest")
    with pytest.raises(ValueError, match="decoder_filters needs 4 widths"):
        tiny(decoder_filters=(16, 8))
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        AttentionUNetSpec(depth=0)
    with pytest.raises(attention_zoo.UnknownModelError, match="Unknown model 'resnet19'"):
        tiny(encoder="resnet19", input_shape=(64, 64, 3))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="LiteRT export through the TensorFlow converter")
def test_exports_to_litert_with_builtin_ops_only(tmp_path):
    import tensorflow as tf

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the litert extra is optional; TF still ships the interpreter
        Interpreter = tf.lite.Interpreter
    model = tiny(input_shape=(27, 30, 3), pad_to_multiple=True)
    randomize_weights(model, seed=6)
    images = random_inputs((1, 27, 30, 3), seed=7)
    path = str(tmp_path / "attention_unet.tflite")
    model.export(
        path,
        format="litert",
        input_signature=[keras.InputSpec(shape=(1, 27, 30, 3), dtype="float32")],
        target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]},
    )
    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(logits, numpy(model(images, training=False)), rtol=1e-4, atol=1e-4)
