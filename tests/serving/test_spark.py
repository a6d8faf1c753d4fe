"""Workers as a long-running Spark job (barrier stage, one consumer per task) on local[2]."""

import threading
import time

import numpy as np
import pytest

from zoo.serving import InputQueue
from zoo.serving import defaults as D
from zoo.serving.spark import request_stop, serve_on_spark

from .conftest import make_config


def test_spark_tasks_serve_until_stopped(request, redis_client, redis_server, models):
    pytest.importorskip("pyspark", reason="the Spark mode needs pyspark: pip install pyspark")
    spark = request.getfixturevalue("spark")
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "workers": 2, "batch_size": 4}])
    outcome = {}
    job = threading.Thread(target=lambda: outcome.setdefault("results", serve_on_spark(spark, config)), daemon=True)
    job.start()
    deadline = time.monotonic() + 120

    while len(list(redis_client.scan_iter(match=D.heartbeat_pattern("cnn")))) < 2:
        assert time.monotonic() < deadline and job.is_alive(), "Spark workers did not start"
        time.sleep(0.1)
    consumers = {key.decode().rsplit(":", 1)[1] for key in redis_client.scan_iter(match=D.heartbeat_pattern("cnn"))}
    assert len(consumers) == 2 and all(c.startswith("spark-cnn-") for c in consumers)
    x = np.random.default_rng(0).random((12, 3, 8, 8), dtype=np.float32)
    inputs = InputQueue(redis_server.url, "cnn")
    got = np.stack([inputs.predict(x[i], timeout=20) for i in range(12)])
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    request_stop(config)
    job.join(timeout=60)
    assert not job.is_alive()
    results = sorted(outcome["results"])
    assert [(name, index) for name, index, _ in results] == [("cnn", 0), ("cnn", 1)]
    assert sum(answered for _, _, answered in results) == 12
