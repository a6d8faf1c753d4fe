"""End to end through HTTP: each input kind as JSON, routing by model, errors, auth, limits, metrics."""

import base64

import httpx
import numpy as np
import pytest

from zoo.serving import InputQueue
from zoo.serving.metrics import parse
from zoo.serving.connection import publish_info

from .conftest import make_config
from .test_client import expected_image_tensor, png_bytes


@pytest.fixture
def deployment(redis_server, models, start_workers, http_frontend):
    """cnn (first model: the /predict default, images resized to 8x8) and bytes (strings) behind HTTP."""
    cnn_path, cnn = models["cnn"]
    bytes_path, _ = models["bytes"]
    config = make_config(redis_server.url, [
        {"name": "cnn", "path": cnn_path, "batch_size": 8, "image": {"resize": [8, 8]}},
        {"name": "bytes", "path": bytes_path, "string_max_length": 16},
    ])
    start_workers(config, "cnn")
    start_workers(config, "bytes")
    with httpx.Client(base_url=http_frontend(config), timeout=20) as http:
        yield http, cnn


def test_every_input_kind_over_http(deployment):
    http, cnn = deployment
    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    png = png_bytes(seed=4)
    sparse = {"indices": [[0, 0, 0], [2, 5, 1]], "values": [1.0, -3.0], "shape": [3, 8, 8]}
    dense_of_sparse = np.zeros((3, 8, 8), np.float32)
    dense_of_sparse[0, 0, 0], dense_of_sparse[2, 5, 1] = 1.0, -3.0
    reply = http.post("/predict", json={"instances": [
        x[0].tolist(),                                                     # nested lists
        {"input": {"data": x[1].ravel().tolist(), "dtype": "float32", "shape": [3, 8, 8]}},  # typed, named
        sparse,                                                            # sparse tensor
        {"b64": base64.b64encode(png).decode()},                          # image
    ]})
    assert reply.status_code == 200, reply.text
    predictions = np.asarray(reply.json()["predictions"], dtype=np.float32)
    expected = cnn(np.stack([x[0], x[1], dense_of_sparse, expected_image_tensor(png)]))
    np.testing.assert_allclose(predictions, expected, rtol=1e-4, atol=1e-5)
    strings = http.post("/models/bytes/predict", json={"instances": ["ab", {"input": "zoo"}]})
    assert strings.status_code == 200, strings.text
    assert strings.json()["predictions"] == [[ord("a") + ord("b"), 2], [sum(b"zoo"), 3]]


def test_routing_models_health_and_unknown_model(deployment):
    http, cnn = deployment
    listed = http.get("/models").json()
    assert [m["name"] for m in listed["models"]] == ["cnn", "bytes"] and listed["default"] == "cnn"
    assert all(m["live_workers"] == 1 and m["queue_length"] == 0 for m in listed["models"])
    x = np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32)
    named = http.post("/models/cnn/predict", json={"instances": x.tolist()}).json()["predictions"]
    np.testing.assert_allclose(named, cnn(x), rtol=1e-4, atol=1e-5)
    assert http.get("/health").json()["status"] == "ok"
    missing = http.post("/models/nope/predict", json={"instances": [1]})
    assert missing.status_code == 404 and "cnn" in missing.json()["error"]


def test_bad_instances_are_answered_and_others_succeed(deployment):
    http, cnn = deployment
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    reply = http.post("/predict", json={"instances": [x[0].tolist(), [1.0, 2.0]]})
    assert reply.status_code == 422
    body = reply.json()
    np.testing.assert_allclose(body["predictions"][0], cnn(x)[0], rtol=1e-4, atol=1e-5)
    assert body["predictions"][1:] == [None] and [e["index"] for e in body["errors"]] == [1]
    # an instance that cannot be read is refused with the whole request, before anything is queued
    unreadable = http.post("/predict", json={"instances": [x[0].tolist(), {"b64": base64.b64encode(b"no").decode()}]})
    assert unreadable.status_code == 400 and unreadable.json()["error"].startswith("Instance 1: ")
    assert "not a readable image" in unreadable.json()["error"]
    assert http.post("/predict", content=b"{not json").status_code == 400
    assert http.post("/predict", json={"instances": []}).status_code == 400
    assert http.post("/predict", json={"instances": [{"x": {"unknown": 1}}]}).status_code == 400


def test_metrics_count_requests_errors_batches(redis_client, deployment):
    http, _ = deployment
    x = np.zeros((3, 8, 8), np.float32).tolist()
    for _ in range(3):
        assert http.post("/predict", json={"instances": [x, x]}).status_code == 200
    assert http.post("/predict", json={"instances": [x, [0.0]]}).status_code == 422
    samples = parse(http.get("/metrics").text)
    assert samples['zoo_serving_requests_total{model="cnn"}'] == 8
    assert samples['zoo_serving_errors_total{model="cnn"}'] == 1
    assert samples['zoo_serving_batch_size_sum{model="cnn"}'] == 8
    batches = samples['zoo_serving_batch_size_count{model="cnn"}']
    assert 4 <= batches <= 8 and samples['zoo_serving_batch_size_bucket{le="+Inf",model="cnn"}'] == batches
    assert samples['zoo_serving_latency_seconds_count{model="cnn"}'] == 8
    assert samples['zoo_serving_latency_seconds_bucket{le="+Inf",model="cnn"}'] == 8
    assert 0 < samples['zoo_serving_latency_seconds_sum{model="cnn"}'] < 8 * 10
    assert samples['zoo_serving_requests_total{model="bytes"}'] == 0
    assert samples['zoo_serving_queue_length{model="cnn"}'] == 0
    assert samples['zoo_serving_workers{model="cnn"}'] == 1
    assert samples['zoo_serving_http_requests_total{code="200",route="/predict"}'] == 3
    assert samples['zoo_serving_http_requests_total{code="422",route="/predict"}'] == 1


def test_full_queue_answers_503_with_retry_after(redis_client, redis_server, models, http_frontend):
    path, _ = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path}],
                         queue={"max_queue_length": 2, "retry_after_s": 7})
    publish_info(redis_client, config.models[0], config.queue)
    inputs = InputQueue(redis_server.url, "cnn")
    for i in range(2):  # no worker runs: the queue stays full
        inputs.enqueue(f"r{i}", input=np.zeros((3, 8, 8), np.float32))
    with httpx.Client(base_url=http_frontend(config), timeout=10) as http:
        reply = http.post("/predict", json={"instances": [[0.0]]})
        assert reply.status_code == 503 and reply.headers["retry-after"] == "7"
        assert "full" in reply.json()["error"]
        samples = parse(http.get("/metrics").text)
        assert samples['zoo_serving_queue_length{model="cnn"}'] == 2
        assert samples['zoo_serving_http_requests_total{code="503",route="/predict"}'] == 1


def test_bearer_token_and_request_size_limit(redis_client, redis_server, models, start_workers, http_frontend):
    path, cnn = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path}],
                         http={"token": "s3cret", "max_request_bytes": 4000, "timeout_s": 5})
    start_workers(config)
    x = np.random.default_rng(3).random((1, 3, 8, 8), dtype=np.float32)
    with httpx.Client(base_url=http_frontend(config), timeout=10) as http:
        body = {"instances": x.round(3).tolist()}
        assert http.post("/predict", json=body).status_code == 401
        assert http.post("/predict", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/metrics").status_code == 401 and http.get("/models").status_code == 401
        assert http.get("/health").status_code == 200
        auth = {"Authorization": "Bearer s3cret"}
        ok = http.post("/predict", json=body, headers=auth)
        assert ok.status_code == 200
        np.testing.assert_allclose(ok.json()["predictions"], cnn(x.round(3)), rtol=1e-4, atol=1e-5)
        big = {"instances": [x.tolist()] * 10}
        assert http.post("/predict", json=big, headers=auth).status_code == 413

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield b'{"instances": ['
            for _ in range(100):  # about 7 kB, over the 4000-byte limit
                yield b"[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],"
            yield b"[0.0]]}"

        assert http.post("/predict", content=chunks(), headers=auth).status_code == 413
