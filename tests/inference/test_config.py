"""OpenVINO hint/streams/threads/precision and ONNX Runtime settings reach the runtimes."""

from __future__ import annotations

import os

import pytest

from zoo.inference import InferenceModel, OnnxRuntimeConfig, OpenVINOConfig


def _prop(handle, name):
    return str(handle.compiled_model.get_property(name))


def test_openvino_defaults_latency_for_one_request_and_f32(cnn):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend="openvino")
    assert _prop(handle, "PERFORMANCE_HINT") == "LATENCY"
    assert _prop(handle, "INFERENCE_PRECISION_HINT") == "<Type: 'float32'>"


def test_openvino_defaults_throughput_for_a_pool(cnn):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend="openvino", concurrent_num=2)
    assert _prop(handle, "PERFORMANCE_HINT") == "THROUGHPUT"


def test_openvino_hint_streams_threads_are_applied(cnn):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend="openvino", hint="throughput", streams=2, threads=2)
    assert _prop(handle, "PERFORMANCE_HINT") == "THROUGHPUT"
    assert _prop(handle, "NUM_STREAMS") == "2"
    assert _prop(handle, "INFERENCE_NUM_THREADS") == "2"
    handle.load_torch(module, example, backend="openvino", hint="latency", threads=1)
    assert _prop(handle, "PERFORMANCE_HINT") == "LATENCY"
    assert _prop(handle, "INFERENCE_NUM_THREADS") == "1"


def test_openvino_bf16_precision_is_checked_with_looser_tolerance(cnn, torch_outputs):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend="openvino", precision="bf16")
    assert "bfloat16" in _prop(handle, "INFERENCE_PRECISION_HINT")
    want = torch_outputs(module, example)[0]
    assert abs(handle.predict(example) - want).max() < 5e-2


def test_openvino_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="Expected `hint` to be one of"):
        OpenVINOConfig(hint="fast")
    with pytest.raises(ValueError, match="streams=0"):
        OpenVINOConfig(streams=0)
    with pytest.raises(ValueError, match="precision='int4'"):
        OpenVINOConfig(precision="int4")
    assert OpenVINOConfig(streams="auto").properties(1)["NUM_STREAMS"] == "AUTO"


def test_onnxruntime_threads_are_shared_between_sessions():
    cores = os.cpu_count() or 1
    assert OnnxRuntimeConfig().session_threads(1) == cores
    assert OnnxRuntimeConfig().session_threads(cores * 2) == 1
    assert OnnxRuntimeConfig(intra_op_threads=3).session_threads(4) == 3
    with pytest.raises(ValueError, match="graph_optimization"):
        OnnxRuntimeConfig(graph_optimization="max")


def test_onnxruntime_options_reach_the_sessions(mlp, torch_outputs):
    module, example = mlp
    handle = InferenceModel.from_torch(
        module, example, backend="onnxruntime", concurrent_num=2, intra_op_threads=1, graph_optimization="basic"
    )
    assert abs(handle.predict(example) - torch_outputs(module, example)[0]).max() < 1e-4


def test_each_framework_lists_its_backends_and_refuses_the_others():
    from zoo.errors import ZooValueError
    from zoo.inference.config import FRAMEWORK_BACKENDS, backend_config

    assert FRAMEWORK_BACKENDS == {"torch": ("torch", "openvino", "onnxruntime"), "keras": ("keras",)}
    assert backend_config("torch", None, {}) is None
    assert backend_config("keras", "keras", {}) is None
    assert backend_config("torch", "openvino", {"threads": 2}) == OpenVINOConfig(threads=2)
    assert backend_config("torch", "onnxruntime", {}) == OnnxRuntimeConfig()
    with pytest.raises(ZooValueError, match=r"NNModel cannot run a keras model on backend 'openvino'\. "
                                            r"Backends for keras models: \['keras'\]"):
        backend_config("keras", "openvino", {}, "NNModel")
    with pytest.raises(ZooValueError, match=r"The keras backend takes no options\. Received: \['threads'\]"):
        backend_config("keras", None, {"threads": 2})
    with pytest.raises(ZooValueError, match=r"Expected a framework in \['keras', 'torch'\]\. Received: framework='jax'"):
        backend_config("jax", "torch", {})
