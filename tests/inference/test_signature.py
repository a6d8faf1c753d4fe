"""Bad input to predict: wrong count, names, rank, shape or dtype name the expected signature."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.inference import InferenceInputError, InferenceModel, TensorSpec
from zoo.inference.signature import format_signature, prepare_inputs

BACKENDS = ["torch", "openvino", "onnxruntime"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_rank_names_the_signature_and_the_fix(cnn, backend):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend=backend)
    with pytest.raises(InferenceInputError) as err:
        handle.predict(example[0])
    message = str(err.value)
    assert "image: float32[?, 1, 12, 12]" in message
    assert "rank 3; expected rank 4" in message
    assert "float32[1, 12, 12]" in message
    assert "add the batch dimension" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_shape_names_axis_and_signature(cnn, backend):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend=backend)
    with pytest.raises(InferenceInputError, match=r"size 10 on axis 2; expected 12.*image: float32\[\?, 1, 12, 12\]"):
        handle.predict(np.zeros((2, 1, 10, 12), np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dtype_conversion_that_changes_values_is_refused(two_input, backend):
    module, (features, category) = two_input
    handle = InferenceModel.from_torch(module, [features, category], backend=backend)
    with pytest.raises(InferenceInputError) as err:
        handle.predict([features, category.astype(np.float32) + 0.5])
    message = str(err.value)
    assert "'category' has dtype float32 and the model takes int64, but the value " in message
    assert "would become" in message and "(features: float32[?, 4], category: int64[?])" in message
    # float64 rounded to float32, whole float32 numbers to int64: the same answers
    for got, want in zip(handle.predict([features.astype(np.float64), category.astype(np.float32)]),
                         handle.predict([features, category])):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_wrong_number_of_inputs_and_wrong_names(two_input):
    module, (features, category) = two_input
    handle = InferenceModel.from_torch(module, [features, category], backend="onnxruntime")
    with pytest.raises(InferenceInputError, match=r"Expected 2 input array\(s\).*Received 1"):
        handle.predict(features)
    with pytest.raises(InferenceInputError, match=r"missing \['category'\], unexpected \['cat'\]"):
        handle.predict({"features": features, "cat": category})


def test_model_without_declared_signature_reports_runtime_failure(mlp):
    module, example = mlp
    handle = InferenceModel().load_torch(module)  # no example: nothing to check up front
    assert handle.input_signature == "(not declared by the model)"
    with pytest.raises(InferenceInputError, match=r"failed on inputs \(float32\[6, 3\]\).*Expected signature \(not declared"):
        handle.predict(example[:, :3])


def test_ragged_input_is_reported():
    specs = [TensorSpec("x", (None, 2), np.dtype("float32"))]
    with pytest.raises(InferenceInputError, match="ragged"):
        prepare_inputs([np.array([[1.0, 2.0], [3.0]], dtype=object)], specs)


def test_conversions_keep_every_value_or_are_refused():
    specs = [TensorSpec("x", (None, 2), np.dtype("float32"))]
    (exact,) = prepare_inputs([np.array([[16777216, -3]], np.int64)], specs)
    assert exact.dtype == np.float32 and exact.tolist() == [[16777216.0, -3.0]]
    (half,) = prepare_inputs([np.array([[0.1, 65504]], np.float16)], specs)
    assert half.tolist() == np.array([[0.1, 65504]], np.float16).astype(np.float32).tolist()
    with pytest.raises(InferenceInputError, match=r"the value 16777217 at index \[0, 1\] would become 16777216.0 in float32"):
        prepare_inputs([np.array([[0, 16777217]], np.int64)], specs)
    with pytest.raises(InferenceInputError, match=r"the value 1e\+300 at index \[0, 0\] is too large for float32"):
        prepare_inputs([np.array([[1e300, 0]])], specs)
    ids = [TensorSpec("ids", (None,), np.dtype("uint8"))]
    assert prepare_inputs([np.array([1.0, 255.0])], ids)[0].tolist() == [1, 255]
    with pytest.raises(InferenceInputError, match="the value 300 at index \\[1\\] would become 44 in uint8"):
        prepare_inputs([np.array([1, 300])], ids)


def test_prepare_inputs_casts_same_kind_and_keeps_order():
    specs = [TensorSpec("a", (None, 2), np.dtype("float32")), TensorSpec("b", (None,), np.dtype("int64"))]
    a, b = prepare_inputs({"b": np.array([1, 2], np.int32), "a": np.ones((2, 2))}, specs)
    assert a.dtype == np.float32 and b.dtype == np.int64
    assert a.flags.c_contiguous and b.tolist() == [1, 2]
    assert format_signature(specs) == "(a: float32[?, 2], b: int64[?])"
