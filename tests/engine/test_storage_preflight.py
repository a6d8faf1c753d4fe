"""The storage pre-flight of a fit: every bad checkpoint or TensorBoard URL fails with its clear
error before any Spark job starts, and the shared-storage check on one host."""

import os

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays
from zoo import storage
from zoo.devcluster.processes import free_port
from zoo.engine import EveryEpoch, MaxEpoch
from zoo.engine.storage_preflight import _visible_on_executors, check_shared_storage
from zoo.nnframes import NNEstimator
from zoo.warm_up import wait_for_warm_up


def jobs_so_far(spark) -> int:
    """Every job this SparkContext has run (finished or not), from Spark's status store."""
    return spark.sparkContext._jsc.sc().statusStore().jobsList(None).size()


@pytest.fixture(scope="module")
def frame(spark):
    wait_for_warm_up()  # init_spark's background job must not count as one of the fit's
    x = np.random.default_rng(0).normal(size=(32, 4))
    return frame_from_arrays(spark, x, x.sum(axis=1), partitions=2)


def estimator():
    return NNEstimator(model=torch.nn.Linear(4, 1), criterion=torch.nn.MSELoss(), batchSize=8,
                       endWhen=MaxEpoch(1)).setShowProgress(False)


def bad_inputs(name, request, tmp_path, monkeypatch):
    """(URL, expected error class, texts its message must hold) of one kind of bad input."""
    if name == "unreachable endpoint":
        s3 = request.getfixturevalue("s3")
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
        return f"s3a://{s3.name}/ckpt", storage.UnreachableError, ["(scheme s3a)", "AWS_ENDPOINT_URL"]
    if name == "missing bucket":
        request.getfixturevalue("s3")
        return "s3://no-such-zoo-bucket/ckpt", storage.NotWritableError, ["(scheme s3)", "does not exist"]
    if name == "no credentials":
        s3 = request.getfixturevalue("no_s3_credentials")
        return f"s3://{s3.name}/ckpt", storage.CredentialsError, ["AWS_ACCESS_KEY_ID", "spark.hadoop.fs.s3a.access.key"]
    if name == "missing package":
        return "gs://bucket/ckpt", storage.FileSystemMissingError, ["(scheme gs)", "pip install gcsfs"]
    (tmp_path / "a-file").write_text("x")
    return str(tmp_path / "a-file" / "ckpt"), storage.NotWritableError, ["(scheme file)", "Not a directory"]


@pytest.mark.parametrize("name", ["unreachable endpoint", "missing bucket", "no credentials", "missing package",
                                  "unwritable local path"])
@pytest.mark.parametrize("where", ["checkpoint", "tensorboard"])
def test_a_bad_storage_url_fails_before_any_spark_job(spark, frame, request, tmp_path, monkeypatch, name, where):
    url, error, texts = bad_inputs(name, request, tmp_path, monkeypatch)
    est = estimator()
    if where == "checkpoint":
        est.setCheckpoint(url, EveryEpoch())
    else:
        est.setTensorBoard(url, "app")
    before = jobs_so_far(spark)
    with pytest.raises(error) as info:
        est.fit(frame)
    assert jobs_so_far(spark) == before
    assert url in str(info.value) and all(text in str(info.value) for text in texts), str(info.value)


def test_local_masters_need_no_shared_storage_job(spark, tmp_path):
    wait_for_warm_up()
    before = jobs_so_far(spark)
    check_shared_storage(spark, str(tmp_path / "ckpt"))
    check_shared_storage(spark, "s3://any-bucket/ckpt")  # object stores are shared by definition
    assert jobs_so_far(spark) == before and not os.path.exists(tmp_path / "ckpt")


def test_the_visibility_job_reaches_every_task_slot_and_reads_the_marker(spark, tmp_path):
    marker = tmp_path / ".zoo-shared-probe"
    slots = spark.sparkContext.defaultParallelism
    # No file at that path, as on an executor that does not share the driver's disk.
    assert [seen for _, seen in _visible_on_executors(spark.sparkContext, str(marker), "token", slots)] == [False] * slots
    marker.write_text("token")
    assert [seen for _, seen in _visible_on_executors(spark.sparkContext, str(marker), "token", slots)] == [True] * slots
    # The same path with another host's content is not the driver's file either.
    assert not any(seen for _, seen in _visible_on_executors(spark.sparkContext, str(marker), "other", slots))
