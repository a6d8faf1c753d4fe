"""Fault injection: bad training inputs on real Spark (local[2]) are refused on the driver.

Each test feeds a list of bad inputs to `fit` and classifies what happened to each one:
- clear error: the expected error class, naming the column (or the path, or the model) and the
  fix, raised before the fit's barrier stage ran (no job of the fit's ``zoo-fit-*`` job group,
  read from Spark's status store, and no `run_fit` frame in the traceback);
- lost: the fit finished as if nothing were wrong (e.g. NaN weights);
- wrong: another error, an error that does not say what was wrong, or one raised by the workers.
Every assertion message carries the counts (tried / clear error / lost / wrong) and, per input,
what happened. The diverging-loss test runs the barrier stage on purpose: the loss only becomes
NaN while training.
"""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays, rows_in_partitions
from zoo import storage
from zoo.engine import EveryEpoch, MaxEpoch
from zoo.errors import NonFiniteLossError, WorkerError, ZooValueError
from zoo.nnframes import NNEstimator
from zoo.warm_up import wait_for_warm_up

SCHEMA = "features array<double>, label double"
FIT_JOB_GROUP = "zoo-fit-"


@dataclass
class Tally:
    """Outcomes of one run of bad inputs."""

    tried: int = 0
    clear_error: int = 0
    lost: int = 0
    wrong: int = 0
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"tried={self.tried} clear_error={self.clear_error} lost={self.lost} wrong={self.wrong}\n  "
                + "\n  ".join(self.details))


def job_groups(spark) -> dict[int, str | None]:
    """Every job this SparkContext has run (from Spark's status store): id -> job group."""
    jobs = spark.sparkContext._jsc.sc().statusStore().jobsList(None)
    groups = {}
    for i in range(jobs.size()):
        job = jobs.apply(i)
        group = job.jobGroup()
        groups[int(job.jobId())] = group.get() if group.isDefined() else None
    return groups


def try_fit(spark, tally: Tally, name: str, est, df, error: type, texts: list[str]) -> None:
    """Fit `est` on `df`, expecting `error` with all of `texts` before the fit's barrier stage; tally it."""
    tally.tried += 1
    before = job_groups(spark)
    try:
        est.setShowProgress(False).fit(df)
    except Exception as exc:  # classified below
        new_jobs = {j: g for j, g in job_groups(spark).items() if j not in before}
        fit_jobs = [j for j, g in new_jobs.items() if g and g.startswith(FIT_JOB_GROUP)]
        late = fit_jobs or any(frame.name == "run_fit" for frame in traceback.extract_tb(exc.__traceback__))
        message = str(exc)
        missing = [t for t in texts if t not in message]
        if isinstance(exc, error) and not missing and not late:
            tally.clear_error += 1
            tally.details.append(f"{name}: clear error after {len(new_jobs)} check job(s), no fit job")
        else:
            tally.wrong += 1
            tally.details.append(f"{name}: {type(exc).__name__} (expected {error.__name__}), fit jobs {fit_jobs}, "
                                 f"missing {missing}: {message[:300]}")
        return
    tally.lost += 1
    tally.details.append(f"{name}: the fit finished without an error")


def frame(spark, x: np.ndarray, y: np.ndarray):
    """Rows (x[i], y[i]) in 2 partitions, in order (the dry run reads the first rows)."""
    rows = [(row.tolist(), float(t)) for row, t in zip(x, y)]
    return rows_in_partitions(spark, [rows[: len(rows) // 2], rows[len(rows) // 2:]], SCHEMA)


@pytest.fixture(scope="module")
def data():
    """40 rows of 4 finite features and their sum as the label."""
    x = np.random.default_rng(0).normal(size=(40, 4))
    return x, x.sum(axis=1)


@pytest.fixture(scope="module")
def clean(spark, data):
    wait_for_warm_up()  # init_spark's background job is not one of the checks
    return frame(spark, *data)


def linear(**params):
    return NNEstimator(model=torch.nn.Linear(4, 1), criterion=torch.nn.MSELoss(), batchSize=8,
                       endWhen=MaxEpoch(1), **params)


@pytest.mark.slow  # several Spark jobs (or a fit) per input: 30-80 s on 2 busy cores
def test_nan_inf_and_ragged_features_and_labels_are_refused_on_the_driver_naming_the_column(spark, data, clean):
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    tally = Tally()

    def bad(i, j, value, in_label=False):
        """The data with one value replaced (row i, element j or the label): the first rows stay clean."""
        x, y = data[0].copy(), data[1].copy()
        if in_label:
            y[i] = value
        else:
            x[i, j] = value
        return frame(spark, x, y)

    try_fit(spark, tally, "NaN in an array feature", linear(), bad(39, 2, np.nan),
            ZooValueError, ["`features`", "NaN or infinite", "1 of 40 rows"])
    try_fit(spark, tally, "+Inf in an array feature", linear(), bad(25, 0, np.inf),
            ZooValueError, ["`features`", "NaN or infinite", "1 of 40 rows"])
    vectors = bad(30, 3, -np.inf).withColumn("vec", array_to_vector("features"))
    try_fit(spark, tally, "-Inf in an ML Vector feature", linear(featuresCol="vec"), vectors,
            ZooValueError, ["`vec`", "NaN or infinite", "1 of 40 rows"])
    scalar_estimator = NNEstimator(model=torch.nn.Linear(1, 1), criterion=torch.nn.MSELoss(), batchSize=8,
                                   featuresCol="x", endWhen=MaxEpoch(1))
    try_fit(spark, tally, "NaN in a scalar feature", scalar_estimator,
            bad(39, 0, np.nan).select(F.col("features")[0].alias("x"), "label"),
            ZooValueError, ["`x`", "NaN or infinite", "1 of 40 rows"])
    try_fit(spark, tally, "NaN label", linear(), bad(39, 0, np.nan, in_label=True),
            ZooValueError, ["`label`", "NaN or infinite", "1 of 40 rows"])
    try_fit(spark, tally, "-Inf label", linear(), bad(21, 0, -np.inf, in_label=True),
            ZooValueError, ["`label`", "NaN or infinite"])
    # Ragged: each partition agrees with itself (so the dry run's first rows agree), the two differ.
    rng = np.random.default_rng(1)
    ragged = rows_in_partitions(spark, [[(rng.normal(size=4).tolist(), 1.0) for _ in range(20)],
                                        [(rng.normal(size=5).tolist(), 1.0) for _ in range(20)]], SCHEMA)
    try_fit(spark, tally, "ragged arrays (4 then 5 elements)", linear(numWorkers=2), ragged,
            ZooValueError, ["`features`", "different lengths", "from 4 to 5 elements"])
    assert tally.clear_error == tally.tried, str(tally)


@pytest.mark.slow  # several Spark jobs (or a fit) per input: 30-80 s on 2 busy cores
def test_a_callable_preprocessing_may_take_ragged_rows(spark):
    # A callable sees each row: it may pad, so ragged arrays are not refused for it.
    rng = np.random.default_rng(2)
    ragged = rows_in_partitions(spark, [[(rng.normal(size=3 + i % 2).tolist(), 1.0) for i in range(16)]], SCHEMA)
    est = NNEstimator(model=torch.nn.Linear(5, 1), criterion=torch.nn.MSELoss(), batchSize=8, numWorkers=1,
                      endWhen=MaxEpoch(1), feature_preprocessing=lambda row: np.resize(row, 5).astype(np.float32))
    model = est.setShowProgress(False).fit(ragged)
    assert [h["iteration"] for h in model.history if h["event"] == "step"] == [1, 2]


class SumOfInputs(torch.nn.Module):
    """No parameters at all: the sum of the features."""

    def forward(self, x):
        return x.sum(dim=1, keepdim=True)


def frozen_linear():
    net = torch.nn.Linear(4, 1)
    net.requires_grad_(False)
    return net


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_models_without_trainable_parameters_are_refused_on_the_driver(spark, clean, framework):
    tally = Tally()
    if framework == "torch":
        models = {"frozen torch Linear": frozen_linear(), "torch module without parameters": SumOfInputs()}
        criterion = torch.nn.MSELoss()
    else:
        keras = pytest.importorskip("keras", reason="Keras tests need Keras 3: pip install 'spark-zoo[tf]'")
        frozen = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        frozen.trainable = False
        unbuilt = keras.Sequential([keras.layers.Dense(1, trainable=False)])  # built by the driver's dry run
        models, criterion = {"frozen keras Sequential": frozen, "unbuilt frozen keras Sequential": unbuilt}, "mse"
    for name, model in models.items():
        est = NNEstimator(model=model, criterion=criterion, batchSize=8, endWhen=MaxEpoch(1))
        try_fit(spark, tally, name, est, clean, ZooValueError, ["no trainable parameters", "Unfreeze"])
    assert tally.clear_error == tally.tried, str(tally)


def test_unwritable_checkpoint_paths_fail_before_any_spark_job(spark, clean, tmp_path):
    tally = Tally()
    (tmp_path / "a-file").write_text("x")
    cases = {
        "a path under a file": (str(tmp_path / "a-file" / "ckpt"), storage.NotWritableError),
        "file:// URL under a file": ((tmp_path / "a-file" / "ckpt").as_uri(), storage.NotWritableError),
        "a read-only file system (/sys)": ("/sys/zoo-ckpt", storage.NotWritableError),
        "an FTP server that refuses connections": ("ftp://127.0.0.1:1/ckpt", storage.StorageError),
        "a scheme without its package (gs)": ("gs://bucket/ckpt", storage.FileSystemMissingError),
        "an unknown scheme": ("nosuchfs://bucket/ckpt", storage.InvalidURLError),
    }
    for name, (url, error) in cases.items():
        before = len(job_groups(spark))
        try_fit(spark, tally, name, linear().setCheckpoint(url, EveryEpoch()), clean, error,
                [url.replace("file://", "") if url.startswith("file://") else url])
        if len(job_groups(spark)) != before:
            tally.clear_error -= 1
            tally.wrong += 1
            tally.details.append(f"{name}: Spark jobs ran before the storage check refused it")
    assert tally.clear_error == tally.tried, str(tally)


@pytest.mark.slow  # several Spark jobs (or a fit) per input: 30-80 s on 2 busy cores
def test_a_diverging_fit_stops_at_the_first_non_finite_loss_with_the_iteration(spark):
    # Features of size 1e3 and learning rate 1: each SGD step multiplies the error by about 1e6,
    # so the float32 loss overflows within a few steps of the 25 the fit would run.
    x = np.random.default_rng(3).normal(size=(40, 4)) * 1e3
    df = frame_from_arrays(spark, x, x.sum(axis=1), partitions=2)

    def estimator(lr):
        return NNEstimator(model=torch.nn.Linear(4, 1), criterion=torch.nn.MSELoss(), batchSize=8, numWorkers=2,
                           learningRate=lr, optimMethod=torch.optim.SGD, endWhen=MaxEpoch(5)).setShowProgress(False)

    with pytest.raises(NonFiniteLossError) as info:
        estimator(1.0).fit(df)
    error = info.value
    assert isinstance(error, WorkerError) and isinstance(error, FloatingPointError)
    assert 1 < error.iteration < 25 and not np.isfinite(error.loss), str(error)
    assert f"at iteration {error.iteration}" in str(error) and "learningRate" in str(error)
    assert error.failures and all("NonFiniteLossError" in tb for _, tb in error.failures), error.failures
    # The control: the same data with a small learning rate trains all 25 steps to finite weights.
    model = estimator(1e-8).fit(df)
    steps = [h for h in model.history if h["event"] == "step"]
    assert len(steps) == 25 and all(np.isfinite(h["loss"]) for h in steps)
    assert torch.isfinite(model.model.weight).all()


def test_the_non_finite_loss_error_pickles_with_its_fields():
    error = NonFiniteLossError(7, 1, float("nan"), failures=[(1, "tb1"), (0, "tb0")])
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.iteration, copy.epoch, copy.failures) == (7, 1, [(1, "tb1"), (0, "tb0")])
    assert np.isnan(copy.loss) and str(copy) == str(error)
    assert "iteration 7 (epoch 2)" in str(copy) and "worker(s) [0, 1]" in str(copy)
