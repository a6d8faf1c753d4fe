"""The storage pre-flight of a fit: every bad checkpoint or TensorBoard URL fails with its clear
error before any Spark job starts, and the shared-storage check on one host."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays
from zoo import storage
from zoo.devcluster.processes import free_port
from zoo.engine import EveryEpoch, MaxEpoch
from zoo.engine.storage_preflight import _refuse_unless_shared, _visible_on_executors, check_shared_storage
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
    assert [seen for _, seen, _ in _visible_on_executors(spark.sparkContext, str(marker), "token", slots)] == [False] * slots
    marker.write_text("token")
    answers = _visible_on_executors(spark.sparkContext, str(marker), "token", slots)
    assert [(seen, error) for _, seen, error in answers] == [(True, "")] * slots
    assert sorted(p.name for p in tmp_path.iterdir()) == [marker.name]  # the write probes are gone again
    # The same path with another host's content is not the driver's file either.
    assert not any(seen for _, seen, _ in _visible_on_executors(spark.sparkContext, str(marker), "other", slots))


@pytest.fixture
def immutable_folder(tmp_path):
    """A folder holding a marker that nobody, root included, may add files to (chattr +i)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / ".zoo-shared-probe").write_text("token")
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("needs chattr and a file system with the immutable attribute (ext4, xfs)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_the_visibility_job_reports_executors_that_see_the_path_but_cannot_write_there(spark, immutable_folder):
    # As with an NFS export that maps the executors' user to nobody: the driver's marker is there,
    # and the tasks (which write the checkpoints, from rank 0) cannot add a file beside it.
    slots = spark.sparkContext.defaultParallelism
    answers = _visible_on_executors(spark.sparkContext, str(immutable_folder / ".zoo-shared-probe"), "token", slots)
    assert len(answers) == slots and all(seen for _, seen, _ in answers)
    assert all(error.startswith("PermissionError") for _, _, error in answers), answers
    with pytest.raises(storage.NotWritableError) as info:
        _refuse_unless_shared(f"file://{immutable_folder}", str(immutable_folder), answers)
    hosts = sorted({host for host, _, _ in answers})
    assert f"from the executors on {hosts}: PermissionError" in str(info.value), str(info.value)
    assert str(immutable_folder) in str(info.value) and "write access" in str(info.value)
