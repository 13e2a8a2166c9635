"""Attention U-Net gate maps (lands with the Attention U-Net family)."""

from attention_zoo.visualization import collect_attention
from tests.visualization.test_family_maps import IMAGES, zoo_model


def test_attention_unet_gate_coefficients_are_gates_at_each_decoder_resolution():
    model = zoo_model("attention_unet", input_shape=(64, 64, 3))
    maps = collect_attention(model, IMAGES)
    assert [(key, m.kind, m.values.shape, m.stride) for key, m in maps.items()] == [
        ("attention_gate3", "gate", (2, 8, 8), 8.0),
        ("attention_gate2", "gate", (2, 16, 16), 4.0),
        ("attention_gate1", "gate", (2, 32, 32), 2.0),
    ]
    for part in maps.values():
        assert 0.0 <= part.values.min() and part.values.max() <= 1.0
        assert part.upsampled.shape == (2, 64, 64)


