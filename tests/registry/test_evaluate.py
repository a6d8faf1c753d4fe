"""zoo.registry.evaluate: held-out metrics from model.transform on Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoo.errors import ZooValueError
from zoo.nnframes import NNClassifierModel, NNModel
from zoo.registry import evaluate

from .conftest import linear_net, torch, torch_outputs

RNG = np.random.default_rng(11)
X = RNG.normal(size=(40, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def heldout(spark):
    labels = RNG.normal(size=len(X))
    frame = spark.createDataFrame(pd.DataFrame({"features": [row.astype(float) for row in X], "label": labels,
                                                "target": labels + 1.0}))
    return frame.repartition(2), labels


def test_regression_metrics_compare_the_predictions_with_the_labels(heldout):
    frame, labels = heldout
    net = linear_net(2)
    predicted = torch_outputs(net, X)[:, 0].astype(np.float64)
    model = NNModel(net)
    assert evaluate(model, frame, "mse") == pytest.approx(np.mean((predicted - labels) ** 2), rel=1e-5)
    assert evaluate(model, frame, "loss") == evaluate(model, frame, "mse")
    assert evaluate(model, frame, "mae") == pytest.approx(np.mean(np.abs(predicted - labels)), rel=1e-5)
    assert evaluate(model, frame, "mae", label_col="target") == pytest.approx(
        np.mean(np.abs(predicted - labels - 1.0)), rel=1e-5)
    worst = evaluate(model, frame, lambda pred, label: float(np.max(np.abs(pred - label))))
    assert worst == pytest.approx(np.max(np.abs(predicted - labels)), rel=1e-5)


def test_accuracy_of_a_classifier_counts_its_classes(heldout, spark):
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=1)).eval()
    classes = torch_outputs(net, X).argmax(1)
    labels = np.where(np.arange(len(X)) % 4 == 0, 1 - classes, classes).astype(float)  # a quarter wrong
    frame = spark.createDataFrame(pd.DataFrame({"features": [row.astype(float) for row in X], "label": labels}))
    assert evaluate(NNClassifierModel(net), frame, "accuracy") == pytest.approx(0.75)


def test_bad_metric_names_and_columns_are_named(heldout):
    frame, _ = heldout
    with pytest.raises(ZooValueError, match=r"Expected `metric` in \['accuracy', 'loss', 'mae', 'mse'\].*'rmse'"):
        evaluate(NNModel(linear_net()), frame, "rmse")
    with pytest.raises(ZooValueError, match="label column `y`.*Set label_col="):
        evaluate(NNModel(linear_net()), frame, "mse", label_col="y")
    with pytest.raises(ZooValueError, match="empty"):
        evaluate(NNModel(linear_net()), frame.limit(0), "mse")
