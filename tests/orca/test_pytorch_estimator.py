"""Orca's PyTorch Estimator (zoo.orca.learn.pytorch) on a real local[2] Spark: numpy dicts,
Spark and pandas DataFrames in; evaluate, predict, checkpoints, save/load."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from zoo.errors import ZooTypeError, ZooValueError  # noqa: E402
from zoo.orca.learn.metrics import Accuracy  # noqa: E402
from zoo.orca.learn.pytorch import Estimator  # noqa: E402
from zoo.orca.learn.trigger import EveryEpoch  # noqa: E402


def separable(n=320, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def local_outputs(model, x):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_numpy_dict_fit_then_evaluate_and_predict_agree(spark):
    x, y = separable()
    model = mlp()
    initial = [p.detach().clone() for p in model.parameters()]
    estimator = Estimator.from_torch(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
                                     loss=torch.nn.CrossEntropyLoss(), metrics=[Accuracy()])

    assert estimator.fit({"x": x, "y": y}, epochs=4, batch_size=32) is estimator
    result = estimator.evaluate({"x": x, "y": y}, batch_size=64)
    predictions = estimator.predict({"x": x}, batch_size=64)

    assert estimator.get_model() is model
    assert any(not torch.equal(a, b) for a, b in zip(initial, model.parameters()))
    assert predictions.shape == (len(x), 2)
    np.testing.assert_allclose(predictions, local_outputs(model, x), rtol=1e-5, atol=1e-5)
    assert result["Top1Accuracy"] > 0.9
    assert result["Top1Accuracy"] == pytest.approx(float((predictions.argmax(1) == y).mean()))
    expected_loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(predictions), torch.from_numpy(y)))
    assert result["Loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert [e for e in estimator.history if e["event"] == "step"]


def test_spark_dataframe_with_validation_checkpoints_and_dataframe_predictions(spark, tmp_path):
    x, y = separable(seed=1)
    df = spark.createDataFrame(pd.DataFrame({"features": list(x.astype(float)), "label": y.astype(float)}))
    model = mlp(1)
    estimator = Estimator.from_torch(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.2),
                                     loss=torch.nn.CrossEntropyLoss(), metrics=["accuracy"], model_dir=str(tmp_path))

    estimator.fit(df, epochs=2, batch_size=32, feature_cols=["features"], label_cols=["label"],
                  validation_data=df, checkpoint_trigger=EveryEpoch())
    predicted = estimator.predict(df, feature_cols=["features"])

    validations = [e for e in estimator.history if e["event"] == "validation"]
    assert len(validations) == 2 and set(validations[-1]["metrics"]) == {"Loss", "Top1Accuracy"}
    assert predicted.columns == ["features", "label", "prediction"]
    rows = predicted.toPandas()
    np.testing.assert_allclose(np.stack(rows["prediction"]), local_outputs(model, np.stack(rows["features"]).astype(np.float32)),
                               rtol=1e-5, atol=1e-5)
    restored = Estimator.from_torch(model=mlp(7), loss=torch.nn.CrossEntropyLoss())
    restored.load_latest_orca_checkpoint(str(tmp_path))
    for a, b in zip(restored.get_model().parameters(), model.parameters()):
        torch.testing.assert_close(a, b)


class TwoInputs(torch.nn.Module):
    """Two scalar inputs (two DataFrame columns) -> 2 scores."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, a, b):
        return self.linear(torch.cat([a, b], dim=1))


def test_pandas_in_pandas_out_and_save_load(spark, tmp_path):
    x, y = separable(seed=2)
    pdf = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": y})
    estimator = Estimator.from_torch(model=TwoInputs(), optimizer=torch.optim.SGD, loss=torch.nn.CrossEntropyLoss())

    estimator.fit(pdf, epochs=2, batch_size=32, feature_cols=["a", "b"], labels_cols="label")  # Orca 0.9 name
    predicted = estimator.predict(pdf, feature_cols=["a", "b"])
    path = estimator.save(str(tmp_path / "model"))
    loaded = Estimator.from_torch(model=TwoInputs(), loss=torch.nn.CrossEntropyLoss()).load(path)

    assert isinstance(predicted, pd.DataFrame)
    assert list(predicted.columns) == ["a", "b", "label", "prediction"]
    np.testing.assert_allclose(predicted["a"], pdf["a"], rtol=1e-6)
    for a, b in zip(loaded.get_model().parameters(), estimator.get_model().parameters()):
        torch.testing.assert_close(a, b)


def test_bad_input_is_refused_on_the_driver_with_the_fix(spark):
    estimator = Estimator.from_torch(model=mlp(), loss=torch.nn.CrossEntropyLoss())
    df = spark.createDataFrame(pd.DataFrame({"features": [[0.0] * 4], "label": [0.0]}))

    with pytest.raises(ZooValueError, match=r"no column\(s\) \['feats'\].*Its columns are \['features', 'label'\]"):
        estimator.fit(df, feature_cols=["feats"], label_cols=["label"])
    with pytest.raises(ZooValueError, match="feature_cols="):
        estimator.fit(df)
    with pytest.raises(ZooTypeError, match="Spark DataFrame, a pandas DataFrame or a dict"):
        estimator.fit([[0.0] * 4])
    with pytest.raises(ZooValueError, match="batch_size"):
        estimator.fit({"x": np.zeros((4, 4), np.float32), "y": np.zeros(4)}, batch_size=0)
    with pytest.raises(ZooValueError, match="need labels"):
        estimator.fit({"x": np.zeros((4, 4), np.float32)})
    with pytest.raises(ZooValueError, match="backend"):
        Estimator.from_torch(model=mlp(), loss=torch.nn.MSELoss(), backend="mxnet")
    with pytest.raises(ZooValueError, match="scheduler_creator.*Drop them"):
        Estimator.from_torch(model=mlp(), loss=torch.nn.MSELoss(), scheduler_creator=lambda o, c: None)
