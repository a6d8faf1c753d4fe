"""A missing or corrupt model file: the error names the path and the format tried."""

from __future__ import annotations

import pytest

from zoo.inference import InferenceModel, ModelLoadError
from zoo.inference.detect import detect_format


@pytest.mark.parametrize(
    "loader, name, fmt",
    [
        ("load_onnx", "absent.onnx", "ONNX"),
        ("load_openvino", "absent.xml", "OpenVINO IR"),
        ("load_torch", "absent.pt", "TorchScript"),
        ("load_torch", "absent.pt2", "torch.export ExportedProgram"),
        ("load_keras", "absent.keras", "Keras"),
        ("load", "absent.onnx", "detected from the name"),
    ],
)
def test_missing_file_names_path_and_format(loader, name, fmt, tmp_path):
    path = str(tmp_path / name)
    with pytest.raises(ModelLoadError) as err:
        getattr(InferenceModel(), loader)(path)
    assert repr(path) in str(err.value)
    assert f"format tried: {fmt}" in str(err.value)


@pytest.mark.parametrize(
    "name, loader, fmt",
    [
        ("bad.onnx", "load_onnx", "as ONNX"),
        ("bad.onnx", "load", "as ONNX"),
        ("bad.pt", "load_torch", "TorchScript, torch.export ExportedProgram"),
    ],
)
def test_corrupt_file_names_path_and_format(name, loader, fmt, tmp_path):
    path = tmp_path / name
    path.write_bytes(b"\x08\x07 this is not a model \xff\xfe" * 10)
    with pytest.raises(ModelLoadError) as err:
        getattr(InferenceModel(), loader)(str(path))
    assert repr(str(path)) in str(err.value)
    assert fmt in str(err.value)


def test_corrupt_openvino_ir_names_path_and_format(tmp_path):
    xml = tmp_path / "bad.xml"
    xml.write_text("<?xml version='1.0'?><net name='x' version='11'><layers><layer")
    (tmp_path / "bad.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelLoadError, match=r"Could not load '.*bad\.xml' as OpenVINO IR"):
        InferenceModel().load_openvino(xml)


def test_ir_without_its_weights_file_is_named(mlp, tmp_path):
    xml = tmp_path / "lonely.xml"
    xml.write_text("<?xml version='1.0'?><net/>")
    with pytest.raises(ModelLoadError, match=r"Weights file not found: '.*lonely\.bin'.*bin=\.\.\."):
        InferenceModel().load_openvino(xml)


def test_detect_format_by_name_and_by_content(tmp_path):
    assert detect_format(_touch(tmp_path / "m.onnx")) == "onnx"
    assert detect_format(_touch(tmp_path / "m.pt2")) == "exported_program"
    unnamed = tmp_path / "model"
    unnamed.write_text("<?xml version='1.0'?><net/>")
    assert detect_format(unnamed) == "openvino"
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelLoadError, match="without saved_model.pb"):
        detect_format(tmp_path / "folder")


def _touch(path):
    path.write_bytes(b"")
    return path
