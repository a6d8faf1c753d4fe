"""The worker loop: dynamic batching, poison requests, a worker killed mid-batch, redelivery limits."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from zoo.serving import InputQueue, OutputQueue, PredictionError
from zoo.serving import defaults as D
from zoo.serving.client import encode_request
from zoo.serving.config import save_config
from zoo.serving.metrics import BATCH_SUM, BATCHES, ERRORS, REQUESTS
from zoo.serving.errors import ServingConfigError
from zoo.serving.connection import publish_info
from zoo.serving.worker import load_model

from .conftest import make_config


def counters(client, model):
    return {k.decode(): float(v) for k, v in client.hgetall(D.metrics_key(model)).items()}


def wait_for(predicate, timeout_s=20.0, message="condition"):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {message}"
        time.sleep(0.02)


def test_batches_by_size_then_by_wait(redis_client, redis_server, models, start_workers):
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 8, "max_batch_wait_ms": 1500}])
    inputs = InputQueue(redis_server.url, "cnn")
    x = np.random.default_rng(0).random((20, 3, 8, 8), dtype=np.float32)
    for i in range(20):  # queued before any worker runs: read back as batches of 8, 8, 4
        inputs.enqueue(f"r{i}", input=x[i])
    start = time.monotonic()
    start_workers(config)
    outputs = OutputQueue(redis_server.url, "cnn")
    got = np.stack([outputs.query(f"r{i}", timeout=10) for i in range(20)])
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    stats = counters(redis_client, "cnn")
    assert (stats[BATCHES], stats[BATCH_SUM], stats[REQUESTS]) == (3, 20, 20)
    assert stats["batch_size_bucket:4"] == 1 and stats["batch_size_bucket:8"] == 3
    # the last batch of 4 waited max_batch_wait_ms for more records before it ran (a lower bound:
    # a busy machine can only make it later)
    assert time.monotonic() - start >= 1.5


def test_a_full_batch_runs_without_waiting_for_the_batch_wait(redis_client, redis_server, models, start_workers):
    path, reference = models["cnn"]
    # A wait far longer than the query's timeout: the answer can only come from a batch that did not wait.
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 8,
                                             "max_batch_wait_ms": 600_000}])
    start_workers(config)
    inputs, outputs = InputQueue(redis_server.url, "cnn"), OutputQueue(redis_server.url, "cnn")
    x = np.random.default_rng(2).random((8, 3, 8, 8), dtype=np.float32)
    for i in range(8):
        inputs.enqueue(f"full{i}", input=x[i])
    got = np.stack([outputs.query(f"full{i}", timeout=60) for i in range(8)])
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    assert counters(redis_client, "cnn")["batch_size_bucket:8"] == 1


def test_poison_requests_get_errors_and_the_rest_succeed(redis_client, redis_server, models, start_workers):
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 16}])
    inputs = InputQueue(redis_server.url, "cnn")
    x = np.random.default_rng(1).random((4, 3, 8, 8), dtype=np.float32)
    stream = D.stream_key("cnn")
    inputs.enqueue("good0", input=x[0])
    inputs.enqueue("wrong-shape", input=np.zeros((5, 7), np.float32))
    redis_client.xadd(stream, {"uri": "undecodable", "data": b"\x00garbage", "t": "0"})
    redis_client.xadd(stream, {"uri": "no-data", "t": "0"})
    redis_client.xadd(stream, {"data": encode_request({"input": x[0]})})  # no uri: nobody to answer
    inputs.enqueue("good1", input=x[1])
    inputs.enqueue("not-an-image", input=b"these bytes are no image")
    inputs.enqueue("wrong-dtype", input=np.zeros((3, 8, 8), np.int64))
    inputs.enqueue("good2", input=x[2])
    (worker,) = start_workers(config)
    outputs = OutputQueue(redis_server.url, "cnn")
    for i in range(3):
        np.testing.assert_allclose(outputs.query(f"good{i}", timeout=10), reference(x[i:i + 1])[0], rtol=1e-5, atol=1e-5)
    expected_errors = {"wrong-shape": "Prediction failed", "undecodable": "Cannot read request",
                       "no-data": "no `data` field", "not-an-image": "takes no images",
                       "wrong-dtype": "Prediction failed"}
    for uri, fragment in expected_errors.items():
        with pytest.raises(PredictionError, match=fragment):
            outputs.query(uri, timeout=10)
    # nothing left pending, the stream is empty, the worker keeps serving
    wait_for(lambda: redis_client.xlen(stream) == 0, message="stream drained")
    assert redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 0
    np.testing.assert_allclose(inputs.predict(x[3], timeout=10), reference(x[3:])[0], rtol=1e-5, atol=1e-5)
    stats = counters(redis_client, "cnn")
    assert stats[ERRORS] == len(expected_errors) + 1  # + the entry without uri
    assert stats[REQUESTS] == 10


def test_worker_killed_mid_batch_loses_no_request(redis_client, redis_server, models, start_workers, tmp_path):
    path, reference = models["cnn"]
    # worker A reads entries, then waits up to 60 s for its batch of 64 to fill: it dies holding them
    slow = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 64, "max_batch_wait_ms": 60000}],
                       queue={"claim_idle_ms": 300})
    save_config(slow, tmp_path / "slow.yaml")
    worker_a = subprocess.Popen([sys.executable, "-m", "zoo.serving.worker", "--config", str(tmp_path / "slow.yaml"),
                                 "--consumer", "A"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        wait_for(lambda: redis_client.exists(D.heartbeat_key("cnn", "A")), 60, "worker A to start")
        inputs = InputQueue(redis_server.url, "cnn")
        x = np.random.default_rng(2).random((30, 3, 8, 8), dtype=np.float32)
        for i in range(20):
            inputs.enqueue(f"r{i}", input=x[i])
        stream = D.stream_key("cnn")
        wait_for(lambda: redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 20, message="A to read 20")
        assert not list(redis_client.scan_iter(match=D.result_pattern("cnn")))
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(10)
    finally:
        if worker_a.poll() is None:
            worker_a.kill()
            worker_a.wait()
    # every entry is still delivered-but-unacknowledged, owned by the dead consumer
    pending = redis_client.xpending_range(stream, D.CONSUMER_GROUP, "-", "+", 100)
    assert len(pending) == 20 and {p["consumer"] for p in pending} == {b"A"}
    for i in range(20, 30):
        inputs.enqueue(f"r{i}", input=x[i])
    fast = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 8}], queue={"claim_idle_ms": 300})
    start_workers(fast)
    outputs = OutputQueue(redis_server.url, "cnn")
    got = np.stack([outputs.query(f"r{i}", timeout=20) for i in range(30)])
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    wait_for(lambda: redis_client.xlen(stream) == 0, message="stream drained")
    assert redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 0


def test_entry_that_kills_workers_is_failed_after_max_deliveries(redis_client, redis_server, models, start_workers):
    path, _ = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path}],
                         queue={"claim_idle_ms": 100, "max_deliveries": 2})
    stream = D.stream_key("cnn")
    redis_client.xgroup_create(stream, D.CONSUMER_GROUP, id="0", mkstream=True)
    InputQueue(redis_server.url, "cnn").enqueue("deadly", input=np.zeros((3, 8, 8), np.float32))
    # two workers took it and died (delivered twice, never acknowledged)
    for consumer in ("dead-1", "dead-2"):
        redis_client.xreadgroup(D.CONSUMER_GROUP, consumer, {stream: ">" if consumer == "dead-1" else "0"}, count=1)
        if consumer == "dead-2":
            redis_client.xclaim(stream, D.CONSUMER_GROUP, consumer, 0, [redis_client.xrange(stream)[0][0]])
    wait_for(lambda: redis_client.xpending_range(stream, D.CONSUMER_GROUP, "-", "+", 1)[0]["time_since_delivered"] > 100,
             message="the entry idle longer than claim_idle_ms")
    start_workers(config)
    with pytest.raises(PredictionError, match="delivered 3 times"):
        OutputQueue(redis_server.url, "cnn").query("deadly", timeout=10)


def test_queue_limit_refuses_requests(redis_client, redis_server, models, start_workers):
    path, _ = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path}], queue={"max_queue_length": 3})
    publish_info(redis_client, config.models[0], config.queue)
    inputs = InputQueue(redis_server.url, "cnn")  # its own default limit is far higher: the deployment's wins
    x = np.zeros((3, 8, 8), np.float32)
    for i in range(3):
        inputs.enqueue(f"r{i}", input=x)
    from zoo.serving import QueueFullError

    with pytest.raises(QueueFullError, match="full") as caught:
        inputs.enqueue("r3", input=x)
    assert caught.value.length == 3
    start_workers(config)
    OutputQueue(redis_server.url, "cnn").query("r2", timeout=10)
    wait_for(lambda: redis_client.xlen(D.stream_key("cnn")) == 0, message="stream drained")
    inputs.enqueue("r3", input=x)


def test_a_worker_serves_a_model_from_s3(redis_client, redis_server, models, start_workers, s3, tmp_path,
                                         monkeypatch):
    from zoo.storage.cache import CACHE_ENV

    path, reference = models["cnn"]
    s3.fs.put_file(path, f"{s3.name}/models/cnn.pt")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    config = make_config(redis_server.url, [{"name": "cnn", "path": f"s3://{s3.name}/models/cnn.pt"}])
    start_workers(config)
    x = np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)
    got = InputQueue(redis_server.url, "cnn").predict(x[0], timeout=10)
    np.testing.assert_allclose(got, reference(x[:1])[0], rtol=1e-5, atol=1e-5)
    assert len(os.listdir(tmp_path / "cache")) == 1  # fetched into the worker's local cache
    with pytest.raises(ServingConfigError, match=r"Model file\(s\) \['s3://.*/models/none.pt'\] do not exist"):
        load_model(make_config(redis_server.url, [{"name": "none", "path": f"s3://{s3.name}/models/none.pt"}]).models[0])
