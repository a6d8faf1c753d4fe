"""fitStream publishing to a real MLflow registry (sqlite, and a tracking server that goes away)
behind the evaluation gate, and a Keras model trained across a restart."""

import numpy as np
import pytest

from tests.streaming.conftest import (
    ROWS_PER_FILE, SCHEMA, TRUE_WEIGHTS, batch_files, file_stream, regressor, run_to_end, weights, write_batch_file,
)

pytest.importorskip("mlflow", reason="Publishing tests need MLflow: pip install 'spark-zoo[registry]'")

from tests.registry.conftest import registry, tracking_uri  # noqa: E402,F401 - the registry's fixtures
from zoo.nnframes.streaming import Gate  # noqa: E402


@pytest.fixture
def heldout(spark):
    rng = np.random.default_rng(99)
    x = rng.normal(size=(64, 2))
    return spark.createDataFrame([(list(map(float, r)), float(r @ TRUE_WEIGHTS + 0.5)) for r in x], SCHEMA)


@pytest.mark.slow
def test_versions_are_registered_with_offsets_parent_metrics_and_gated_on_held_out_rows(
        spark, tmp_path, registry, heldout):  # noqa: F811
    folder = batch_files(tmp_path, 4)
    handle = run_to_end(spark, folder, tmp_path / "state", registry=registry, model_name="stream-net",
                        publish_every_batches=2, gate=Gate(heldout, "mse", tolerance=0.0))
    assert handle.latestVersion() == 2
    one, two = registry.versions("stream-net")
    assert (one.offsets["batch_id"], two.offsets["batch_id"]) == (1, 3)
    assert two.offsets["sources"] == [{"logOffset": 3}]
    assert (one.parent, two.parent) == (None, 1)
    assert two.metrics["rows"] == 4 * ROWS_PER_FILE
    # Two more micro-batches of the same target: the held-out error falls, so the gate accepts version 2.
    assert two.metrics["heldout_mse"] < one.metrics["heldout_mse"]
    assert registry.champion("stream-net") == 2
    assert two.gate_metric == pytest.approx(two.metrics["heldout_mse"])
    resolved = registry.resolve("models:/stream-net@champion")
    assert resolved.reference is not None and "features[0]" in resolved.reference.features


def test_a_version_worse_than_the_champion_is_rejected_and_the_champion_stays(spark, tmp_path, registry, heldout):  # noqa: F811
    folder = batch_files(tmp_path, 2)
    # A higher-is-better metric that the better model scores lower on: the second version regresses.
    handle = run_to_end(spark, folder, tmp_path / "state", registry=registry, model_name="stream-gated",
                        publish_every_batches=1, gate=Gate(heldout, "mse", higher_is_better=True))
    assert handle.latestVersion() == 2
    one, two = registry.versions("stream-gated")
    assert registry.champion("stream-gated") == 1
    assert two.status == "rejected" and "tolerance" in two.rejected_reason


@pytest.mark.slow
def test_a_keras_model_trains_across_a_restart(spark, tmp_path):
    keras = pytest.importorskip("keras", reason="Keras tests need the tf extra: pip install 'spark-zoo[tf]'")
    from zoo.nnframes import NNEstimator

    def estimator():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        return NNEstimator(model=model, criterion="mse", batchSize=16, learningRate=0.3, maxEpoch=2,
                           optimMethod=keras.optimizers.Adam, shuffle=False).setShowProgress(False)

    folder, checkpoint = batch_files(tmp_path, 1), tmp_path / "state"
    first = run_to_end(spark, folder, checkpoint, estimator())
    after_one = first.latestModel().model.get_weights()[0].ravel().copy()
    for i in range(1, 4):
        write_batch_file(folder, i)
    second = run_to_end(spark, folder, checkpoint, estimator())
    assert [h.batch_id for h in second.history] == [1, 2, 3]
    final = second.latestModel().model.get_weights()[0].ravel()
    assert np.linalg.norm(final - TRUE_WEIGHTS) < np.linalg.norm(after_one - TRUE_WEIGHTS)


@pytest.mark.slow
def test_a_registry_that_goes_away_is_named_and_the_trained_state_is_kept(spark, tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import urllib.request

    from tests.conftest import subprocess_env
    from zoo.devcluster.processes import free_port, kill_groups, wait_for
    from zoo.nnframes.streaming import PublishError
    from zoo.registry import ModelRegistry

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once, not after minutes of retries
    uri = f"http://127.0.0.1:{free_port()}"
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    server = subprocess.Popen([mlflow, "server", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db",
                               "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                               "--port", uri.rsplit(":", 1)[1], "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env(),
                              start_new_session=True)
    try:
        wait_for(lambda: urllib.request.urlopen(f"{uri}/health", timeout=5).status == 200, "mlflow server",
                 procs=[server], timeout_s=180)
        folder, checkpoint = batch_files(tmp_path, 1), tmp_path / "state"
        handle = regressor().fitStream(file_stream(spark, folder), checkpoint_location=str(checkpoint),
                                       registry=ModelRegistry(uri), model_name="net", publish_every_batches=1)
        handle.processAllAvailable()
        assert handle.latestVersion() == 1
    finally:
        kill_groups([server.pid])
        server.wait(timeout=30)
    write_batch_file(folder, 1)
    with pytest.raises(PublishError, match=rf"after micro-batch 1 failed: RegistryError: .*'{uri}'.*is committed"):
        handle.processAllAvailable()
    assert handle.latestVersion() == 1
    trained = weights(handle)
    # The state of micro-batch 1 was committed before publishing: a new query starts after it.
    restarted = run_to_end(spark, folder, checkpoint)
    assert restarted.history == [] and restarted.latestVersion() == 1
    np.testing.assert_array_equal(weights(restarted), trained)


def test_a_moving_window_gate_judges_the_champion_on_the_same_rows(spark, tmp_path, registry):  # noqa: F811
    # Window 2 adds to the labels a pattern orthogonal to every linear model's error (to the
    # features and the constant), so each model's error there is its window-1 error + 9 exactly.
    # Against the champion's figure recorded on window 1 the better version 2 would look worse;
    # judged on the same rows it is better.
    rng = np.random.default_rng(99)
    x = rng.normal(size=(64, 2))
    y = x @ TRUE_WEIGHTS + 0.5
    basis, _ = np.linalg.qr(np.column_stack([x, np.ones(64)]))
    pattern = rng.normal(size=64)
    pattern -= basis @ (basis.T @ pattern)
    pattern *= 3.0 / np.sqrt(np.mean(pattern ** 2))
    windows = [spark.createDataFrame([(list(map(float, r)), float(t)) for r, t in zip(x, labels)], SCHEMA)
               for labels in (y, y + pattern)]
    calls = []

    def window():
        calls.append(len(calls))
        return windows[min(len(calls) - 1, 1)]

    folder = batch_files(tmp_path, 2)
    handle = run_to_end(spark, folder, tmp_path / "state", registry=registry, model_name="stream-window",
                        publish_every_batches=1, gate=Gate(window, "mse"))
    assert handle.latestVersion() == 2 and len(calls) == 2
    one, two = registry.versions("stream-window")
    assert two.gate_metric > one.gate_metric  # the recorded figures: 9 apart, so a stale comparison rejects
    assert registry.champion("stream-window") == 2, two.rejected_reason
