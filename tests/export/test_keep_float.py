"""Selective int8 (`keep_float`): the layers a user names, or those the model declares
int8-sensitive, stay float32 in an otherwise int8 file, with builtin ops only.

Why it exists: int8 cannot hold a spatial transformer's sampling coordinates to sub-pixel
precision, and the trained quickstart STN's full-integer file agreed with Keras on only
92-94 % of test digits; with its theta regression and sampler kept float, 99 %."""

import numpy as np
import pytest

import attention_zoo
from attention_zoo.export import ExportError, export_tflite, make_interpreter, selective, verify


def fixed_theta_transformer():
    """A spatial transformer alone, with a zoom-and-shift theta that does not depend on the
    image (zero regression kernel), and cluttered digits to run it on."""
    import keras

    from attention_zoo.data.synthetic import digit_canvases
    from attention_zoo.layers.spatial_transformer import SpatialTransformer

    keras.utils.set_random_seed(0)
    transformer = SpatialTransformer(output_size=(30, 30), name="spatial_transformer")
    inputs = keras.Input((60, 60, 1))
    model = keras.Model(inputs, transformer(inputs), name="transformer_only")
    transformer.regression.bias.assign(np.array([0.7, 0.05, 0.2, -0.03, 0.75, -0.25], "float32"))
    images = digit_canvases(32, seed=0, canvas_size=60, clutter=4).images.astype("float32") / 255.0
    return model, images


def run_file(path, images):
    interpreter, _ = make_interpreter(path)
    return verify.run_file(interpreter, [image[None] for image in images])[0]


def test_auto_keeps_a_spatial_transformers_theta_and_sampler_float_and_the_rest_int8(export_dir):
    model = attention_zoo.get("stn_cnn", num_classes=10, input_shape=(60, 60, 1))
    images = np.random.default_rng(0).uniform(size=(16, 60, 60, 1)).astype("float32")

    report = export_tflite(
        model, export_dir / "stn.tflite", quantize="int8", keep_float="auto", representative_data=images
    )

    assert report.float_layers == ["spatial_transformer/regression", "spatial_transformer/sampler"]
    interpreter, _ = make_interpreter(report.path)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8, "int8 input and output as without keep_float"
    dtypes = {detail["name"]: np.dtype(detail["dtype"]).name for detail in interpreter.get_tensor_details()}
    sampler = {dtype for name, dtype in dtypes.items() if "/sampler" in name and "GatherV2" in name}
    convolutions = {dtype for name, dtype in dtypes.items() if "conv" in name and "convolution" in name}
    assert sampler == {"float32"}, "the sampler's gathers read float pixels"
    assert convolutions == {"int8"}, "the classifier and localisation convolutions stay int8"
    assert not {op for op in report.ops if op.startswith("FLEX") or op == "CUSTOM"}
    assert report.top1_agreement is not None


def test_a_float_sampler_samples_exactly_where_keras_does_and_full_int8_does_not(export_dir):
    model, images = fixed_theta_transformer()
    keras_output = np.asarray(model(images))
    options = dict(quantize="int8", io_dtype="float32", representative_data=images)

    full = export_tflite(model, export_dir / "full.tflite", **options)
    kept = export_tflite(model, export_dir / "kept.tflite", keep_float="auto", **options)

    full_error = np.abs(run_file(full.path, images) - keras_output)
    kept_error = np.abs(run_file(kept.path, images) - keras_output)
    assert full_error.max() > 0.05, "int8 coordinates move the samples by a fraction of a pixel"
    # Float coordinates on the float input read the same pixels with the same weights; what
    # remains is the rounding of the model's output (its last reshape) to int8 steps of 1/255.
    assert kept_error.max() <= 0.5 / 255 + 1e-6


def test_layers_can_be_named_by_their_path_below_the_model(export_dir):
    model, images = fixed_theta_transformer()

    report = export_tflite(
        model, export_dir / "sampler.tflite", quantize="int8", io_dtype="float32",
        keep_float=["spatial_transformer/sampler"], representative_data=images,
    )

    assert report.float_layers == ["spatial_transformer/sampler"]
    interpreter, _ = make_interpreter(report.path)
    gathers = [detail for detail in interpreter.get_tensor_details() if "sampler" in detail["name"]
               and "GatherV2" in detail["name"]]
    assert gathers and all(detail["dtype"] == np.float32 for detail in gathers)


def test_keep_float_mistakes_are_clear_errors(export_dir):
    model, images = fixed_theta_transformer()
    with pytest.raises(ExportError, match="does not have.*did you mean spatial_transformer/sampler"):
        export_tflite(model, export_dir / "a.tflite", quantize="int8", keep_float=["sampler"],
                      representative_data=images)
    with pytest.raises(ExportError, match="quantize='int8' only"):
        export_tflite(model, export_dir / "b.tflite", keep_float="auto")
    with pytest.raises(ExportError, match="io_dtype 'int8' or 'float32'"):
        export_tflite(model, export_dir / "c.tflite", quantize="int8", io_dtype="uint8", keep_float="auto",
                      representative_data=images)
    assert not list(export_dir.glob("*.tflite")), "a refused export writes nothing"


def test_auto_finds_nothing_to_keep_in_models_without_sensitive_layers():
    model = attention_zoo.get("se_resnet18", num_classes=10, input_shape=(32, 32, 3))
    assert selective.resolve(model, "auto") == []
    assert selective.resolve(model, None) == []


def test_ops_are_matched_to_layers_by_name_scope():
    names = [
        "stn_cnn_1/spatial_transformer_1/sampler_1/GatherV2",
        "stn_cnn_1/spatial_transformer_1/regression_1/MatMul;stn_cnn_1/spatial_transformer_1/regression_1/BiasAdd",
        "stn_cnn_1/spatial_transformer_1/loc_conv1_1/convolution",
        "stn_cnn_1/my_spatial_transformer/sampler/Mul",  # another layer whose name ends the same
        "stn_cnn_1/spatial_transformer_12/sampler_3/Add",
    ]
    kept = selective.float_tensor_names(names, ["spatial_transformer/sampler", "spatial_transformer/regression"])
    assert kept == [names[0], names[1], names[4]]


def test_the_command_line_and_recipe_form_is_parsed():
    assert selective.parse("") is None and selective.parse(None) is None
    assert selective.parse("auto") == "auto"
    assert selective.parse("a/b, c") == ["a/b", "c"]
