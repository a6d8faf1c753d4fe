"""Serving that follows a registry alias (``models:/name@champion``), against a real redis-server
and a real MLflow sqlite registry: swaps under load lose and fail nothing, every answer names the
version that produced it, bad versions are refused before the swap, and rollback moves back."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("mlflow", reason="serving from the registry needs the registry extra: pip install 'spark-zoo[registry]'")
onnx = pytest.importorskip("onnx", reason="the test models need the inference extra: pip install 'spark-zoo[inference]'")

from onnx import TensorProto, helper  # noqa: E402

from zoo.serving import InputQueue, OutputQueue  # noqa: E402
from zoo.serving import defaults as D  # noqa: E402
from zoo.serving.config import ServingConfig, save_config  # noqa: E402
from zoo.serving.errors import ServingConfigError  # noqa: E402
from zoo.serving.metrics import SWAPS, SWAPS_REFUSED  # noqa: E402

from .conftest import make_config  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
NAME = "scaler"


def scale_model(folder: pathlib.Path, factor: float, width: int = 4) -> str:
    """An ONNX model y = x * factor on float32 [batch, width]."""
    scale = helper.make_tensor("k", TensorProto.FLOAT, [1], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], f"scale{factor}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])], [scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"scale{factor:g}x{width}.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def registry(tmp_path, monkeypatch, redis_server, redis_client):
    """A sqlite MLflow registry in tmp_path that notifies the test Redis, with versions 1 (x * 1)
    and 2 (x * 2) of model "scaler", the champion alias on version 1."""
    from zoo.registry import ModelRegistry

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    registry = ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", redis_url=redis_server.url)
    for factor in (1, 2):
        assert registry.publish(NAME, scale_model(tmp_path, factor)) == factor
    registry.set_alias(NAME, "champion", 1)
    return registry


def follow_config(redis_url: str, registry, **model) -> ServingConfig:
    return make_config(redis_url, [{"name": NAME, "path": f"models:/{NAME}@champion", "registry": registry.tracking_uri,
                                    "batch_size": 8, **model}])


def wait_for(predicate, timeout_s=30.0, message="condition"):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.02)


def answered_version(inputs: InputQueue, x: np.ndarray) -> int:
    """The version of one answer, checked against the value it names (version k multiplies by k)."""
    answer = inputs.predict(x, timeout=30, with_version=True)
    np.testing.assert_allclose(answer.value, x * answer.version, rtol=1e-6)
    return answer.version


def counters(client) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in client.hgetall(D.metrics_key(NAME)).items()}


def test_versions_swap_under_load_without_a_lost_or_failed_request(redis_client, redis_server, registry, start_workers):
    # polling every 60 s: within the test only the pub/sub notifications can make the workers swap
    start_workers(follow_config(redis_server.url, registry, follow_poll_s=60), count=2)
    answers, failures, sent = [], [], [0]
    stop = threading.Event()
    lock = threading.Lock()

    def client(seed):
        rng = np.random.default_rng(seed)
        inputs = InputQueue(redis_server.url, NAME)
        while not stop.is_set():
            x = rng.random(4, dtype=np.float32) + 1
            with lock:
                sent[0] += 1
            try:
                answer = inputs.predict(x, timeout=30, with_version=True)
            except Exception as exc:  # noqa: BLE001 - every failure is collected and asserted on
                with lock:
                    failures.append(exc)
                continue
            with lock:
                answers.append((time.monotonic(), x, answer))
        inputs.close()

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    try:
        moves = [2, 1, 2, 1, 2]
        for target in moves:
            moved_at = time.monotonic()
            registry.set_alias(NAME, "champion", target)
            wait_for(lambda: any(t > moved_at and a.version == target for t, _, a in list(answers)),
                     message=f"an answer of version {target}")
        seen = len(answers)
        wait_for(lambda: len(answers) > seen + 20, message="more answers after the last swap")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert len(answers) == sent[0]
    for _, x, answer in answers:
        np.testing.assert_allclose(answer.value, x * answer.version, rtol=1e-6)
    assert {answer.version for _, _, answer in answers} == {1, 2}
    assert redis_client.xpending(D.stream_key(NAME), D.CONSUMER_GROUP)["pending"] == 0
    stats = counters(redis_client)
    assert stats[SWAPS] >= len(moves) and stats.get(SWAPS_REFUSED, 0) == 0


def test_polling_picks_up_a_move_nobody_announced(redis_client, redis_server, registry, start_workers):
    from zoo.registry import ModelRegistry

    start_workers(follow_config(redis_server.url, registry, follow_poll_s=0.2))
    inputs = InputQueue(redis_server.url, NAME)
    x = np.arange(4, dtype=np.float32)
    assert answered_version(inputs, x) == 1
    ModelRegistry(registry.tracking_uri).set_alias(NAME, "champion", 2)  # no redis_url: no notification
    wait_for(lambda: answered_version(inputs, x) == 2, message="the polled move to version 2")


def test_a_version_of_another_signature_or_without_files_is_refused_and_the_old_one_keeps_serving(
        redis_client, redis_server, registry, start_workers, tmp_path, caplog):
    start_workers(follow_config(redis_server.url, registry, follow_poll_s=60))
    inputs = InputQueue(redis_server.url, NAME)
    x = np.arange(4, dtype=np.float32)
    assert answered_version(inputs, x) == 1

    narrow = registry.publish(NAME, scale_model(tmp_path, 5, width=3))
    registry.set_alias(NAME, "champion", narrow)
    wait_for(lambda: counters(redis_client).get(SWAPS_REFUSED, 0) == 1, message="the refused swap")
    assert answered_version(inputs, x) == 1
    assert f"refused to swap model '{NAME}' to version {narrow}" in caplog.text and "input signature" in caplog.text

    gone = registry.publish(NAME, scale_model(tmp_path, 7))
    shutil.rmtree(registry.resolve(f"models:/{NAME}/{gone}").model_dir)
    registry.set_alias(NAME, "champion", gone)
    wait_for(lambda: counters(redis_client).get(SWAPS_REFUSED, 0) == 2, message="the second refused swap")
    assert answered_version(inputs, x) == 1
    assert f"version {gone}" in caplog.text

    registry.set_alias(NAME, "champion", 2)  # still following
    wait_for(lambda: answered_version(inputs, x) == 2, message="the move to version 2")
    assert counters(redis_client)[SWAPS] == 1


def test_a_pinned_version_is_served_and_not_followed(redis_client, redis_server, registry, start_workers):
    config = make_config(redis_server.url, [{"name": NAME, "path": f"models:/{NAME}/2", "registry": registry.tracking_uri,
                                             "follow_poll_s": 0.1}])
    start_workers(config)
    inputs = InputQueue(redis_server.url, NAME)
    x = np.arange(4, dtype=np.float32)
    assert answered_version(inputs, x) == 2
    registry.set_alias(NAME, "champion", 1)
    for _ in range(20):
        assert answered_version(inputs, x) == 2
    inputs.enqueue("pinned", input=x)
    outputs = OutputQueue(redis_server.url, NAME)
    answer = outputs.query("pinned", timeout=30, with_version=True)
    assert (answer.version, answer.uri) == (2, "pinned")
    np.testing.assert_allclose(answer.value, x * 2)
    taken = outputs.dequeue(with_version=True)
    assert list(taken) == ["pinned"] and taken["pinned"].version == 2


def test_answers_kept_for_no_time_are_fed_back_without_a_version(redis_client, redis_server, registry, start_workers):
    start_workers(follow_config(redis_server.url, registry, feedback_ttl_s=0))
    inputs = InputQueue(redis_server.url, NAME)
    answer = inputs.predict(np.ones(4, np.float32), timeout=30, with_version=True)
    assert answer.version == 1 and not redis_client.exists(D.served_key(NAME, answer.uri))
    inputs.feedback(answer.uri, [1, 1, 1, 1], features=[1, 1, 1, 1])
    (_, entry), = redis_client.xrange(D.feedback_stream(NAME))
    assert b"version" not in entry and entry[b"uri"] == answer.uri.encode()
    assert not redis_client.exists(D.quality_key(NAME))


def test_a_model_file_answers_with_no_version(redis_client, redis_server, start_workers, http_frontend, tmp_path):
    import httpx

    config = make_config(redis_server.url, [{"name": "plain", "path": scale_model(tmp_path, 2)}])
    start_workers(config)
    body = httpx.post(f"{http_frontend(config)}/predict", json={"instances": [[1, 2, 3, 4]]}, timeout=30).json()
    assert body["predictions"] == [[2, 4, 6, 8]] and body["version"] is None and body["versions"] == [None]
    answer = InputQueue(redis_server.url, "plain").predict(np.ones(4, np.float32), timeout=30, with_version=True)
    assert answer.version is None and answer.uri.startswith("sync-")
    np.testing.assert_allclose(answer.value, [2, 2, 2, 2])


def test_rollback_command_moves_the_alias_back_and_the_workers_follow(redis_client, redis_server, registry,
                                                                      start_workers, tmp_path):
    config = follow_config(redis_server.url, registry, follow_poll_s=60)
    save_config(config, tmp_path / "config.yaml")
    start_workers(config)
    inputs = InputQueue(redis_server.url, NAME)
    x = np.arange(4, dtype=np.float32)
    registry.set_alias(NAME, "champion", 2)
    wait_for(lambda: answered_version(inputs, x) == 2, message="the move to version 2")

    result = subprocess.run([sys.executable, "-m", "zoo.serving.cli", "rollback", "-c", str(tmp_path / "config.yaml"),
                             "--model", NAME], cwd=REPO, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{NAME}@champion now names version 1" in result.stdout
    assert registry.champion(NAME) == 1
    wait_for(lambda: answered_version(inputs, x) == 1, message="the rollback to version 1")
    status = subprocess.run([sys.executable, "-m", "zoo.serving.cli", "status", "-c", str(tmp_path / "config.yaml"),
                             "--json"], cwd=REPO, capture_output=True, text=True, timeout=180)
    (model,) = json.loads(status.stdout)["models"]
    assert (model["serving_versions"], model["swaps"], model["swaps_refused"]) == ([1], 2, 0)

    # a model served from a file has no alias to roll back
    file_config = make_config(redis_server.url, [{"name": "plain", "path": scale_model(tmp_path, 1)}])
    save_config(file_config, tmp_path / "plain.yaml")
    result = subprocess.run([sys.executable, "-m", "zoo.serving.cli", "rollback", "-c", str(tmp_path / "plain.yaml")],
                            cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 1 and "no alias to roll back" in result.stderr


def test_http_answers_carry_versions_and_feedback_scores_them_on_metrics(redis_client, redis_server, registry,
                                                                        start_workers, http_frontend, tmp_path):
    import httpx

    from zoo.monitoring.drift import FeatureReference
    from zoo.serving.metrics import parse

    train = np.random.default_rng(0).random((500, 4))
    drifted = registry.publish(NAME, scale_model(tmp_path, 3), reference=FeatureReference.from_columns({"x": train}))
    registry.set_alias(NAME, "champion", drifted)
    config = follow_config(redis_server.url, registry)
    start_workers(config)
    base = http_frontend(config)
    x = np.random.default_rng(1).random((3, 4), dtype=np.float32) + 5  # far outside the training window
    reply = httpx.post(f"{base}/models/{NAME}/predict", json={"instances": x.tolist()}, timeout=30)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    np.testing.assert_allclose(body["predictions"], x * 3, rtol=1e-6)
    assert body["version"] == drifted and body["versions"] == [drifted] * 3 and len(set(body["uris"])) == 3
    (listed,) = httpx.get(f"{base}/models", timeout=30).json()["models"]
    assert listed["path"] == f"models:/{NAME}@champion" and listed["serving_versions"] == [drifted]

    assert 0 < redis_client.ttl(D.served_key(NAME, body["uris"][0])) <= D.DEFAULT_FEEDBACK_TTL_S
    label = (x[0] * 3 + 0.5).tolist()  # every value off by 0.5
    reply = httpx.post(f"{base}/models/{NAME}/feedback", json={"uri": body["uris"][0], "label": label,
                                                               "features": x[0].tolist()}, timeout=30)
    assert reply.status_code == 200 and reply.json() == {"uri": body["uris"][0], "version": drifted}
    (_, entry), = redis_client.xrange(D.feedback_stream(NAME))
    assert entry[b"version"] == str(drifted).encode() and json.loads(entry[b"label"]) == pytest.approx(label)
    assert json.loads(entry[b"features"]) == pytest.approx(x[0].tolist())

    # the Python client: a class label (the arg-max of x[1] * 3) is scored as accuracy
    inputs = InputQueue(redis_server.url, NAME)
    answer = inputs.predict(x[1], timeout=30, with_version=True)
    inputs.feedback(answer.uri, int(np.argmax(x[1])))
    inputs.feedback("never-answered", 1.0)  # kept for training, scores nothing
    over_http = InputQueue(name=NAME, frontend_url=base).predict(x[2], timeout=30, with_version=True)
    assert over_http.version == drifted and over_http.uri.startswith("http-")
    np.testing.assert_allclose(over_http.value, x[2] * 3, rtol=1e-6)
    assert redis_client.xlen(D.feedback_stream(NAME)) == 3

    reply = httpx.post(f"{base}/models/{NAME}/feedback", json={"uri": body["uris"][1], "label": [1, 2]}, timeout=30)
    assert reply.status_code == 400 and "Expected a `label` of 1 or 4 values" in reply.json()["error"]
    assert httpx.post(f"{base}/models/{NAME}/feedback", json={"label": 1}, timeout=30).status_code == 400

    def scraped():
        return parse(httpx.get(f"{base}/metrics", timeout=30).text)

    wait_for(lambda: f'zoo_serving_drift_psi{{feature="x[0]",model="{NAME}",version="{drifted}"}}' in scraped(),
             message="the drift report")
    samples = scraped()
    labels = f'model="{NAME}",version="{drifted}"'
    assert samples[f"zoo_serving_feedback_total{{{labels}}}"] == 2
    assert samples[f"zoo_serving_live_mae{{{labels}}}"] == pytest.approx(0.5, abs=1e-5)
    assert samples[f"zoo_serving_live_accuracy{{{labels}}}"] == 1.0
    for i in range(4):  # every served input is above the whole training window: PSI far over 0.25
        assert samples[f'zoo_serving_drift_psi{{feature="x[{i}]",{labels}}}'] > 1.0


def test_registry_paths_are_checked_when_the_config_is_read(tmp_path):
    for path in ("models:/scaler", "models:/scaler@", "models:/scaler/v3", "models:/a/b@c"):
        with pytest.raises(ServingConfigError, match="Expected a registry model path `models:/name@alias`"):
            ServingConfig.from_dict({"models": [{"name": "m", "path": path}]})
    with pytest.raises(ServingConfigError, match="`registry` of model 'm' is set"):
        ServingConfig.from_dict({"models": [{"name": "m", "path": "/models/m.onnx", "registry": "sqlite:///x.db"}]})
    with pytest.raises(ServingConfigError, match="follow_poll_s"):
        ServingConfig.from_dict({"models": [{"name": "m", "path": "models:/m@champion", "follow_poll_s": 0}]})


def test_an_unknown_alias_or_an_unreachable_registry_is_refused_before_the_workers_start(redis_server, registry):
    from zoo.serving.worker import check_model_paths

    config = make_config(redis_server.url, [{"name": NAME, "path": f"models:/{NAME}@staging",
                                             "registry": registry.tracking_uri}])
    with pytest.raises(ServingConfigError, match=f"Cannot resolve models:/{NAME}@staging of model '{NAME}'.*no alias"):
        check_model_paths(config.models)
    unreachable = make_config(redis_server.url, [{"name": NAME, "path": f"models:/{NAME}@champion",
                                                  "registry": "sqlite:////proc/no-such-folder/mlflow.db"}])
    with pytest.raises(ServingConfigError, match=f"Cannot open the registry of model '{NAME}'.*no-such-folder"):
        check_model_paths(unreachable.models)


def test_notifications_resume_after_a_redis_restart(tmp_path, monkeypatch):
    from zoo.registry import ModelRegistry, alias_channel
    from zoo.serving.redis_server import RedisServer

    from .conftest import LOOPBACK, WorkerThreads
    from .faults import restart_redis

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    (tmp_path / "redis").mkdir()
    server = RedisServer(host=LOOPBACK, data_dir=str(tmp_path / "redis")).start()
    workers = WorkerThreads()
    try:
        registry = ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", redis_url=server.url)
        for factor in (1, 2):
            registry.publish(NAME, scale_model(tmp_path, factor))
        registry.set_alias(NAME, "champion", 1)
        workers(follow_config(server.url, registry, follow_poll_s=60))
        inputs = InputQueue(server.url, NAME, retry_s=30)
        x = np.arange(4, dtype=np.float32)
        assert answered_version(inputs, x) == 1

        restart_redis(server)
        client = server.client()
        # the follow thread subscribes again (polling every 60 s could not make the swap below in time)
        wait_for(lambda: dict(client.pubsub_numsub(alias_channel(NAME))).get(alias_channel(NAME).encode(), 0) == 1,
                 message="the worker's subscription on the restarted server")
        registry.set_alias(NAME, "champion", 2)
        wait_for(lambda: answered_version(inputs, x) == 2, message="the move to version 2 after the restart")
    finally:
        workers.stop_all()
        server.stop()


@pytest.mark.slow
def test_spark_tasks_follow_the_alias(request, redis_client, redis_server, registry):
    pytest.importorskip("pyspark", reason="the Spark mode needs pyspark: pip install pyspark")
    from zoo.serving.spark import request_stop, serve_on_spark

    spark = request.getfixturevalue("spark")
    config = follow_config(redis_server.url, registry, workers=2, follow_poll_s=60)
    outcome = {}
    job = threading.Thread(target=lambda: outcome.setdefault("results", serve_on_spark(spark, config)), daemon=True)
    job.start()
    wait_for(lambda: len(list(redis_client.scan_iter(match=D.heartbeat_pattern(NAME)))) == 2 or not job.is_alive(),
             timeout_s=120, message="two Spark workers")
    assert job.is_alive(), "the Spark job ended before serving"
    inputs = InputQueue(redis_server.url, NAME)
    x = np.arange(4, dtype=np.float32)
    try:
        assert answered_version(inputs, x) == 1
        registry.set_alias(NAME, "champion", 2)
        # both tasks swap: every answer of a burst of requests, spread over both, is version 2
        wait_for(lambda: counters(redis_client).get(SWAPS, 0) == 2, message="both tasks swapped")
        assert {answered_version(inputs, x) for _ in range(20)} == {2}
    finally:
        request_stop(config)
        job.join(timeout=60)
    assert not job.is_alive() and sum(answered for _, _, answered in outcome["results"]) >= 21
