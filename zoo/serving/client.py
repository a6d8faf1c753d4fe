"""The Python client of Cluster Serving: `InputQueue` sends requests, `OutputQueue` reads results.

    from zoo.serving import InputQueue, OutputQueue

    inputs = InputQueue("redis://127.0.0.1:6379", "my-model")
    inputs.enqueue("req-1", image=pathlib.Path("cat.jpg"))
    OutputQueue("redis://127.0.0.1:6379", "my-model").query("req-1")   # None until answered

    inputs.predict(np.zeros((3, 32, 32), np.float32), timeout=5)      # synchronous

Analytics Zoo's forms work too (see `zoo.serving.endpoint`): ``InputQueue()`` and
``OutputQueue()`` serve the first model of ./config.yaml (or Redis on localhost:6379),
``InputQueue(host=, port=)``, ``InputQueue(frontend_url=...)`` predicts over the HTTP frontend,
``enqueue_tensor`` and ``query_and_delete``; such queues answer a pending query with AZ's "[]".

Every call rides out a Redis restart: while Redis refuses connections (or loads its data) it
retries with backoff, for ``retry_s`` seconds (`enqueue`, `query`, `dequeue`) or within the
call's ``timeout`` (`predict`), then raises `RedisUnavailableError`. A request sent while the
connection broke may be queued twice; results are read without being lost to a broken reply.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
import urllib.error
import urllib.request
import uuid
from typing import Any

import numpy as np

from zoo.serving import codec
from zoo.serving import defaults as D
from zoo.serving import endpoint
from zoo.serving.connection import ENQUEUE_SCRIPT, UNAVAILABLE, call_with_retry, connect
from zoo.serving.errors import InputError, PredictionError, QueueFullError, ResultTimeoutError
from zoo.serving.quality import feedback_entry, write_feedback


def encode_request(inputs: dict[str, Any]) -> bytes:
    """Encode the named inputs of one request (values normalised by `codec.as_input`)."""
    if not inputs:
        raise InputError("A request needs at least one input. Pass inputs as keywords: enqueue(uri, x=array).")
    return codec.encode({name: codec.as_input(name, value) for name, value in inputs.items()})


def enqueue_args(uris_and_payloads: list[tuple[str, bytes]], max_queue_length: int) -> list[Any]:
    """ARGV of `ENQUEUE_SCRIPT` for a list of ``(uri, payload)`` pairs."""
    now = repr(time.time())
    args: list[Any] = [max_queue_length]
    for uri, payload in uris_and_payloads:
        args.extend((uri, payload, now))
    return args


def check_enqueued(model: str, reply: list, requested: int, retry_after_s: int) -> None:
    """Raise `QueueFullError` when `ENQUEUE_SCRIPT` answered that the request did not fit."""
    added, length, limit = (int(v) for v in reply)
    if added == 0:
        raise QueueFullError(model, length, retry_after_s, requested, limit)


def decode_answer(uri: str, payload: bytes) -> tuple[Any, int | None]:
    """The value of a result payload (a `PredictionError` instance when the worker failed it) and
    the model version that answered (None for a model file, or a failure)."""
    result = codec.decode(payload)
    if D.RESULT_ERROR in result:
        return PredictionError(uri, result[D.RESULT_ERROR]), None
    return result[D.RESULT_OK], result.get(D.RESULT_VERSION)


@dataclass(frozen=True)
class Prediction:
    """A result with what produced it (``with_version=True`` of `InputQueue.predict` and
    `OutputQueue.query`).

    Attributes:
        value: the prediction, as `InputQueue.predict` returns it.
        version: the registry version of the model that answered; None for a model file.
        uri: the request's id (what `InputQueue.feedback` names).
    """

    value: Any
    version: int | None
    uri: str


_UNSET = object()


class _Queue:
    """Shared connection handling of `InputQueue` and `OutputQueue`."""

    def __init__(
        self,
        redis_url: str | None = None,
        name: str = "",
        *,
        password: str | None = None,
        tls_ca_cert: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        retry_s: float = D.DEFAULT_REDIS_RETRY_S,
        host: str | None = None,
        port: int | str | None = None,
        ssl: bool = False,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
        pending: Any = _UNSET,
        needs_name: bool = True,
    ):
        where = endpoint.resolve(redis_url, name, host=host, port=port, ssl=ssl, ssl_certfile=ssl_certfile,
                                 ssl_keyfile=ssl_keyfile, ssl_ca_certs=ssl_ca_certs,
                                 options={"password": password, "tls_ca_cert": tls_ca_cert, "tls_cert": tls_cert,
                                          "tls_key": tls_key})
        if needs_name and not where.name:
            raise InputError("Expected the model `name` the queue belongs to (as in config.yaml). Received an empty "
                             "name, and there is no ./config.yaml to take it from: pass name='my-model'.")
        if not isinstance(retry_s, (int, float)) or retry_s < 0:
            raise InputError(f"Expected `retry_s` as seconds >= 0. Received retry_s={retry_s!r}.")
        self.name = where.name
        self.redis_url = where.redis_url
        self.retry_s = retry_s
        self.pending = where.pending if pending is _UNSET else pending
        self._redis = connect(where.redis_url, **where.options)

    def _call(self, call, deadline: float | None = None):
        """``call()``, retried while Redis is unavailable until ``deadline`` (default: ``retry_s`` from now)."""
        return call_with_retry(call, url=self.redis_url,
                               deadline=time.monotonic() + self.retry_s if deadline is None else deadline)

    def close(self) -> None:
        """Close the Redis connections."""
        self._redis.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InputQueue(_Queue):
    """Sends requests to the model ``name`` of the deployment whose Redis is at ``redis_url``.

    Args:
        redis_url: ``redis://host:port/db`` or ``rediss://`` (TLS).
        name: the model name in config.yaml.
        password: Redis password.
        tls_ca_cert: CA file that verifies a ``rediss://`` server.
        tls_cert: client certificate for mutual TLS (with ``tls_key``).
        tls_key: key of ``tls_cert``.
        retry_s: seconds a call keeps retrying while Redis is unreachable (restarting, loading).
        max_queue_length: limit used while no deployment has published its own.
        host, port, ssl, ssl_certfile, ssl_keyfile, ssl_ca_certs: Analytics Zoo's way to name the
            Redis server, instead of `redis_url` (see `zoo.serving.endpoint`).
        frontend_url: the HTTP frontend's base URL; `predict` then goes over HTTP (AZ's form).
        token: the frontend's bearer token (``http.token``), with `frontend_url`.
        sync: AZ's flag; `predict` is always synchronous and `enqueue` never is.
        pending: what `predict` answers at its timeout instead of raising (AZ's form: "[]").
    """

    def __init__(self, redis_url: str | None = None, name: str = "", *, sync: bool = True,
                 frontend_url: str | None = None, token: str | None = None,
                 max_queue_length: int = D.DEFAULT_MAX_QUEUE_LENGTH, **connection: Any):
        super().__init__(redis_url, name, needs_name=frontend_url is None, **connection)
        self.max_queue_length = max_queue_length
        self.frontend_url = frontend_url.rstrip("/") if frontend_url else None
        self.token = token
        self._enqueue = self._redis.register_script(ENQUEUE_SCRIPT)

    def enqueue_tensor(self, uri: str, data: Any) -> str:
        """Queue one request whose input is an ndarray, or a list of ndarrays (inputs ``t0``,
        ``t1``, ... in the model's input order); Analytics Zoo's call. Returns ``uri``."""
        if isinstance(data, np.ndarray):
            return self.enqueue(uri, **{D.DEFAULT_INPUT_NAME: data})
        if isinstance(data, (list, tuple)) and data and all(isinstance(d, np.ndarray) for d in data):
            return self.enqueue(uri, **{f"t{i}": d for i, d in enumerate(data)})
        raise InputError(f"Expected an ndarray or a list of ndarrays. Received {type(data).__name__}; for other "
                         f"inputs use enqueue(uri, name=value).")

    def enqueue(self, uri: str, **inputs: Any) -> str:
        """Queue one request with id ``uri`` and named inputs; returns ``uri``.

        Inputs may be numpy arrays, `SparseTensor`, strings, or images (`Image`, ``bytes``,
        `pathlib.Path`). Raises `QueueFullError` when the queue is at its maximum length, and
        `RedisUnavailableError` when Redis stayed unreachable for ``retry_s``.
        """
        if not isinstance(uri, str) or not uri:
            raise InputError(f"Expected `uri` as a non-empty string id. Received {uri!r}.")
        self._send([(uri, encode_request(inputs))])
        return uri

    def _send(self, requests: list[tuple[str, bytes]], deadline: float | None = None) -> None:
        args = enqueue_args(requests, self.max_queue_length)
        reply = self._call(lambda: self._enqueue(keys=[D.stream_key(self.name), D.info_key(self.name)], args=args),
                           deadline)
        check_enqueued(self.name, reply, len(requests), D.DEFAULT_RETRY_AFTER_S)

    def predict(self, inputs: Any, timeout: float = D.DEFAULT_TIMEOUT_S, *, with_version: bool = False) -> Any:
        """Send one request and wait for its result (synchronous).

        Args:
            inputs: one value (sent as input ``"input"``), a dict of named inputs, or AZ's JSON
                string ``{"instances": [{name: nested lists, ...}]}`` (its first instance).
            timeout: seconds to wait; `ResultTimeoutError` after that (or `pending`, for a
                queue in AZ's form).
            with_version: return a `Prediction`: the value with the model version that
                answered and the request's uri (for `feedback`).

        Returns:
            The prediction: an array, a list/dict of arrays for multi-output models, or the top-N
            ``[index, score]`` pairs when the model is configured with ``top_n``. Raises
            `PredictionError` when the worker answered with an error, `RedisUnavailableError`
            when Redis stayed unreachable until the timeout.
        """
        if isinstance(inputs, str) and instances_from_json(inputs) is not None:
            inputs = instances_from_json(inputs)
        if self.frontend_url is not None:
            return self._predict_http(inputs, timeout, with_version)
        if not isinstance(inputs, dict):
            inputs = {D.DEFAULT_INPUT_NAME: inputs}
        deadline = time.monotonic() + timeout
        uri = f"sync-{uuid.uuid4().hex}"
        self._send([(uri, encode_request(inputs))], deadline)
        key = D.result_key(self.name, uri)
        payload = self._call(lambda: read_result(self._redis, key, deadline), deadline)
        while payload is None and waiting(deadline):
            payload = self._call(lambda: read_result(self._redis, key, deadline), deadline)
        if payload is None:
            if self.pending is not None:
                return self.pending
            raise ResultTimeoutError(uri, timeout)
        try:  # only now that the value is in hand
            self._redis.delete(key)
        except UNAVAILABLE:
            pass  # the result expires with its TTL
        value, version = decode_answer(uri, payload)
        if isinstance(value, PredictionError):
            raise value
        return Prediction(value, version, uri) if with_version else value

    def feedback(self, uri: str, label: Any, features: Any = None) -> None:
        """Send the true ``label`` of answered request ``uri`` (and the ``features`` to train on):
        an entry of the model's feedback stream (`defaults.feedback_stream`), with the version
        that answered, which it scores for the live accuracy on ``/metrics``.

        Raises:
            InputError: no uri, no label, or a label that is not numeric or fits no prediction.
        """
        served = self._call(lambda: self._redis.get(D.served_key(self.name, uri))) if isinstance(uri, str) else None
        fields, increments = feedback_entry(uri, label, features, served)

        def write():
            pipe = self._redis.pipeline(transaction=True)
            write_feedback(pipe, self.name, fields, increments)
            pipe.execute()

        self._call(write)

    def _predict_http(self, inputs: Any, timeout: float, with_version: bool = False) -> Any:
        """`predict` through the HTTP frontend at `frontend_url`."""
        instance = {k: codec.to_json(v) for k, v in inputs.items()} if isinstance(inputs, dict) else codec.to_json(inputs)
        route = f"/models/{self.name}/predict" if self.name else "/predict"
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.frontend_url + route, json.dumps({"instances": [instance]}).encode(),
                                         headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            reason = json.loads(exc.read() or b"{}").get("error", exc.reason)
            if exc.code == 504 and self.pending is not None:
                return self.pending
            if exc.code == 504:
                raise ResultTimeoutError(route, timeout) from None
            if exc.code in (400, 404, 413):
                raise InputError(f"The frontend refused the request ({exc.code}): {reason}") from None
            raise PredictionError(route, f"HTTP {exc.code}: {reason}") from None
        value = np.asarray(body["predictions"][0])
        if with_version:
            return Prediction(value, body.get("versions", [None])[0], body.get("uris", [""])[0])
        return value


def instances_from_json(text: str) -> dict[str, Any] | None:
    """The first instance of AZ's request JSON ``{"instances": [{name: nested lists}]}`` as
    ``{name: ndarray}`` (a bare value becomes input ``"input"``); None when `text` is not such
    a request (then it is a string input, as in AZ)."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or "instances" not in document:
        return None
    if not isinstance(document["instances"], list) or not document["instances"]:
        raise InputError(f'Expected a JSON request {{"instances": [{{"name": [...]}}]}} with one instance. '
                         f'Received {text[:200]!r}.')
    instance = document["instances"][0]
    if not isinstance(instance, dict):
        instance = {D.DEFAULT_INPUT_NAME: instance}
    return {name: np.asarray(value) if isinstance(value, list) else value for name, value in instance.items()}


def read_result(client: Any, key: str, deadline: float) -> Any:
    """The result at ``key``, waiting until ``deadline`` but at most `MAX_BLOCKING_READ_S`
    (``client`` sync or asyncio): ``None`` means not yet, and callers read again until their
    deadline. It stays in place (BLMOVE of a list onto itself), so a reply lost with a broken
    connection is read again on the retry; whoever reads it deletes it once the value is in hand."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return client.lindex(key, 0)
    return client.blmove(key, key, min(remaining, D.MAX_BLOCKING_READ_S), "LEFT", "RIGHT")


def waiting(deadline: float) -> bool:
    """Whether a reader whose `read_result` came back empty has time left to read again."""
    return time.monotonic() < deadline


class OutputQueue(_Queue):
    """Reads the results of model ``name``; same connection arguments as `InputQueue` (Redis only).

    `pending` is what `query` answers for a request not answered yet: None, or "[]" for a queue
    built in Analytics Zoo's form (``OutputQueue()``, ``OutputQueue(host=, port=)``).
    """

    def query_and_delete(self, uri: str, timeout: float = 0) -> Any:
        """`query`, then remove the result from Redis (Analytics Zoo's call); a failed request's
        result is removed too before its `PredictionError` is raised."""
        try:
            value = self.query(uri, timeout)
        except PredictionError:
            self._call(lambda: self._redis.delete(D.result_key(self.name, uri)))
            raise
        if value is not self.pending:
            self._call(lambda: self._redis.delete(D.result_key(self.name, uri)))
        return value

    def query(self, uri: str, timeout: float = 0, *, with_version: bool = False) -> Any:
        """The result of request ``uri``, or `pending` (None; "[]" in AZ's form) while it is not
        answered yet.

        The result stays readable until it expires (``queue.result_ttl_s``) or `dequeue` takes
        it. With ``timeout`` > 0, wait up to that many seconds for it. Raises `PredictionError`
        when the worker answered with an error. With ``with_version``, an answer comes as a
        `Prediction` (value, the model version that answered, uri).
        """
        key = D.result_key(self.name, uri)
        now = time.monotonic()
        deadline = now + timeout
        payload = self._call(lambda: read_result(self._redis, key, deadline), max(deadline, now + self.retry_s))
        while payload is None and waiting(deadline):
            payload = self._call(lambda: read_result(self._redis, key, deadline), deadline)
        if payload is None:
            return self.pending
        value, version = decode_answer(uri, payload)
        if isinstance(value, PredictionError):
            raise value
        return Prediction(value, version, uri) if with_version else value

    def dequeue(self, *, with_version: bool = False) -> dict[str, Any]:
        """Take every available result of the model: ``{uri: value}``, removed from Redis (with
        ``with_version``, each answer a `Prediction`).

        A request the worker failed maps to a `PredictionError` instance (not raised), so one bad
        request does not hide the others.
        """
        results: dict[str, Any] = {}
        self._call(lambda: self._take_results(results, with_version))
        return results

    def _take_results(self, results: dict[str, Any], with_version: bool) -> None:
        prefix = D.result_key(self.name, "")
        for key in self._redis.scan_iter(match=D.result_pattern(self.name), count=1000):
            payload = self._redis.lpop(key)
            if payload is None:
                continue
            uri = key.decode()[len(prefix):]
            value, version = decode_answer(uri, payload)
            answered = with_version and not isinstance(value, PredictionError)
            results[uri] = Prediction(value, version, uri) if answered else value
