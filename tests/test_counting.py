"""Parameter and MAC counts follow the papers' conventions."""

import keras
import pytest

import attention_zoo


def test_parameters_exclude_batchnorm_moving_statistics_like_pytorch():
    model = attention_zoo.get("resnet50")
    statistics = sum(
        2 * layer.gamma.shape[0]
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    assert statistics == 53_120
    assert attention_zoo.count_params(model) == model.count_params() - statistics == 25_557_032


def test_macs_count_convolutions_and_dense_layers_at_their_output_size():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)  # 16*16 * 9*3 * 8
    x = keras.layers.Conv2D(8, 3, padding="same", groups=4)(x)  # 16*16 * 9*2 * 8
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)  # 8 * 10
    model = keras.Model(inputs, outputs)
    assert attention_zoo.count_macs(model) == 16 * 16 * 27 * 8 + 16 * 16 * 18 * 8 + 80


def test_macs_need_static_shapes_or_an_input_shape():
    model = attention_zoo.get("resnet18")
    with pytest.raises(ValueError, match="Pass input_shape"):
        attention_zoo.count_macs(model)
    assert attention_zoo.count_macs(model, input_shape=(224, 224, 3)) / 1e9 == pytest.approx(1.82, rel=0.01)


def test_macs_at_another_size_are_those_of_the_model_built_at_that_size_and_leave_the_model_as_it_was():
    flexible = attention_zoo.get("sk_resnet18", num_classes=10)
    built_at_96 = attention_zoo.get("sk_resnet18", num_classes=10, input_shape=(96, 96, 3))
    calls = [len(layer._inbound_nodes) for layer in flexible.layers]
    weights = len(flexible.weights)

    assert attention_zoo.count_macs(flexible, input_shape=(96, 96, 3)) == attention_zoo.count_macs(built_at_96)
    assert [len(layer._inbound_nodes) for layer in flexible.layers] == calls
    assert len(flexible.weights) == weights


def test_a_nested_model_is_costed_at_the_size_it_is_called_with():
    inner_input = keras.Input((None, None, 3))
    inner = keras.Model(inner_input, keras.layers.Conv2D(8, 3, padding="same")(inner_input))
    outer_input = keras.Input((None, None, 3))
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(inner(outer_input)))
    model = keras.Model(outer_input, outputs)
    assert attention_zoo.count_macs(model, input_shape=(16, 16, 3)) == 16 * 16 * 27 * 8 + 8 * 4


def test_a_sequential_model_is_costed_at_another_size():
    layers = [keras.layers.Conv2D(8, 3, strides=2, padding="same"), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
    model = keras.Sequential([keras.Input((None, None, 3)), *layers])
    assert attention_zoo.count_macs(model, input_shape=(16, 16, 3)) == 8 * 8 * 27 * 8 + 8 * 4


def test_an_input_shape_applies_to_single_input_models_only():
    images, masks = keras.Input((None, None, 3)), keras.Input((None, None, 1))
    features = keras.layers.Conv2D(8, 3, padding="same")(keras.layers.Concatenate()([images, masks]))
    model = keras.Model([images, masks], features, name="two_inputs")
    with pytest.raises(ValueError, match="'two_inputs' has 2"):
        attention_zoo.count_macs(model, input_shape=(16, 16, 3))
