"""export(): dynamic batch, verification against the source model, nothing left behind on failure."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch

from zoo.inference import (
    ExportError, InferenceArgumentError, InferenceModel, ModelLoadError, UnsupportedModelError, export,
)


class _DriftingModel(torch.nn.Module):
    """Returns x times how often it was called: its trace freezes one count, so exports disagree."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * float(self.calls)


def test_onnx_file_has_a_dynamic_batch_and_named_inputs(two_input, tmp_path):
    module, example = two_input
    path = export(module, example, tmp_path / "two.onnx")
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["features", "category"]
    assert [o.name for o in graph.output] == ["output_0", "output_1"]
    for value in list(graph.input) + list(graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param  # symbolic, not a fixed size


def test_openvino_export_writes_xml_and_bin_with_dynamic_batch(cnn, tmp_path):
    module, example = cnn
    path = export(module, example, tmp_path / "sub" / "cnn.xml", format="openvino")
    assert os.path.isfile(path) and os.path.isfile(path[:-4] + ".bin")
    handle = InferenceModel().load_openvino(path)
    assert handle.inputs[0].shape == (None, 1, 12, 12)
    assert sorted(os.listdir(tmp_path / "sub")) == ["cnn.bin", "cnn.xml"]


def test_export_that_changes_results_fails_and_leaves_nothing(tmp_path):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ExportError, match="differs from the source model by up to"):
        export(_DriftingModel(), x, tmp_path / "drift.onnx")
    assert os.listdir(tmp_path) == []


def test_failed_openvino_conversion_is_short_and_leaves_nothing(tmp_path):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ExportError, match="OpenVINO could not convert _DriftingModel") as err:
        export(_DriftingModel(), x, tmp_path / "drift.xml", format="openvino")
    assert len(str(err.value)) < 700
    assert os.listdir(tmp_path) == []


def test_export_rejects_wrong_suffix_format_and_model(mlp, tmp_path):
    module, example = mlp
    with pytest.raises(ValueError, match=r"end with '.xml' for format='openvino'"):
        export(module, example, tmp_path / "m.onnx", format="openvino")
    with pytest.raises(ValueError, match="format='tflite'"):
        export(module, example, tmp_path / "m.tflite", format="tflite")
    with pytest.raises(TypeError, match="Received: dict"):
        export({"not": "a model"}, example, tmp_path / "m.onnx")


def test_export_errors_are_the_packages_and_still_the_builtins(mlp, tmp_path):
    module, example = mlp
    with pytest.raises(InferenceArgumentError, match="format='tflite'") as bad_format:
        export(module, example, tmp_path / "m.tflite", format="tflite")
    with pytest.raises(UnsupportedModelError, match="Received: dict") as bad_model:
        export({"not": "a model"}, example, tmp_path / "m.onnx")
    assert isinstance(bad_format.value, ValueError) and isinstance(bad_model.value, TypeError)


def test_exported_program_exports_to_onnx_with_the_dynamo_exporter(cnn, tmp_path, torch_outputs):
    pytest.importorskip("onnxscript", reason="ExportedProgram -> ONNX needs `pip install onnxscript`")
    module, example = cnn
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(module, (torch.from_numpy(example),), dynamic_shapes=({0: batch},))
    path = export(program, example, tmp_path / "cnn.onnx")
    handle = InferenceModel().load(path)
    np.testing.assert_allclose(handle.predict(example[:3]), torch_outputs(module, example[:3])[0], atol=1e-4)


@pytest.mark.parametrize("fmt, name", [("onnx", "mlp.onnx"), ("openvino", "mlp.xml")])
def test_export_to_s3_and_load_from_it_through_the_cache(mlp, s3, tmp_path, monkeypatch, fmt, name):
    from zoo.storage.cache import CACHE_ENV

    module, example = mlp
    url = f"s3a://{s3.name}/exports/{name}"
    assert export(module, example, url, format=fmt) == url
    assert s3.keys("exports") == sorted([f"exports/{name}"] + (["exports/mlp.bin"] if fmt == "openvino" else []))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    with InferenceModel().load(url) as model:
        with torch.no_grad():
            expected = module(torch.from_numpy(example)).numpy()
        np.testing.assert_allclose(model.predict(example), expected, rtol=1e-4, atol=1e-5)
    assert len(os.listdir(tmp_path / "cache")) == 1  # one cached copy, the .bin beside the .xml
    with pytest.raises(ModelLoadError, match="Model file not found: 's3://"):
        InferenceModel().load(f"s3://{s3.name}/exports/missing.onnx")


def test_export_to_an_unwritable_url_fails_before_converting(mlp):
    from zoo import storage

    module, example = mlp
    with pytest.raises(storage.FileSystemMissingError, match="pip install gcsfs"):
        export(module, example, "gs://bucket/mlp.onnx")
