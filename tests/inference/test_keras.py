"""Keras 3: load_keras (model object, .keras file, load()), export to ONNX and OpenVINO."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="Keras tests need `pip install keras tensorflow-cpu`")

from zoo.inference import InferenceInputError, InferenceModel, export  # noqa: E402


@pytest.fixture(scope="module")
def keras_two_input():
    """A two-input, two-output functional model and an example batch."""
    keras.utils.set_random_seed(0)
    features = keras.Input((4,), name="features")
    extra = keras.Input((2,), name="extra")
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.Concatenate()([features, extra]))
    model = keras.Model([features, extra], [keras.layers.Dense(3)(hidden), keras.layers.Dense(1)(hidden)])
    rng = np.random.default_rng(0)
    return model, [rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 2)).astype(np.float32)]


@pytest.fixture(scope="module")
def keras_cnn():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((12, 12, 1), name="image"), keras.layers.Conv2D(4, 3, activation="relu"),
         keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)]
    )
    return model, np.random.default_rng(1).standard_normal((3, 12, 12, 1)).astype(np.float32)


def _close(got, want):
    got = got if isinstance(got, list) else [got]
    want = want if isinstance(want, list) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), atol=1e-4, rtol=1e-3)


def test_load_keras_model_object_and_file(keras_two_input, tmp_path):
    model, example = keras_two_input
    want = model.predict_on_batch(example)
    handle = InferenceModel().load_keras(model)
    assert handle.input_signature == "(features: float32[?, 4], extra: float32[?, 2])"
    _close(handle.predict({"extra": example[1], "features": example[0]}), want)
    path = tmp_path / "two.keras"
    model.save(path)
    for loaded in (InferenceModel().load_keras(str(path)), InferenceModel().load(path)):
        assert loaded.backend == "keras"
        _close(loaded.predict(example), want)


def test_keras_bad_input_names_the_signature(keras_cnn):
    model, example = keras_cnn
    handle = InferenceModel(concurrent_num=2).load_keras(model)
    with pytest.raises(InferenceInputError, match=r"expected rank 4.*image: float32\[\?, 12, 12, 1\]"):
        handle.predict(example[0])


@pytest.mark.parametrize("fmt, suffix", [("openvino", ".xml"), ("onnx", ".onnx")])
def test_export_keras_and_load_back(keras_two_input, keras_cnn, fmt, suffix, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="Keras -> ONNX needs `pip install tf2onnx`")
    for name, (model, example) in {"two": keras_two_input, "cnn": keras_cnn}.items():
        path = export(model, example, tmp_path / f"{name}{suffix}", format=fmt)
        handle = InferenceModel().load(path)
        assert handle.backend == ("openvino" if fmt == "openvino" else "onnxruntime")
        one = [a[:1] for a in example] if isinstance(example, list) else example[:1]
        _close(handle.predict(one), model.predict_on_batch(one))


def test_one_keras_loader_keeps_safe_mode_unless_zoo_wrote_the_file(tmp_path):
    from zoo.inference import ModelLoadError
    from zoo.inference.backends.keras import load_model_file

    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2.0)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    # A file handed in by a user is read in Keras' safe mode, which refuses a Lambda's bytecode.
    for load in (lambda: InferenceModel().load_keras(path), lambda: InferenceModel().load(path)):
        with pytest.raises(ModelLoadError, match=r"Could not load .*lambda\.keras.*safe_mode"):
            load()
    # Zoo's own files (beside a pickle it unpickles anyway) are trusted.
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(load_model_file(path, trusted=True).predict_on_batch(x), x * 2.0)
