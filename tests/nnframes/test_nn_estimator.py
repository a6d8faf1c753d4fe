"""NNEstimator / NNClassifier / NNModel as Spark ML stages: column kinds, preprocessing, params, transform."""

import traceback
import uuid

import numpy as np
import pytest
import torch
from pyspark.ml.linalg import Vectors

from tests.conftest import frame_from_arrays
from zoo.engine import MaxEpoch
from zoo.nnframes import (
    ArrayToTensor, ChainedPreprocessing, MLlibVectorToTensor, NNClassifier, NNEstimator, NNModel, ScalarToTensor,
    SeqToTensor,
)


def accuracy(df):
    return df.selectExpr("avg(cast(prediction = label as double))").first()[0]


def test_params_by_keyword_and_camel_case_setters():
    est = NNEstimator(model=torch.nn.Linear(2, 1), criterion=torch.nn.MSELoss(), batchSize=16, maxEpoch=3)
    assert est.getBatchSize() == 16 and est.getMaxEpoch() == 3
    same = est.setBatchSize(8).setMaxEpoch(2).setLearningRate(0.5).setEndWhen(MaxEpoch(4)).setNumWorkers(1)
    assert same is est
    assert (est.getBatchSize(), est.getLearningRate(), est.getEndWhen(), est.getNumWorkers()) == (8, 0.5, MaxEpoch(4), 1)
    assert est.setFeaturesCol(["a", "b"]).feature_columns() == ["a", "b"]
    assert est.setOptimMethod(torch.optim.Adam).getOptimMethod() is torch.optim.Adam
    assert est.setCachingSample(False).getCachingSample() is False


def test_scalar_columns_feed_a_multi_input_model_and_ml_vectors_are_accepted(spark):
    rng = np.random.default_rng(0)
    n = 300
    a, b = rng.normal(size=n), rng.normal(size=(n, 2))
    label = (a + b[:, 0] - b[:, 1] > 0).astype(float)
    rows = [(float(x), Vectors.dense(y) if i % 2 else Vectors.sparse(2, {0: float(y[0]), 1: float(y[1])}), float(t))
            for i, (x, y, t) in enumerate(zip(a, b, label))]
    df = spark.createDataFrame(rows, ["a", "b", "label"])

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(1, 8), torch.nn.Linear(2, 8)
            self.out = torch.nn.Linear(8, 2)

        def forward(self, a, b):
            return self.out(torch.relu(self.a(a) + self.b(b)))

    torch.manual_seed(0)
    clf = NNClassifier(model=TwoInputs(), criterion=torch.nn.CrossEntropyLoss(), featuresCol=["a", "b"],
                       feature_preprocessing=[ScalarToTensor(), MLlibVectorToTensor([2])], batchSize=32,
                       maxEpoch=12, learningRate=0.3).setShowProgress(False)
    model = clf.fit(df)
    out = model.transform(df)
    assert dict(out.dtypes)["prediction"] == "double" and dict(out.dtypes)["probability"] == "vector"
    assert accuracy(out) > 0.9


def test_preprocessing_shapes_images_and_callables(spark):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(200, 16))
    label = (images[:, :8].sum(1) > images[:, 8:].sum(1)).astype(float)
    df = frame_from_arrays(spark, images, label)

    class TinyCNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.fc = torch.nn.Linear(64, 2)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).flatten(1))

    chained = ChainedPreprocessing([lambda row: np.asarray(row) * 2.0, SeqToTensor([1, 4, 4])])
    torch.manual_seed(0)
    model = NNClassifier(model=TinyCNN(), criterion=torch.nn.CrossEntropyLoss(), feature_preprocessing=chained,
                         batchSize=20, maxEpoch=10, learningRate=0.1).setShowProgress(False).fit(df)
    assert accuracy(model.transform(df)) > 0.85
    assert ArrayToTensor([2, 8]).transform(images[:3]).shape == (3, 2, 8)


def test_one_based_labels_and_single_output_threshold(spark):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3))
    y = (x.sum(1) > 0).astype(float)
    df = frame_from_arrays(spark, x, y + 1)  # labels 1 and 2
    torch.manual_seed(0)
    clf = NNClassifier(model=torch.nn.Linear(3, 2), criterion=torch.nn.CrossEntropyLoss(), zeroBasedLabel=False,
                       batchSize=30, maxEpoch=10, learningRate=0.5).setShowProgress(False)
    out = clf.fit(df).transform(df)
    assert {r[0] for r in out.select("prediction").distinct().collect()} == {1.0, 2.0}
    assert accuracy(out) > 0.95

    binary = frame_from_arrays(spark, x, y)
    net = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid())
    model = NNClassifier(model=net, criterion=torch.nn.BCELoss(), batchSize=30, maxEpoch=10,
                         learningRate=1.0).setShowProgress(False).fit(binary)
    assert accuracy(model.transform(binary)) > 0.95
    nothing_positive = model.setThreshold(1.0).transform(binary)
    assert nothing_positive.selectExpr("max(prediction)").first()[0] == 0.0
    probabilities = np.array([r[0].toArray() for r in nothing_positive.select("probability").collect()])
    assert np.allclose(probabilities.sum(1), 1.0)


def test_nnmodel_transform_batches_and_keeps_every_column(spark):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(103, 5))
    df = frame_from_arrays(spark, x, np.arange(103.0), partitions=3)
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 2)
    out = NNModel(model=net, batchSize=10).transform(df)
    assert out.columns == ["features", "label", "prediction"]
    rows = sorted(out.collect(), key=lambda r: r["label"])
    got = np.array([r["prediction"] for r in rows])
    with torch.no_grad():
        want = net(torch.tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_transform_of_an_unfitted_model_says_fit_first(spark):
    df = frame_from_arrays(spark, np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="Call fit"):
        NNModel().transform(df)


class CountsPicklings(torch.nn.Module):
    """A Linear(4, 1) that counts how often it is pickled on the driver (copy.deepcopy aside)."""

    picklings = 0

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(x)

    def __getstate__(self):
        if not any(frame.name == "deepcopy" for frame in traceback.extract_stack()):
            type(self).picklings += 1
        return super().__getstate__()


def linear_data(spark, rows=200):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows, 4))
    return frame_from_arrays(spark, x, x @ np.array([1.0, -2.0, 0.5, 3.0]), partitions=2)


def test_the_set_up_pickles_the_model_once_and_checks_the_data_in_one_aggregation(spark):
    df = linear_data(spark).cache()
    df.count()
    sc = spark.sparkContext
    group = f"set-up-{uuid.uuid4().hex}"
    CountsPicklings.picklings = 0
    sc.setJobGroup(group, "the set-up's jobs (the fit's own stage runs in its own group)")
    try:
        NNEstimator(model=CountsPicklings(), criterion=torch.nn.MSELoss(), batchSize=20,
                    endWhen=MaxEpoch(1)).setShowProgress(False).fit(df)
        check_jobs = sc.statusTracker().getJobIdsForGroup(group)
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        df.unpersist()
    assert CountsPicklings.picklings == 1
    # One aggregation, which adaptive query execution runs as a map job and a result job.
    assert len(check_jobs) <= 2, check_jobs


def test_a_lazy_model_trains_from_the_weights_its_dry_run_created(spark):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.LazyLinear(1))
    fitted = NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=20, maxEpoch=20, learningRate=0.1,
                         optimMethod=torch.optim.SGD).setShowProgress(False).fit(linear_data(spark))
    np.testing.assert_allclose(fitted.model[0].weight.detach().numpy(), [[1.0, -2.0, 0.5, 3.0]], atol=0.05)
