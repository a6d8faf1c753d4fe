"""NNModel.transform predicts through InferenceModel on every backend of both frameworks (the
converted torch backends give torch's predictions), and an unsupported framework/backend pairing
fails on the driver, before any Spark job.

Uses the session-scoped ``spark`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.errors import ZooValueError
from zoo.inference import InferenceModel
from zoo.nnframes import NNClassifierModel, NNModel

ROWS, FEATURES = 37, 6


def _frame(spark, rows: np.ndarray):
    data = [(i, [float(v) for v in row]) for i, row in enumerate(rows)]
    return spark.createDataFrame(data, "id long, features array<float>").repartition(2)


def _predictions(model, df) -> np.ndarray:
    rows = sorted(model.transform(df).select("id", "prediction").collect(), key=lambda r: r["id"])
    return np.array([r["prediction"] for r in rows], dtype=np.float32)


def _rows(width: int = FEATURES) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((ROWS, width)).astype(np.float32)


def _torch_mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()


def _keras_mlp():
    keras = pytest.importorskip("keras", reason="Keras tests need `pip install keras tensorflow-cpu`")
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((FEATURES,), name="x"), keras.layers.Dense(16, activation="relu"),
                             keras.layers.Dense(3)])


def _jobs_of(spark, group: str) -> list[int]:
    return list(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


class _FlatCNN(torch.nn.Module):
    """A CNN over 1x8x8 images given as flat 64-float rows (the array<float> column)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2)
        )
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.conv(x.reshape(-1, 1, 8, 8)), 1))


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_transform_matches_torch_backend(spark, backend):
    torch.manual_seed(0)
    module = _FlatCNN().eval()
    rows = np.random.default_rng(0).standard_normal((37, 64)).astype(np.float32)
    df = _frame(spark, rows)
    model = NNModel(model=module, featuresCol="features", predictionCol="prediction", batchSize=8)
    want = _predictions(model.setBackend("torch"), df)
    with torch.no_grad():
        direct = module(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(want, direct, atol=1e-4, rtol=1e-3)
    got = _predictions(model.setBackend(backend), df)
    assert got.shape == want.shape == (37, 3)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("framework, make, narrow_error", [
    # A batch the model cannot take fails in InferenceModel.predict: its message names the runtime...
    ("torch", _torch_mlp, r"The torch model 'torch Sequential' failed on inputs \(float32\[\d+, 5\]\)"),
    # ... or, for a model that declares its inputs, the signature InferenceModel checks them against.
    ("keras", _keras_mlp, r"Input 'x' has size 5 on axis 1; expected 6\. Expected signature \(x: float32\[\?, 6\]\)"),
])
def test_transform_predicts_what_inference_model_predicts(spark, framework, make, narrow_error):
    net = make()
    rows = _rows()
    model = NNModel(model=net, featuresCol="features", predictionCol="prediction", batchSize=8)
    assert model.getBackend() == framework
    want = InferenceModel.from_framework(framework, net).predict(rows)
    np.testing.assert_allclose(_predictions(model, _frame(spark, rows)), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(Exception, match=narrow_error):
        model.transform(_frame(spark, _rows(5))).collect()


def test_openvino_options_reach_the_runtime(spark):
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has no bf16 support, so precision='bf16' would not change OpenVINO's results")
    module = _torch_mlp()
    rows = _rows()
    df = _frame(spark, rows)
    model = NNModel(model=module, featuresCol="features", predictionCol="prediction", batchSize=8)
    f32 = _predictions(model.setBackend("openvino"), df)
    bf16 = _predictions(model.setBackend("openvino", precision="bf16"), df)
    want = InferenceModel.from_torch(module, rows[:8], backend="openvino", precision="bf16").predict(rows)
    np.testing.assert_allclose(bf16, want, rtol=1e-6, atol=1e-6)
    assert np.abs(bf16 - f32).max() > 1e-4, "precision='bf16' did not reach OpenVINO: the results are f32's"


@pytest.mark.parametrize("framework, backend, options, message", [
    ("keras", "openvino", {}, r"{who} cannot run a keras model on backend 'openvino'\. Backends for keras models: \['keras'\]\. "
                              r"Use 'keras' \(the default\), or export the model"),
    ("keras", "onnxruntime", {}, r"{who} cannot run a keras model on backend 'onnxruntime'"),
    ("keras", "torch", {}, r"{who} cannot run a keras model on backend 'torch'"),
    ("torch", "keras", {}, r"{who} cannot run a torch model on backend 'keras'\. Backends for torch models: "
                           r"\['torch', 'openvino', 'onnxruntime'\]\. Use one of"),
    ("torch", "torch", {"threads": 2}, r"The torch backend takes no options\. Received: \['threads'\]"),
    ("torch", "onnxruntime", {"threads": 2}, r"Unknown option\(s\) \['threads'\] for backend 'onnxruntime'\. "
                                             r"Accepted options: \['intra_op_threads'"),
])
def test_an_unsupported_pairing_fails_on_the_driver(spark, framework, backend, options, message):
    net = _keras_mlp() if framework == "keras" else _torch_mlp()
    model = NNClassifierModel(model=net, featuresCol="features", predictionCol="prediction")
    with pytest.raises(ZooValueError, match=message.format(who=r"NNModel\.setBackend")):
        model.setBackend(backend, **options)
    # A pairing that did not pass setBackend (as a loaded model carries it) is refused by
    # transform itself, on the driver: no Spark job has run for it.
    model.backend, model.backend_options = backend, dict(options)
    group = f"zoo-test-pairing-{framework}-{backend}"
    spark.sparkContext.setJobGroup(group, "must not run")
    try:
        with pytest.raises(ZooValueError, match=message.format(who=r"NNModel\.transform")):
            model.transform(_frame(spark, _rows()))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert _jobs_of(spark, group) == []
