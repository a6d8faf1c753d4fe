"""fitStream on real Structured Streaming queries (file and rate sources) on local[2]: training
continues across micro-batches and restarts, exactly once, with publish triggers and bad input."""

import os
import shutil
import threading

import numpy as np
import pytest
import torch

from tests.streaming.conftest import (
    ROWS_PER_FILE, SCHEMA, TRUE_WEIGHTS, batch_files, file_stream, regressor, run_to_end, weights, write_batch_file,
)
from zoo.errors import SchemaDriftError, WorkerError
from zoo.nnframes import NNClassifier
from zoo.nnframes.streaming import PublishError

@pytest.fixture(scope="module")
def uninterrupted(spark, tmp_path_factory):
    """Weights after one query trains on files 0..3, one micro-batch each."""
    folder = batch_files(tmp_path_factory.mktemp("all-files"), 4)
    handle = run_to_end(spark, folder, tmp_path_factory.mktemp("uninterrupted"))
    assert [h.batch_id for h in handle.history] == [0, 1, 2, 3]
    assert [h.rows for h in handle.history] == [ROWS_PER_FILE] * 4
    return weights(handle), handle.history


def test_micro_batches_continue_training_and_learn(uninterrupted):
    final, history = uninterrupted
    # Each micro-batch starts where the previous one stopped: the loss keeps falling.
    assert history[-1].loss < history[0].loss / 2
    assert all(h.seconds > 0 for h in history)
    assert np.linalg.norm(final[:2] - TRUE_WEIGHTS) < np.linalg.norm(TRUE_WEIGHTS) / 2


def test_stop_and_restart_trains_like_one_uninterrupted_query(spark, tmp_path, uninterrupted):
    folder, checkpoint = batch_files(tmp_path, 2), tmp_path / "state"
    first = run_to_end(spark, folder, checkpoint)
    assert [h.batch_id for h in first.history] == [0, 1]
    for i in range(2, 4):
        write_batch_file(folder, i)
    # A fresh estimator: weights and optimizer state come from the checkpoint_location, which wins
    # over an initial_model.
    torch.manual_seed(7)
    second = run_to_end(spark, folder, checkpoint, initial_model=torch.nn.Linear(2, 1))
    assert [h.batch_id for h in second.history] == [2, 3]
    np.testing.assert_allclose(weights(second), uninterrupted[0], rtol=0, atol=1e-6)


def test_a_replayed_micro_batch_already_in_the_state_is_skipped(spark, tmp_path, uninterrupted):
    folder, checkpoint = batch_files(tmp_path, 2), tmp_path / "state"
    run_to_end(spark, folder, checkpoint)
    # What a crash right after our commit and before Spark's leaves: Spark replays micro-batch 1.
    for name in ("1", ".1.crc"):
        os.remove(checkpoint / "query" / "commits" / name)
    for i in range(2, 4):
        write_batch_file(folder, i)
    second = run_to_end(spark, folder, checkpoint)
    assert [h.batch_id for h in second.history] == [2, 3]
    np.testing.assert_allclose(weights(second), uninterrupted[0], rtol=0, atol=1e-6)


def test_a_micro_batch_trained_but_not_committed_is_trained_again_from_the_committed_state(
        spark, tmp_path, uninterrupted):
    folder, checkpoint = batch_files(tmp_path, 1), tmp_path / "state"
    failing = regressor().fitStream(file_stream(spark, folder), checkpoint_location=str(checkpoint))
    failing.processAllAvailable()
    # The commit of micro-batch 1 fails after its training wrote a checkpoint: a file stands where
    # the commit records go.
    commits = checkpoint / "commits"
    shutil.move(commits, tmp_path / "commits-aside")
    commits.write_text("not a folder")
    write_batch_file(folder, 1)
    with pytest.raises(Exception, match="commits"):
        failing.processAllAvailable()
    assert len(os.listdir(checkpoint / "state")) == 2  # micro-batch 0's and the uncommitted one of 1
    commits.unlink()
    shutil.move(tmp_path / "commits-aside", commits)
    for i in range(2, 4):
        write_batch_file(folder, i)
    second = run_to_end(spark, folder, checkpoint)
    assert [h.batch_id for h in second.history] == [1, 2, 3]
    np.testing.assert_allclose(weights(second), uninterrupted[0], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_a_driver_killed_mid_stream_restarts_to_the_weights_of_an_uninterrupted_run(spark, tmp_path, uninterrupted):
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env
    from zoo.devcluster.processes import descendants, kill_pids

    folder, checkpoint = batch_files(tmp_path, 4), tmp_path / "state"
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "streaming" / "stream_job.py"), str(folder),
                              str(checkpoint)], env=subprocess_env(), stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for line in child.stdout:
            if line.strip() == "committed 1":
                break
        # Killed with micro-batch 2 under way: between its training, its checkpoint and its commit.
        # The whole driver dies, its JVM too: a JVM left behind would go on running micro-batch 2
        # against the same checkpoint while the restarted query runs it again.
        still_alive = kill_pids([child.pid, *descendants([child.pid])], timeout_s=60)
        assert not still_alive, f"the killed driver's processes {still_alive} did not exit"
    finally:
        child.wait(timeout=60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    restarted = run_to_end(spark, folder, checkpoint)
    assert [h.batch_id for h in restarted.history][-1] == 3
    np.testing.assert_allclose(weights(restarted), uninterrupted[0], rtol=0, atol=1e-6)


class Versions:
    """A publisher that numbers versions 1, 2, ... and remembers what it was given."""

    def __init__(self, fail=False, wanted=1):
        self.published = []
        self.fail = fail
        self.wanted = wanted
        self.event = threading.Event()

    def __call__(self, model, *, metrics, offsets, parent, reference):
        if self.fail:
            raise ConnectionError("registry at http://127.0.0.1:1 refused the connection")
        self.published.append({"weights": [p.detach().clone() for p in model.model.parameters()],
                               "metrics": metrics, "offsets": offsets, "parent": parent})
        if len(self.published) >= self.wanted:
            self.event.set()
        return len(self.published)


def test_publish_every_n_micro_batches_records_offsets_metrics_and_parent(spark, tmp_path):
    folder = batch_files(tmp_path, 4)
    versions = Versions()
    handle = run_to_end(spark, folder, tmp_path / "state", publisher=versions, publish_every_batches=2)
    assert [v["offsets"]["batch_id"] for v in versions.published] == [1, 3]
    # The file source's offset of micro-batch n is its log offset n.
    assert [v["offsets"]["sources"][0]["logOffset"] for v in versions.published] == [1, 3]
    assert [v["parent"] for v in versions.published] == [None, 1]
    assert versions.published[1]["metrics"]["rows"] == 4 * ROWS_PER_FILE
    assert versions.published[1]["metrics"]["loss"] == pytest.approx(handle.history[3].loss)
    assert [h.version for h in handle.history] == [None, 1, None, 2]
    assert handle.latestVersion() == 2
    for published, current in zip(versions.published[1]["weights"], handle.latestModel().model.parameters()):
        torch.testing.assert_close(published, current.detach())


def test_publish_on_a_metric_of_the_history(spark, tmp_path):
    folder = batch_files(tmp_path, 4)
    versions = Versions()
    threshold = {}

    def improved(history):
        # Publish when the loss fell below half of the first micro-batch's.
        threshold.setdefault("loss", history[0].loss / 2)
        return history[-1].loss < threshold["loss"]

    handle = run_to_end(spark, folder, tmp_path / "state", publisher=versions, publish_on_metric=improved)
    published = [h.batch_id for h in handle.history if h.version is not None]
    expected = [h.batch_id for h in handle.history if h.loss < handle.history[0].loss / 2]
    assert published == expected and published


def test_an_unreachable_publisher_stops_the_stream_and_keeps_the_trained_state(spark, tmp_path):
    folder, checkpoint = batch_files(tmp_path, 1), tmp_path / "state"
    handle = regressor().fitStream(file_stream(spark, folder), checkpoint_location=str(checkpoint),
                                   publisher=Versions(fail=True), publish_every_batches=1)
    with pytest.raises(PublishError, match=r"micro-batch 0 failed: ConnectionError: registry at http://127.0.0.1:1"):
        handle.processAllAvailable()
    assert isinstance(handle.exception(), PublishError)
    trained = weights(handle)
    assert handle.latestVersion() is None
    # Restarted with a working publisher: the trained state is there and the next micro-batch publishes.
    write_batch_file(folder, 1)
    versions = Versions()
    restarted = run_to_end(spark, folder, checkpoint, publisher=versions, publish_every_batches=1)
    assert [h.batch_id for h in restarted.history] == [1]
    assert restarted.latestVersion() == 1
    assert not np.allclose(weights(restarted), trained)


def test_a_stream_whose_types_drift_from_the_state_is_refused_naming_the_column(spark, tmp_path):
    folder, checkpoint = batch_files(tmp_path, 1), tmp_path / "state"
    run_to_end(spark, folder, checkpoint)
    drifted = file_stream(spark, folder, "features array<double>, label float")
    with pytest.raises(SchemaDriftError, match=r"column `label` has type float, but the model was trained on double"):
        regressor().fitStream(drifted, checkpoint_location=str(checkpoint))


def test_a_micro_batch_the_model_cannot_take_stops_the_stream_with_the_last_good_state(spark, tmp_path):
    folder, checkpoint = batch_files(tmp_path, 1), tmp_path / "state"
    versions = Versions()
    handle = regressor().fitStream(file_stream(spark, folder), checkpoint_location=str(checkpoint),
                                   publisher=versions, publish_every_batches=1)
    handle.processAllAvailable()
    good = weights(handle)
    committed = sorted(os.listdir(checkpoint / "state"))
    write_batch_file(folder, 1, width=3)  # three features for a model of two inputs
    with pytest.raises(WorkerError, match=r"mat1 and mat2 shapes cannot be multiplied \(\d+x3 and 2x1\)"):
        handle.processAllAvailable()
    assert not handle.isActive and isinstance(handle.exception(), WorkerError)
    assert handle.latestVersion() == 1
    np.testing.assert_array_equal(weights(handle), good)
    assert sorted(os.listdir(checkpoint / "state")) == committed


def test_a_static_dataframe_or_a_trigger_without_a_target_is_refused(spark, tmp_path):
    static = spark.createDataFrame([([1.0, 2.0], 1.0)], SCHEMA)
    with pytest.raises(ValueError, match="Expected a streaming DataFrame"):
        regressor().fitStream(static, checkpoint_location=str(tmp_path))
    stream = spark.readStream.format("rate").load()
    with pytest.raises(ValueError, match="no trigger is"):
        regressor().fitStream(stream, checkpoint_location=str(tmp_path), publisher=Versions())
    with pytest.raises(ValueError, match="nothing to publish to"):
        regressor().fitStream(stream, checkpoint_location=str(tmp_path), publish_every_batches=1)


def test_a_classifier_trains_on_the_rate_source_and_publishes_every_n_seconds(spark, tmp_path):
    from pyspark.sql import functions as F

    rate = (spark.readStream.format("rate-micro-batch").option("rowsPerBatch", 64).load()
            .withColumn("x", (F.col("value") % 17).cast("double") / 17.0 - 0.5)
            .select(F.array(F.col("x"), F.lit(1.0)).alias("features"),
                    (F.col("x") > 0).cast("double").alias("label")))
    torch.manual_seed(0)
    classifier = NNClassifier(model=torch.nn.Linear(2, 2), criterion=torch.nn.CrossEntropyLoss(), batchSize=16,
                              learningRate=0.5, maxEpoch=3).setShowProgress(False)
    versions = Versions(wanted=3)
    handle = classifier.fitStream(rate, checkpoint_location=str(tmp_path / "state"), publisher=versions,
                                  publish_every_seconds=0.001)
    try:
        assert versions.event.wait(timeout=120), handle.exception()
    finally:
        handle.stop()
    assert handle.latestVersion() >= 3 and handle.exception() is None
    model = handle.latestModel()
    assert type(model).__name__ == "NNClassifierModel"
    test = spark.createDataFrame([([-0.4, 1.0], 0.0), ([0.4, 1.0], 1.0)], SCHEMA)
    assert [r.prediction for r in model.transform(test).collect()] == [0.0, 1.0]


def test_publish_triggers_fire_on_any_of_batches_seconds_or_metric_and_bad_ones_are_named():
    from zoo.nnframes.streaming import BatchRecord, PublishPolicy

    history = [BatchRecord(0, 64, 1.0, 0.5), BatchRecord(1, 64, 0.2, 0.5)]
    policy = PublishPolicy(every_batches=3, every_seconds=60.0)
    assert not policy.due(2, 59.0, history)
    assert policy.due(3, 0.0, history) and policy.due(1, 60.0, history)
    on_metric = PublishPolicy(on_metric=lambda h: h[-1].loss < 0.5)
    assert on_metric.due(1, 0.0, history) and not on_metric.due(1, 0.0, history[:1])
    assert not PublishPolicy().enabled
    with pytest.raises(ValueError, match="publish_every_batches"):
        PublishPolicy(every_batches=0)
    with pytest.raises(ValueError, match=r"Expected `publish_every_seconds` > 0 \(seconds\). Received: "
                                         r"publish_every_seconds=-1"):
        PublishPolicy(every_seconds=-1)
    with pytest.raises(TypeError, match="publish_on_metric"):
        PublishPolicy(on_metric=0.5)


def test_empty_micro_batches_are_skipped_and_the_rest_train_as_without_them(spark, tmp_path):
    from pyspark.sql import functions as F

    folder = batch_files(tmp_path, 4)
    # Files 0 and 2 filtered away: the first micro-batch (the one that would check the data) and a
    # later one are empty.
    stream = file_stream(spark, folder).where(~F.input_file_name().rlike("part-00[02]"))
    handle = regressor().fitStream(stream, checkpoint_location=str(tmp_path / "state"))
    try:
        handle.processAllAvailable()
    finally:
        handle.stop()
    assert [(h.batch_id, h.rows) for h in handle.history] == [(1, ROWS_PER_FILE), (3, ROWS_PER_FILE)]
    only = tmp_path / "only"
    only.mkdir()
    for i in (1, 3):
        write_batch_file(only, i)
    reference = run_to_end(spark, only, tmp_path / "reference-state")
    np.testing.assert_allclose(weights(handle), weights(reference), rtol=0, atol=1e-6)
