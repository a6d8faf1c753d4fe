"""Fault injection: hostile HTTP requests against a live deployment.

Every hostile request must get a clear JSON error (its status and a message naming the problem)
on the same kept-alive connection, without taking anything down: valid requests sent between them
are all answered, and answered right. The counts are in every assertion message.
"""

import base64
import http.client
import json
import urllib.parse

import httpx
import numpy as np
import pytest

from zoo.serving import InputQueue, QueueFullError
from zoo.serving import defaults as D
from zoo.serving.connection import publish_info

from .conftest import make_config
from .faults import Tally, close_enough, nested_list, nested_object, png_bomb, strict_json, wait_until
from .test_client import png_bytes

TOKEN = "hostile-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class KeptAlive:
    """One HTTP/1.1 connection for a sequence of requests; counts the times the server dropped it."""

    def __init__(self, base_url: str):
        parsed = urllib.parse.urlparse(base_url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        self.socket = None
        self.dropped: list[str] = []

    def send(self, what: str, method: str, path: str, body: bytes | None = None, headers=None):
        """(status, content type, text) of one request on the kept-alive connection."""
        try:
            self.connection.request(method, path, body=body, headers=AUTH if headers is None else headers)
            response = self.connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (ConnectionError, http.client.HTTPException) as exc:
            self.dropped.append(f"{what}: {type(exc).__name__}")
            self.connection.close()
            self.socket = None
            return 0, "", ""
        if self.socket is not None and self.connection.sock is not self.socket:
            self.dropped.append(f"before {what}")
        self.socket = self.connection.sock
        if self.socket is None:
            self.dropped.append(f"after {what} (Connection: close)")
        return response.status, response.getheader("content-type", ""), text


def instances(*values) -> bytes:
    return json.dumps({"instances": list(values)}).encode()


@pytest.fixture
def hostile_deployment(redis_server, models, onnx_models, start_workers, http_frontend):
    cnn_path, cnn = models["cnn"]
    config = make_config(redis_server.url, [
        {"name": "cnn", "path": cnn_path, "batch_size": 8, "image": {"resize": [8, 8]}},
        {"name": "double", "path": onnx_models["double"]},
        {"name": "log", "path": onnx_models["log"]},
    ], http={"token": TOKEN, "timeout_s": 30})
    for name in ("cnn", "double", "log"):
        start_workers(config, name)
    return http_frontend(config), cnn


def test_hostile_requests_get_clear_errors_and_take_nothing_down(hostile_deployment, redis_client):
    base_url, cnn = hostile_deployment
    png = base64.b64encode(png_bytes(seed=5)).decode()
    bomb_6k = base64.b64encode(png_bomb(6000, 6000)).decode()
    bomb_9k = base64.b64encode(png_bomb(9000, 9000)).decode()
    zeros = [0.0] * 4
    # (what, method, path, body, headers or None for the token, status, fragment of the message)
    hostile = [
        ("JSON nested 5,000 lists deep", "POST", "/models/double/predict", nested_list(5000), None, 400, "nested"),
        ("JSON nested 100,000 lists deep", "POST", "/models/double/predict", nested_list(100_000), None, 400, "nested"),
        ("JSON nested 5,000 objects deep", "POST", "/models/double/predict", nested_object(5000), None, 400, "nested"),
        ("a 6000x6000 PNG bomb (102 KB)", "POST", "/models/cnn/predict", instances({"b64": bomb_6k}), None, 400,
         "max_pixels"),
        ("a 9000x9000 PNG bomb", "POST", "/models/cnn/predict", instances({"b64": bomb_9k}), None, 400, "max_pixels"),
        ("an image for a model with no image: section", "POST", "/models/double/predict", instances({"b64": png}),
         None, 400, "image:"),
        ("a sparse tensor of dense shape [3, 30000, 30000]", "POST", "/models/cnn/predict",
         instances({"indices": [[0, 0, 0]], "values": [1.0], "shape": [3, 30000, 30000]}), None, 400,
         "max_input_elements"),
        ("1,001 instances (the cap is 1,000)", "POST", "/models/double/predict", instances(*[zeros] * 1001), None, 413,
         "max_instances_per_request"),
        ("int64 16777217 for a float32 model", "POST", "/models/double/predict",
         instances({"data": [16777217, 0, 0, 0], "dtype": "int64"}), None, 422, "16777217"),
        ("1.5 declared int64", "POST", "/models/double/predict", instances({"data": [1.5, 0, 0, 0], "dtype": "int64"}),
         None, 400, "1.5"),
        ("the JSON integer 16777217 as float32", "POST", "/models/double/predict", instances([16777217, 0, 0, 0]), None,
         400, "16777217"),
        ("dtype object", "POST", "/models/double/predict", instances({"data": zeros, "dtype": "object"}), None, 400,
         "dtype"),
        ("dtype float1024", "POST", "/models/double/predict", instances({"data": zeros, "dtype": "float1024"}), None,
         400, "float1024"),
        ("a shape of 10^10 elements for 1 value", "POST", "/models/double/predict",
         instances({"data": [0.0], "shape": [100000, 100000]}), None, 400, "shape"),
        ("ragged lists", "POST", "/models/double/predict", instances([[1.0, 2.0], [3.0]]), None, 400, "input"),
        ("a body that is not JSON", "POST", "/models/double/predict", b"{not json", None, 400, "not valid JSON"),
        ("a JSON array body", "POST", "/models/double/predict", b"[1, 2]", None, 400, "instances"),
        ("invalid UTF-8", "POST", "/models/double/predict", b'{"instances": ["\xff\xfe"]}', None, 400, "JSON"),
        ("an empty body", "POST", "/models/double/predict", b"", None, 400, "JSON"),
        ("instances that are a string", "POST", "/models/double/predict", b'{"instances": "x"}', None, 400,
         "instances"),
        ("invalid base64", "POST", "/models/cnn/predict", instances({"b64": "%%%"}), None, 400, "base64"),
        ("sparse indices outside the shape", "POST", "/models/cnn/predict",
         instances({"indices": [[5, 0, 0]], "values": [1.0], "shape": [3, 8, 8]}), None, 400, "outside"),
        ("a string for a tensor model", "POST", "/models/cnn/predict", instances("hello"), None, 422, "failed"),
        ("an unknown model", "POST", "/models/nope/predict", instances(zeros), None, 404, "nope"),
        ("no token", "POST", "/models/double/predict", instances(zeros), {}, 401, "token"),
        ("a wrong token", "POST", "/models/double/predict", instances(zeros), {"Authorization": "Bearer x"}, 401,
         "token"),
        ("/docs without the token", "GET", "/docs", None, {}, 401, "token"),
        ("/openapi.json without the token", "GET", "/openapi.json", None, {}, 401, "token"),
        ("GET on /predict", "GET", "/predict", None, None, 405, "Method Not Allowed"),
    ]
    tally = Tally(f"{len(hostile)} hostile HTTP requests, each followed by a valid one")
    controls = Tally("valid requests between the hostile ones")
    rng = np.random.default_rng(0)
    client = KeptAlive(base_url)
    for what, method, path, body, headers, status, fragment in hostile:
        tally.tried += 1
        code, content_type, text = client.send(what, method, path, body, headers)
        try:
            document = strict_json(text)
        except ValueError:
            document = None
        message = ""
        if isinstance(document, dict):
            message = " ".join(str(e.get("error")) for e in document.get("errors", [])) or str(
                document.get("error", document.get("detail")))
        if code == status and content_type.startswith("application/json") and fragment in message:
            tally.clear_error += 1
        else:
            tally.fail(f"{what}: expected {status} with {fragment!r}; got {code} {content_type} {text[:300]!r}")
        x = rng.random((2, 4), dtype=np.float32)
        controls.tried += 2
        code, _, text = client.send(f"the valid request after {what}", "POST", "/models/double/predict",
                                    instances(*x.tolist()))
        if code != 200:
            controls.lost += 2
            controls.fail(f"after {what}: {code} {text[:200]}")
        elif close_enough(strict_json(text)["predictions"], x * 2):
            controls.answered += 2
        else:
            controls.wrong += 2
    report = f"{tally}\n{controls}\nconnection dropped: {client.dropped}"
    print(report)  # reported with -rP even when the test passes
    assert tally.clear_error == tally.tried and controls.answered == controls.tried, report
    assert not client.dropped, report

    # declared Content-Length over the limit: refused before the body is read (own connection)
    parsed = urllib.parse.urlparse(base_url)
    raw = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    raw.putrequest("POST", "/models/double/predict")
    for name, value in {**AUTH, "Content-Length": str(D.DEFAULT_MAX_REQUEST_BYTES + 1)}.items():
        raw.putheader(name, value)
    raw.endheaders(b'{"instances": [')
    response = raw.getresponse()
    assert response.status == 413 and "max_request_bytes" in json.loads(response.read())["error"]
    raw.close()

    # what still works: the docs with the token, and the models (cnn through an image)
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as http_client:
        assert http_client.get("/docs").status_code == 200
        assert http_client.get("/openapi.json").json()["info"]["title"] == "Zoo Cluster Serving"
        reply = http_client.post("/models/cnn/predict", json={"instances": [{"b64": png}]})
        assert reply.status_code == 200, reply.text
    assert redis_client.xlen(D.stream_key("cnn")) == 0  # the refused bombs were never queued
    # answered results are deleted once the answer is sent (no results left behind by 87 requests)
    wait_until(lambda: not any(redis_client.scan_iter(match="zoo:serving:*:result:*")), 10, "results to be deleted")


def test_nan_and_infinity_outputs_are_null_in_strict_json(hostile_deployment):
    base_url, _ = hostile_deployment
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30) as http_client:
        reply = http_client.post("/models/log/predict", json={"instances": [[0.0, -1.0, 1.0, float(np.e)],
                                                                            [1.0, 1.0, 1.0, 1.0]]})
        body = strict_json(reply.text)  # no NaN or Infinity tokens
        assert reply.status_code == 200, reply.text
        assert body["predictions"][0][:3] == [None, None, 0.0] and body["predictions"][0][3] == pytest.approx(1.0)
        assert body["predictions"][1] == [0.0, 0.0, 0.0, 0.0]
        assert body["warnings"] == [{"index": 0, "warning": "2 non-finite values (NaN or Infinity) are sent as null"}]
        exact = http_client.post("/models/double/predict",
                                 json={"instances": [{"data": [0.1, 2.5, -3.0, 65504.0], "dtype": "float16"}]})
        assert exact.status_code == 200, exact.text
        assert exact.json()["predictions"] == [(np.array([0.1, 2.5, -3.0, 65504.0], np.float16).astype(np.float32)
                                                * 2).tolist()]
        assert "warnings" not in exact.json()


def test_the_queue_limit_counts_every_instance(redis_client, redis_server, onnx_models, http_frontend):
    """No worker runs: what is accepted stays queued, and nothing pushes the queue past its limit."""
    config = make_config(redis_server.url, [{"name": "parked", "path": onnx_models["double"]}],
                         queue={"max_queue_length": 1000, "retry_after_s": 3},
                         http={"max_instances_per_request": 600, "timeout_s": 0.2})
    publish_info(redis_client, config.models[0], config.queue)  # as the workers would: the Python client obeys it
    stream = D.stream_key("parked")
    tally = Tally("requests against a queue of 1,000 with no worker")
    zeros = [[0.0] * 4]
    with httpx.Client(base_url=http_frontend(config), timeout=30) as http_client:
        steps = [(5000, 413, 0, "max_instances_per_request"), (600, 504, 600, None), (600, 503, 600, "400"),
                 (400, 504, 1000, None), (1, 503, 1000, "full")]
        for count, status, length, fragment in steps:
            tally.tried += 1
            reply = http_client.post("/models/parked/predict", json={"instances": zeros * count})
            queued = redis_client.xlen(stream)
            ok = reply.status_code == status and queued == length and (fragment is None or fragment in reply.json()["error"])
            if status == 503:
                ok = ok and reply.headers.get("retry-after") == "3"
            if ok:
                tally.clear_error += status != 504
                tally.answered += status == 504
            else:
                tally.fail(f"{count} instances: expected {status} and {length} queued; got {reply.status_code} "
                           f"{reply.text[:200]!r} and {queued} queued")
    with pytest.raises(QueueFullError, match="1000 of 1000"):
        InputQueue(redis_server.url, "parked").enqueue("one-more", input=np.zeros(4, np.float32))
    assert not tally.failures and redis_client.xlen(stream) == 1000, str(tally)
