"""InferenceModel: every loader round trip on small models, multi-input/output, release."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.inference import InferenceModel, NotLoadedError, export

ATOL = 1e-4

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _assert_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=1e-3)


@pytest.mark.parametrize("backend", ["torch", "openvino", "onnxruntime"])
def test_from_torch_matches_module_on_every_backend(any_model, backend, torch_outputs, as_list):
    name, module, example = any_model
    handle = InferenceModel.from_torch(module, example, backend=backend)
    assert handle.backend == backend
    _assert_close(as_list(handle.predict(example)), torch_outputs(module, example))
    handle.release()


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_converted_models_accept_other_batch_sizes(cnn, backend, torch_outputs):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend=backend)
    assert handle.inputs[0].shape == (None, 1, 12, 12)
    for batch in (1, 9):
        data = np.random.default_rng(batch).standard_normal((batch, 1, 12, 12)).astype(np.float32)
        _assert_close([handle.predict(data)], torch_outputs(module, data))


@pytest.mark.parametrize("fmt, loader", [("onnx", "load_onnx"), ("openvino", "load_openvino"), ("onnx", "load"), ("openvino", "load")])
def test_export_then_load_round_trip(any_model, fmt, loader, tmp_path, torch_outputs, as_list):
    name, module, example = any_model
    path = export(module, example, tmp_path / f"{name}.{'onnx' if fmt == 'onnx' else 'xml'}", format=fmt)
    handle = getattr(InferenceModel(), loader)(path)
    assert handle.backend == ("onnxruntime" if fmt == "onnx" else "openvino")
    _assert_close(as_list(handle.predict(example)), torch_outputs(module, example))
    # The batch dimension stays dynamic in the file.
    smaller = [a[:2] for a in example] if isinstance(example, list) else example[:2]
    _assert_close(as_list(handle.predict(smaller)), torch_outputs(module, smaller))


def test_load_onnx_from_bytes(mlp, tmp_path, torch_outputs):
    module, example = mlp
    path = export(module, example, tmp_path / "m.onnx")
    handle = InferenceModel().load_onnx(open(path, "rb").read())
    _assert_close([handle.predict(example)], torch_outputs(module, example))


@pytest.mark.parametrize("backend", ["torch", "openvino", "onnxruntime"])
def test_torchscript_file_round_trip(any_model, backend, tmp_path, torch_outputs, as_list):
    name, module, example = any_model
    arrays = example if isinstance(example, list) else [example]
    path = tmp_path / f"{name}.pt"
    torch.jit.save(torch.jit.trace(module, tuple(torch.from_numpy(a) for a in arrays)), str(path))
    handle = InferenceModel().load(path, example_input=example, backend=backend)
    assert handle.backend == backend
    _assert_close(as_list(handle.predict(example)), torch_outputs(module, example))


def test_torchscript_file_without_example_runs_unchecked(mlp, tmp_path, torch_outputs):
    module, example = mlp
    path = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    handle = InferenceModel().load_torch(str(path))
    assert handle.inputs is None
    _assert_close([handle.predict(example)], torch_outputs(module, example))


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_exported_program_file_round_trip(cnn, backend, tmp_path, torch_outputs):
    module, example = cnn
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(module, (torch.from_numpy(example),), dynamic_shapes=({0: batch},))
    path = tmp_path / "cnn.pt2"
    torch.export.save(program, str(path))
    handle = InferenceModel().load(path, example_input=example, backend=backend)
    _assert_close([handle.predict(example)], torch_outputs(module, example))
    one = example[:1]
    _assert_close([handle.predict(one)], torch_outputs(module, one))


def test_exported_program_signature_is_read_from_the_program(cnn, tmp_path):
    module, example = cnn
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(module, (torch.from_numpy(example),), dynamic_shapes=({0: batch},))
    handle = InferenceModel().load_torch(program)
    assert [(s.shape, s.dtype) for s in handle.inputs] == [((None, 1, 12, 12), np.dtype("float32"))]


def test_two_input_model_accepts_list_tuple_and_dict(two_input, torch_outputs, as_list):
    module, (features, category) = two_input
    handle = InferenceModel.from_torch(module, [features, category], backend="onnxruntime")
    assert [s.name for s in handle.inputs] == ["features", "category"]
    want = torch_outputs(module, [features, category])
    for data in ([features, category], (features, category), {"category": category, "features": features}):
        result = handle.predict(data)
        assert isinstance(result, list) and len(result) == 2
        _assert_close(result, want)


def test_float64_input_is_cast_to_the_declared_float32(mlp, torch_outputs):
    module, example = mlp
    handle = InferenceModel.from_torch(module, example, backend="openvino")
    _assert_close([handle.predict(example.astype(np.float64))], torch_outputs(module, example))


def test_release_frees_the_model_and_predict_says_to_load(mlp):
    module, example = mlp
    handle = InferenceModel.from_torch(module, example, backend="onnxruntime")
    handle.release()
    assert handle.backend is None
    with pytest.raises(NotLoadedError, match="load_torch, load_onnx"):
        handle.predict(example)
    with pytest.raises(NotLoadedError, match="holds no model"):
        InferenceModel().predict(example)


def test_loading_again_replaces_the_model(mlp, cnn, torch_outputs):
    mlp_module, mlp_x = mlp
    cnn_module, cnn_x = cnn
    with InferenceModel(concurrent_num=2) as handle:
        handle.from_torch  # the classmethod is also reachable from an instance
        handle.load_torch(mlp_module, mlp_x, backend="openvino")
        handle.load_torch(cnn_module, cnn_x, backend="openvino")
        assert handle.inputs[0].shape == (None, 1, 12, 12)
        _assert_close([handle.predict(cnn_x)], torch_outputs(cnn_module, cnn_x))
    assert handle.backend is None


def test_bad_constructor_and_backend_arguments_name_the_fix(mlp):
    module, example = mlp
    with pytest.raises(ValueError, match="concurrent_num"):
        InferenceModel(concurrent_num=0)
    with pytest.raises(ValueError, match="one of \\['torch', 'openvino', 'onnxruntime'\\]"):
        InferenceModel.from_torch(module, example, backend="tensorrt")
    with pytest.raises(ValueError, match="Accepted options: \\['hint', 'streams', 'threads'"):
        InferenceModel.from_torch(module, example, backend="openvino", num_threads=2)
    with pytest.raises(ValueError, match="needs `example_input`"):
        InferenceModel().load_torch(module, backend="onnxruntime")
    with pytest.raises(ValueError, match="takes no options"):
        InferenceModel.from_torch(module, example, backend="torch", threads=2)
