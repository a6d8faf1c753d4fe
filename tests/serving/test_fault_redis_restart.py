"""Fault injection: Redis killed and restarted under load, and Redis down while clients call.

Every assertion message carries the counts of the run (tried / answered / clear errors / lost /
wrong / duplicated).
"""

import shutil
import signal
import threading
import time

import httpx
import numpy as np
import pytest

from zoo.serving import InputQueue
from zoo.serving import defaults as D
from zoo.serving.config import RedisConfig
from zoo.serving.errors import RedisUnavailableError, ServingConfigError
from zoo.serving.metrics import REQUESTS
from zoo.serving.redis_server import RedisServer

from .conftest import LOOPBACK, WorkerThreads, make_config
from .faults import LoadClients, Tally, close_enough, restart_redis, wait_until


@pytest.fixture
def durable_redis(tmp_path):
    """A redis-server with the settings `zoo-serving start` gives the one it manages, in a data
    folder of its own so that it can be killed and started again."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    (tmp_path / "redis").mkdir()
    server = RedisServer(host=LOOPBACK, data_dir=str(tmp_path / "redis")).start()
    yield server
    server.stop()


@pytest.fixture
def worker_threads(durable_redis):
    """Worker threads, stopped before the server is."""
    threads = WorkerThreads()
    yield threads
    threads.stop_all()


def test_managed_redis_keeps_an_append_only_file(durable_redis, tmp_path):
    client = durable_redis.client()
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    with RedisServer(host=LOOPBACK, appendfsync="always") as strict:
        assert strict.client().config_get("appendfsync") == {"appendfsync": "always"}
    with pytest.raises(ServingConfigError, match="appendfsync"):
        RedisConfig(appendfsync="sometimes")


def test_redis_restart_under_load_loses_no_accepted_request(durable_redis, worker_threads, models, http_frontend):
    server = durable_redis
    path, reference = models["cnn"]
    config = make_config(server.url, [{"name": "cnn", "path": path, "batch_size": 8}],
                         queue={"claim_idle_ms": 2000}, http={"timeout_s": 30})
    tally = Tally("Redis killed (-9) and restarted 3 times under load")
    x = np.random.default_rng(0).random((560, 3, 8, 8), dtype=np.float32)
    clients = LoadClients(server.url, "cnn", x, reference(x), tally)

    # 1. 200 requests wait in the queue (no worker yet) when Redis is killed and restarted
    clients.start((clients.enqueue, range(200)))
    clients.join()
    down_s = [restart_redis(server)]
    client = server.client()
    queued = client.xlen(D.stream_key("cnn"))
    assert queued == 200, f"{queued} of 200 queued requests survived the restart. {tally}"

    # 2. under load: 3 threads enqueue, 2 predict synchronously, 1 posts over HTTP; 2 more restarts
    worker_threads(config, count=2)
    base_url = http_frontend(config)

    def post(indices):
        with httpx.Client(base_url=base_url, timeout=40) as http:
            for first in indices[::2]:
                pair = [first, first + 1]
                try:
                    reply = http.post("/predict", json={"instances": x[pair].tolist()})
                except httpx.HTTPError as exc:
                    tally.fail(f"HTTP {first}: {type(exc).__name__}: {exc}")
                    continue
                if reply.status_code == 200:
                    clients.record(reply.json()["predictions"], pair)
                else:
                    tally.fail(f"HTTP {first}: {reply.status_code} {reply.text[:200]}")

    clients.start(*[(clients.enqueue, range(200 + k, 440, 3)) for k in range(3)],
                  *[(clients.predict, range(440 + k, 500, 2)) for k in range(2)], (post, range(500, 560)))
    for threshold in (280, 360):
        wait_until(lambda: len(clients.accepted) >= threshold, 120, f"{threshold} accepted requests. {tally}")
        down_s.append(restart_redis(server))
    clients.join()

    # 3. every accepted request has its result, and it is right
    clients.collect()
    client = server.client()
    answered_by_workers = int(client.hget(D.metrics_key("cnn"), REQUESTS) or 0)
    tally.duplicated = answered_by_workers - tally.answered - tally.wrong
    report = f"{tally}; Redis was down {', '.join(f'{s:.2f}' for s in down_s)} s"
    print(report)  # the counts, duplicates included, are reported with -rP even when the test passes
    assert tally.lost == 0 and tally.wrong == 0 and not tally.failures, report
    assert tally.answered == tally.tried, report
    assert client.xlen(D.stream_key("cnn")) == 0, report
    assert client.xpending(D.stream_key("cnn"), D.CONSUMER_GROUP)["pending"] == 0, report
    assert client.xlen(D.dead_letter_key("cnn")) == 0, report  # outages never count as deaths of workers


def test_outage_answers_503_json_and_clients_retry_within_their_timeout(durable_redis, worker_threads, models,
                                                                       http_frontend):
    server = durable_redis
    path, reference = models["cnn"]
    config = make_config(server.url, [{"name": "cnn", "path": path}], redis={"url": server.url, "retry_s": 0.5},
                         queue={"retry_after_s": 4})
    tally = Tally("calls while Redis is down")
    worker_threads(config)
    x = np.random.default_rng(1).random((3, 3, 8, 8), dtype=np.float32)
    with httpx.Client(base_url=http_frontend(config), timeout=30) as http:
        assert http.post("/predict", json={"instances": x[:1].tolist()}).status_code == 200
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        began = time.monotonic()
        reply = http.post("/predict", json={"instances": x[:1].tolist()})
        took = time.monotonic() - began
        for route in ("/predict", "/models", "/metrics", "/health"):
            tally.tried += 1
            if route != "/predict":
                reply = http.get(route)
            body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else None
            if reply.status_code == 503 and body and "Redis" in str(body.get("error")) and reply.headers.get("retry-after") == "4":
                tally.clear_error += 1
            else:
                tally.fail(f"{route}: {reply.status_code} {reply.headers.get('content-type')} {reply.text[:200]}")
        assert tally.clear_error == tally.tried, str(tally)
        assert 0.5 <= took < 10, f"/predict answered 503 after {took:.2f} s; expected redis.retry_s=0.5 of retries"

        began = time.monotonic()
        with pytest.raises(RedisUnavailableError, match="retry_s") as caught:
            InputQueue(server.url, "cnn", retry_s=0.3).enqueue("while-down", input=x[0])
        assert isinstance(caught.value, ConnectionError) and 0.3 <= time.monotonic() - began < 5

        # a call made while Redis is down succeeds once it is back within the call's timeout
        result = {}
        waiting = threading.Thread(target=lambda: result.setdefault(
            "value", InputQueue(server.url, "cnn", retry_s=20).predict(x[1], timeout=30)), daemon=True)
        waiting.start()
        server.start()
        waiting.join(60)
        assert "value" in result and close_enough(result["value"], reference(x[1:2])[0])
        reply = http.post("/predict", json={"instances": x[2:].tolist()})  # the same kept-alive client
        assert reply.status_code == 200 and close_enough(reply.json()["predictions"], reference(x[2:]))
