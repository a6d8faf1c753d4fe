"""Bad input gets a clear error before the training job starts (and before any job for schema errors)."""

import threading
import uuid

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays
from zoo.nnframes import NNClassifier, NNEstimator, SeqToTensor


@pytest.fixture(scope="module")
def data(spark):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    return frame_from_arrays(spark, x, (x[:, 0] > 0).astype(float))


def jobs_run_by(spark, action):
    """Run `action` in a fresh job group; return the ids of the Spark jobs it started."""
    sc = spark.sparkContext
    group = f"bad-input-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "bad input test")
    try:
        action()
    finally:
        jobs = list(sc.statusTracker().getJobIdsForGroup(group))
        sc.setLocalProperty("spark.jobGroup.id", None)
    return jobs


def fit_error(spark, estimator, df):
    caught = {}

    def action():
        with pytest.raises(Exception) as info:
            estimator.setShowProgress(False).fit(df)
        caught["error"] = info.value

    return caught, jobs_run_by(spark, action)


def raised_before_training(error) -> bool:
    """True when the error came from the input checks, before the training stage was launched."""
    import traceback

    return all(frame.name != "run_fit" for frame in traceback.extract_tb(error.__traceback__))


def estimator(**params):
    params.setdefault("batchSize", 8)
    return NNEstimator(model=torch.nn.Linear(4, 1), criterion=torch.nn.MSELoss(), **params)


def test_missing_column_names_it_and_lists_the_available_ones(spark, data):
    caught, jobs = fit_error(spark, estimator(featuresCol="feats"), data)
    assert isinstance(caught["error"], ValueError)
    assert "`feats`" in str(caught["error"]) and "['features', 'label']" in str(caught["error"])
    assert jobs == []


def test_unsupported_column_type_names_type_and_fix(spark, data):
    df = data.selectExpr("cast(label as string) as text", "label")
    caught, jobs = fit_error(spark, estimator(featuresCol="text"), df)
    assert "`text` has type string" in str(caught["error"]) and "VectorAssembler" in str(caught["error"])
    assert jobs == []


def test_batch_size_smaller_than_workers(spark, data):
    caught, jobs = fit_error(spark, estimator(batchSize=1, numWorkers=2), data)
    assert "Expected `batchSize` >= number of workers (2). Received: batchSize=1" in str(caught["error"])
    assert jobs == []


def test_unpicklable_model_is_named(spark, data):
    class Locked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 1)
            self.lock = threading.Lock()

        def forward(self, x):
            return self.linear(x)

    est = NNEstimator(model=Locked(), criterion=torch.nn.MSELoss(), batchSize=8)
    caught, jobs = fit_error(spark, est, data)
    assert isinstance(caught["error"], TypeError)
    assert "Could not pickle `model` (Locked)" in str(caught["error"])
    assert jobs == []


def test_array_length_not_matching_declared_shape(spark, data):
    est = NNEstimator(model=torch.nn.Linear(3, 1), criterion=torch.nn.MSELoss(), batchSize=8,
                      feature_preprocessing=SeqToTensor([3]))
    caught, jobs = fit_error(spark, est, data)
    assert "`features` holds arrays of 4..4 elements" in str(caught["error"]) and "3 elements" in str(caught["error"])
    assert raised_before_training(caught["error"])


def test_null_labels(spark, data):
    df = data.selectExpr("features", "case when label > 0 then null else label end as label")
    caught, jobs = fit_error(spark, estimator(), df)
    assert "`label` has" in str(caught["error"]) and "null" in str(caught["error"])
    assert "dropna" in str(caught["error"])
    assert raised_before_training(caught["error"])


def test_labels_outside_the_models_output_range(spark, data):
    df = data.selectExpr("features", "label + 2 as label")  # labels 2..3, model has 2 outputs
    clf = NNClassifier(model=torch.nn.Linear(4, 2), criterion=torch.nn.CrossEntropyLoss(), batchSize=8)
    caught, jobs = fit_error(spark, clf, df)
    assert "range over [2.0, 3.0]" in str(caught["error"]) and "[0, 1]" in str(caught["error"])
    assert raised_before_training(caught["error"])


def test_one_based_labels_hint(spark, data):
    df = data.selectExpr("features", "label + 1 as label")
    clf = NNClassifier(model=torch.nn.Linear(4, 2), criterion=torch.nn.CrossEntropyLoss(), batchSize=8)
    caught, _ = fit_error(spark, clf, df)
    assert "zeroBasedLabel=False" in str(caught["error"])


def test_model_rejecting_the_input_shape_reports_both_shapes(spark, data):
    est = NNEstimator(model=torch.nn.Linear(5, 1), criterion=torch.nn.MSELoss(), batchSize=8)
    caught, jobs = fit_error(spark, est, data)
    assert "`features` -> [4]" in str(caught["error"]) and "5x1" in str(caught["error"])
    assert raised_before_training(caught["error"])


def test_more_workers_than_task_slots_is_refused_before_any_job(spark, data):
    slots = spark.sparkContext.defaultParallelism
    caught, jobs = fit_error(spark, estimator(numWorkers=slots + 1), data)
    assert f"Expected `numWorkers` <= the task slots the cluster offers at once ({slots})" in str(caught["error"])
    assert f"numWorkers={slots + 1}" in str(caught["error"])
    assert jobs == []


def test_another_frameworks_optimizer_is_refused_before_any_job(spark, data):
    import keras

    caught, jobs = fit_error(spark, estimator(optimMethod=keras.optimizers.Adam), data)
    assert "A torch model needs a torch optimizer, not keras" in str(caught["error"])
    assert "torch.optim.Adam" in str(caught["error"]) and jobs == []

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    keras_estimator = NNEstimator(model=model, criterion="mse", batchSize=8, optimMethod=torch.optim.Adam)
    caught, jobs = fit_error(spark, keras_estimator, data)
    assert "A Keras model needs a Keras optimizer, not torch.optim.Adam" in str(caught["error"])
    assert "keras.optimizers.Adam(" in str(caught["error"]) and jobs == []
