"""The Zoo MLflow flavor: NNModel / NNClassifierModel (torch and Keras) and exported model files
saved, logged, loaded back, and run through mlflow.pyfunc."""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes import NNClassifierModel, NNModel
from zoo.registry import flavor

from .conftest import linear_net, torch, torch_outputs

X = np.random.default_rng(3).normal(size=(6, 3)).astype(np.float32)


def features_frame(spark, x: np.ndarray):
    return spark.createDataFrame(pd.DataFrame({"features": [row.astype(float) for row in x], "label": 0.0}))


def predictions(model, spark, x: np.ndarray, column: str = "prediction") -> np.ndarray:
    rows = model.transform(features_frame(spark, x)).select(column).toPandas()[column]
    return np.stack([np.asarray(v, dtype=np.float64) for v in rows])


def test_a_torch_nnmodel_round_trips_and_runs_as_pyfunc(spark, tmp_path):
    net = linear_net(4)
    flavor.save_model(NNModel(net, batchSize=16), tmp_path / "net")
    conf = flavor.flavor_conf(str(tmp_path / "net"))
    assert (conf["kind"], conf["framework"], conf["serving_file"]) == ("nnmodel", "torch", "serving/model.pt")

    loaded = flavor.load_model(str(tmp_path / "net"))
    assert type(loaded) is NNModel and loaded.getBatchSize() == 16
    np.testing.assert_allclose(predictions(loaded, spark, X), torch_outputs(net, X), rtol=1e-5, atol=1e-6)

    pyfunc = mlflow.pyfunc.load_model(str(tmp_path / "net"))
    expected = torch_outputs(net, X)
    np.testing.assert_allclose(pyfunc.predict(X), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pyfunc.predict(pd.DataFrame(X)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pyfunc.predict(pd.DataFrame({"features": list(X)})), expected, rtol=1e-5, atol=1e-6)


def test_a_classifier_comes_back_as_a_classifier_with_its_params(spark, tmp_path):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Softmax(dim=1)).eval()
    model = NNClassifierModel(net, predictionCol="cls")
    flavor.save_model(model, tmp_path / "cls")
    loaded = flavor.load_model(str(tmp_path / "cls"))
    assert type(loaded) is NNClassifierModel and loaded.getPredictionCol() == "cls"
    np.testing.assert_array_equal(predictions(loaded, spark, X, "cls"), torch_outputs(net, X).argmax(1))


def test_an_exported_onnx_file_is_published_and_served_from_the_registry(registry, tracking_uri, name, monkeypatch,
                                                                        tmp_path):
    pytest.importorskip("onnxruntime", reason="ONNX models need the inference extra: pip install 'spark-zoo[inference]'")
    from zoo.inference import InferenceModel, export

    net = linear_net(5)
    path = export(net, X, str(tmp_path / "net.onnx"))
    version = registry.publish(name, path, metrics={"loss": 0.1})
    resolved = registry.resolve(f"models:/{name}/{version}")
    assert resolved.path.endswith("net.onnx")
    with InferenceModel().load(path) as source:
        declared = [spec.name for spec in source.inputs]
    assert [spec["name"] for spec in resolved.signature["inputs"]] == declared
    assert resolved.signature["inputs"][0]["shape"] == [None, 3]
    assert flavor.flavor_conf(resolved.model_dir)["kind"] == "file"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    np.testing.assert_allclose(pyfunc.predict(X), torch_outputs(net, X), rtol=1e-4, atol=1e-5)
    assert isinstance(flavor.load_model(resolved.model_dir), InferenceModel)


def test_log_model_logs_to_the_active_run_and_registers(tracking_uri, name, spark, tmp_path):
    net = linear_net(6)
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment = mlflow.create_experiment(f"flavor-{name}", artifact_location=str(tmp_path / "artifacts"))
        with mlflow.start_run(experiment_id=experiment):
            info = flavor.log_model(NNModel(net), "net", registered_model_name=name)
        assert info.registered_model_version == 1
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
        np.testing.assert_allclose(loaded.predict(X), torch_outputs(net, X), rtol=1e-5, atol=1e-6)
        assert type(flavor.load_model(info.model_uri)) is NNModel
    finally:
        mlflow.set_tracking_uri(None)


class Conv(torch.nn.Module):
    """1x4x4 images -> 2 scores; its first layer does not say the image size."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_a_model_whose_input_shape_cannot_be_read_asks_for_an_example(spark, tmp_path):
    with pytest.raises(ZooValueError, match="Cannot tell the input shape of Conv.*Pass input_example="):
        flavor.save_model(NNModel(Conv()), tmp_path / "conv")
    assert not (tmp_path / "conv").exists()
    flavor.save_model(NNModel(Conv()), tmp_path / "conv", input_example=np.zeros((1, 1, 4, 4), np.float32))
    signature = flavor.flavor_conf(str(tmp_path / "conv"))["signature"]
    assert signature["inputs"][0]["shape"] == [None, 1, 4, 4] and signature["outputs"][0]["shape"] == [None, 2]
    # A sized feature preprocessing tells it too.
    flavor.save_model(NNModel(Conv(), [1, 4, 4]), tmp_path / "sized")
    assert flavor.flavor_conf(str(tmp_path / "sized"))["signature"] == signature


def test_what_is_not_a_model_is_refused_by_name(spark, tmp_path):
    with pytest.raises(ZooValueError, match="does not exist"):
        flavor.save_model(str(tmp_path / "missing.onnx"), tmp_path / "a")
    with pytest.raises(ZooValueError, match="not a directory"):
        flavor.save_model(str(tmp_path), tmp_path / "b")
    with pytest.raises(ZooValueError, match="has no model"):
        flavor.save_model(NNModel(), tmp_path / "c")
    with pytest.raises(ZooTypeError, match="Received: builtins.dict"):
        flavor.save_model({}, tmp_path / "d")
    (tmp_path / "e").mkdir()
    with pytest.raises(ZooValueError, match="exists"):
        flavor.save_model(NNModel(linear_net()), tmp_path / "e")
    with pytest.raises(ZooValueError, match="no 'zoo' flavor|MLmodel"):
        flavor.load_model(str(tmp_path / "e"))


@pytest.mark.slow
def test_a_keras_nnmodel_round_trips_and_runs_as_pyfunc(spark, tmp_path):
    keras = pytest.importorskip("keras", reason="Keras models need Keras 3: pip install 'spark-zoo[tf]'")
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    flavor.save_model(NNModel(net), tmp_path / "keras")
    conf = flavor.flavor_conf(str(tmp_path / "keras"))
    assert (conf["framework"], conf["serving_file"]) == ("keras", "serving/model.keras")
    assert conf["signature"]["inputs"][0]["shape"] == [None, 3]
    expected = np.asarray(net.predict(X, verbose=0))
    np.testing.assert_allclose(mlflow.pyfunc.load_model(str(tmp_path / "keras")).predict(X), expected, rtol=1e-5,
                               atol=1e-6)
    loaded = flavor.load_model(str(tmp_path / "keras"))
    np.testing.assert_allclose(predictions(loaded, spark, X), expected, rtol=1e-5, atol=1e-6)


def test_an_openvino_model_travels_with_its_weights(tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO models need the inference extra: pip install 'spark-zoo[inference]'")
    from zoo.inference import export

    net = linear_net(7)
    path = export(net, X, str(tmp_path / "net.xml"), format="openvino")
    flavor.save_model(path, tmp_path / "ov")
    assert sorted(p.name for p in (tmp_path / "ov" / "zoo" / "serving").iterdir()) == ["net.bin", "net.xml"]
    np.testing.assert_allclose(mlflow.pyfunc.load_model(str(tmp_path / "ov")).predict(X), torch_outputs(net, X),
                               rtol=1e-4, atol=1e-5)
