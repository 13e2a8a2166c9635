"""`attention-zoo show`: a model's attention drawn on an image file, and clean failures."""

import os

import numpy as np
import pytest
from PIL import Image

from attention_zoo.cli import main
from tests.visualization.test_collect import small_static_model


def write_image(path, size=(48, 80), mode="RGB", seed=0):
    """A PNG or JPEG of a bright disc on a gradient (height, width = size)."""
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.stack([cols * 255 // width, rows * 255 // height, np.full_like(rows, 60)], axis=-1)
    disc = (rows - height // 3) ** 2 + (cols - width // 2) ** 2 < (min(size) // 4) ** 2
    pixels[disc] = (250, 240, 30)
    Image.fromarray(pixels.astype("uint8")).convert(mode).save(path)
    return path


def png_pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype="float32")


def test_show_draws_a_registered_models_attention_on_an_image_file(tmp_path, capsys):
    image = write_image(tmp_path / "disc.png")
    output = tmp_path / "figures" / "cbam.png"
    argv = ["show", "cbam_resnet18", "--image", str(image), "--input-size", "64", "-o", str(output), "--dpi", "50"]
    assert main(argv) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    pixels = png_pixels(output)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels.std() > 30.0
    # The disc's yellow shows through the overlays (the image was read and resized, not blank).
    yellowish = (pixels[..., 0] > 150) & (pixels[..., 1] > 140) & (pixels[..., 2] < 110)
    assert yellowish.sum() > 50


def test_show_reads_jpeg_into_a_grayscale_model_and_draws_its_layers_of_choice(tmp_path, capsys):
    image = write_image(tmp_path / "disc.jpg", size=(70, 50))
    output = tmp_path / "stn.png"
    argv = ["show", "stn_cnn", "--image", str(image), "--layer", "spatial_transformer", "-o", str(output)]
    argv += ["--dpi", "40"]
    code = main(argv)
    assert code == 0, capsys.readouterr().err
    assert "at 60x60" in capsys.readouterr().out
    assert png_pixels(output).std() > 20.0


def test_show_loads_a_keras_file(tmp_path, capsys):
    model_path = tmp_path / "small.keras"
    small_static_model().save(model_path)
    output = tmp_path / "small.png"
    image = write_image(tmp_path / "disc.png")
    argv = ["show", str(model_path), "--image", str(image), "-o", str(output), "--kind", "overlay", "--dpi", "40"]
    assert main(argv) == 0
    assert "at 32x32" in capsys.readouterr().out
    assert png_pixels(output).std() > 20.0


@pytest.mark.parametrize("content", [b"this is not an image", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR truncated"])
def test_an_unreadable_image_is_a_message_naming_it_and_no_output(tmp_path, capsys, content):
    image = tmp_path / "broken.png"
    image.write_bytes(content)
    output = tmp_path / "out.png"
    assert main(["show", "cbam_resnet18", "--image", str(image), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert f"cannot read image '{image}'" in error and "not a readable image" in error
    assert "Traceback" not in error
    assert os.listdir(tmp_path) == ["broken.png"]


def test_a_missing_image_is_a_message_naming_it(tmp_path, capsys):
    output = tmp_path / "out.png"
    assert main(["show", "se_resnet18", "--image", str(tmp_path / "nowhere.jpg"), "-o", str(output)]) == 2
    assert f"cannot read image '{tmp_path / 'nowhere.jpg'}': no such file" in capsys.readouterr().err
    assert not output.exists()


def test_a_model_without_attention_or_an_unknown_layer_is_a_message_and_no_output(tmp_path, capsys):
    image = write_image(tmp_path / "disc.png")
    output = tmp_path / "out.png"
    assert main(["show", "resnet18", "--image", str(image), "--input-size", "64", "-o", str(output)]) == 2
    assert "resnet18 has no attention layers" in capsys.readouterr().err
    argv = ["show", "se_resnet18", "--image", str(image), "--input-size", "64", "--layer", "layer9_se"]
    argv += ["-o", str(output)]
    assert main(argv) == 2
    assert "no attention map named 'layer9_se'" in capsys.readouterr().err
    assert not output.exists()


def test_model_options_reach_the_builder(tmp_path, capsys):
    image = write_image(tmp_path / "disc.png")
    output = tmp_path / "nl.png"
    argv = ["show", "resnet18", "--option", "attention=non_local", "--image", str(image), "--input-size", "64",
            "--layer", "layer3_1_non_local", "--query", "10", "50", "-o", str(output), "--dpi", "40"]
    assert main(argv) == 0, capsys.readouterr().err
    assert png_pixels(output).std() > 20.0


def test_pretrained_weights_bring_their_own_preprocessing(tmp_path, capsys, monkeypatch):
    """Under --scale auto the image gets the weights' evaluation transform (centre crop, resize,
    normalisation); without pretrained weights it is resized whole and divided by 255."""
    import attention_zoo
    from attention_zoo.pretrained import Preprocessing
    from attention_zoo.pretrained.loading import PretrainedWeights
    from attention_zoo.visualization import plots

    seen = []
    monkeypatch.setattr(plots, "collect_attention", lambda model, images, **kw: seen.append(images) or {})
    build = attention_zoo.get

    def with_weights(name, **options):
        model = build(name, **options)
        model.pretrained_weights = PretrainedWeights(model=name, source="test", preprocessing=Preprocessing())
        return model

    image = write_image(tmp_path / "wide.png", size=(40, 80))
    argv = ["show", "se_resnet18", "--image", str(image), "--input-size", "32", "-o", str(tmp_path / "x.png")]
    monkeypatch.setattr(attention_zoo, "get", with_weights)
    assert main(argv) == 2  # no maps from the stub: nothing drawn
    monkeypatch.setattr(attention_zoo, "get", build)
    assert main(argv) == 2
    assert "has no attention layers" in capsys.readouterr().err
    normalised, whole = seen
    assert normalised.shape == whole.shape == (1, 32, 32, 3)
    assert normalised.min() < 0.0 < 1.0 < normalised.max()  # ImageNet mean/std normalisation
    assert 0.0 <= whole.min() and whole.max() <= 1.0
    # The centre crop drops the sides of the 80-pixel-wide image: its red ramp no longer
    # reaches the left and right edges, as the whole image's does.
    assert whole[0, :, 0, 0].mean() < 0.05 and whole[0, :, -1, 0].mean() > 0.9
    red = normalised[0, :, :, 0] * 0.229 + 0.485
    assert red[:, 0].mean() > 0.15 and red[:, -1].mean() < 0.85
