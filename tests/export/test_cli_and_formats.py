"""`attention-zoo export` and the SavedModel / ONNX formats."""

import json
import os
import sys

import keras
import numpy as np
import pytest

import attention_zoo
from attention_zoo import cli
from attention_zoo.export import export_model


def test_cli_exports_a_registered_model_and_prints_its_parity(export_dir, capsys):
    path = export_dir / "stn.tflite"
    status = cli.main(["export", "stn_cnn", "--num-classes", "10", "-o", str(path)])
    assert status == 0
    printed = capsys.readouterr().out
    assert f"wrote {path} (tflite, none" in printed and "max relative error" in printed
    report = json.loads((export_dir / "stn.tflite.json").read_text())
    assert report["model"] == "stn_cnn" and report["input_shape"] == [1, 60, 60, 1]
    assert report["max_relative_error"] <= 1e-4


def test_cli_exports_shipped_weights_by_tag_at_the_shape_and_classes_they_were_trained_for(
    export_dir, capsys, monkeypatch
):
    monkeypatch.setenv("ATTENTION_ZOO_CACHE_DIR", str(export_dir / "cache"))
    path = export_dir / "stn_digits.tflite"
    assert cli.main(["export", "stn_cnn", "--weights", "cluttered_digits", "-o", str(path)]) == 0
    report = json.loads((export_dir / "stn_digits.tflite.json").read_text())
    assert report["input_shape"] == [1, 60, 60, 1]
    assert report["outputs"][0]["shape"] == [1, 10]
    assert report["max_relative_error"] <= 1e-4


def test_cli_exports_a_keras_file_to_int8_calibrated_on_a_folder_of_images(export_dir, capsys):
    from PIL import Image

    model = attention_zoo.get("stn_cnn", num_classes=10)
    model.save(export_dir / "stn.keras")
    rng = np.random.default_rng(0)
    for index in range(6):
        folder = export_dir / "images" / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (50, 70), dtype=np.uint8)).save(folder / f"{index}.png")
    status = cli.main([
        "export", str(export_dir / "stn.keras"), "--quantize", "int8",
        "--representative-data", str(export_dir / "images"), "-o", str(export_dir / "stn_int8.tflite"), "--json",
    ])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sample_source"] == f"6 images from {export_dir / 'images'}"
    assert report["inputs"][0]["dtype"] == "int8" and "scale" in report["inputs"][0]
    assert 0.0 <= report["top1_agreement"] <= 1.0


def test_cli_takes_representative_data_from_a_npy_file(export_dir, capsys):
    images = np.random.default_rng(0).uniform(0, 1, (4, 60, 60, 1)).astype("float32")
    np.save(export_dir / "digits.npy", images)
    status = cli.main([
        "export", "cnn_cluttered", "--num-classes", "10", "--quantize", "dynamic",
        "--representative-data", str(export_dir / "digits.npy"), "-o", str(export_dir / "cnn.tflite"),
    ])
    assert status == 0
    assert "vs Keras on 4 inputs" in capsys.readouterr().out


def test_cli_errors_are_messages_and_write_nothing(export_dir, capsys):
    path = export_dir / "stn.tflite"
    assert cli.main(["export", "stn_cnn", "--quantize", "int8", "-o", str(path)]) == 2
    assert "representative_data" in capsys.readouterr().err
    assert cli.main(["export", "stn_cnn", "--format", "saved_model", "--quantize", "int8", "-o", str(path)]) == 2
    assert "apply to --format tflite" in capsys.readouterr().err
    assert not os.listdir(export_dir)


def test_saved_model_goes_through_keras_export_and_is_verified(tmp_path):
    model = attention_zoo.get("cnn_cluttered", num_classes=10)
    report = export_model(model, tmp_path / "cnn_savedmodel", format="saved_model", batch=None)
    assert (tmp_path / "cnn_savedmodel" / "saved_model.pb").is_file()
    assert report.input_shape == (None, 60, 60, 1)
    assert report.verified and report.max_relative_error < 1e-5
    assert (tmp_path / "cnn_savedmodel.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["cnn_savedmodel", "cnn_savedmodel.json"]


def test_cli_exports_onnx_verified_in_onnxruntime(export_dir, capsys):
    path = export_dir / "cnn.onnx"
    assert cli.main(["export", "cnn_cluttered", "--num-classes", "10", "--format", "onnx", "-o", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {path} (onnx, none" in printed and "onnxruntime): max relative error" in printed
    report = json.loads((export_dir / "cnn.onnx.json").read_text())
    assert report["verified"] and report["max_relative_error"] <= 1e-4
    assert report["file_bytes"] == os.path.getsize(path)


def test_cli_onnx_without_its_packages_says_what_to_install_before_building(export_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as on a machine without the onnx extra
    monkeypatch.setattr(attention_zoo, "get", lambda *args, **kwargs: pytest.fail("built a model it cannot export"))
    path = export_dir / "cnn.onnx"
    assert cli.main(["export", "cnn_cluttered", "--format", "onnx", "-o", str(path)]) == 2
    assert "needs tf2onnx, which is not installed: pip install 'attention_zoo[onnx]'" in capsys.readouterr().err
    assert not os.listdir(export_dir)


def test_cli_help_lists_the_command():
    assert "export" in cli.build_parser().format_help()
    keras.utils.clear_session()
