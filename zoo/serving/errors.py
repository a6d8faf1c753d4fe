"""Exceptions of Cluster Serving, each a subclass of the builtin (or `zoo.errors` class) users catch."""

from __future__ import annotations

from zoo.errors import ZooTypeError, ZooValueError


class ServingConfigError(ZooValueError):
    """`config.yaml` (or a `ServingConfig`) holds a value Cluster Serving cannot use."""


class InputError(ZooTypeError):
    """A request input has a type or layout the codec cannot carry; the message names the input."""


class HTTPError(RuntimeError):
    """An error the HTTP frontend answers as JSON ``{"error": message}`` with ``status`` (raised and
    caught only inside `zoo.serving.frontend`; clients see the answer, never the exception).

    Attributes:
        status: the HTTP status code.
        message: the answer's ``error`` text.
        headers: extra response headers (``Retry-After``).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class QueueFullError(RuntimeError):
    """The model's request stream has no room for this request (``max_queue_length``); retry
    after a short wait.

    Attributes:
        model: the model whose queue is full.
        length: the queue length observed.
        retry_after_s: seconds the caller should wait before retrying.
        requested: the entries this request would have added.
        limit: the queue's limit (``None`` when unknown).
    """

    def __init__(self, model: str, length: int, retry_after_s: int, requested: int = 1, limit: int | None = None):
        self.model = model
        self.length = length
        self.retry_after_s = retry_after_s
        self.requested = requested
        self.limit = limit
        if limit is None:
            state = f"is full ({length} entries waiting, the configured max_queue_length)"
        elif length >= limit:
            state = f"is full ({length} of {limit} entries waiting)"
        else:
            state = (f"has room for {limit - length} more entries ({length} of {limit} waiting), and this request "
                     f"adds {requested}")
        super().__init__(
            f"The request queue of model {model!r} {state}. Retry in {retry_after_s} s, add workers, or raise "
            f"queue.max_queue_length in config.yaml."
        )

    def __reduce__(self):
        return (QueueFullError, (self.model, self.length, self.retry_after_s, self.requested, self.limit))


class RedisUnavailableError(ConnectionError):
    """Redis could not be reached (or was still loading its data) for as long as the call retried.

    Attributes:
        url: the Redis URL.
        waited_s: how long the call retried.
        reason: the last error the Redis client reported.
    """

    def __init__(self, url: str, waited_s: float, reason: str):
        self.url = url
        self.waited_s = waited_s
        self.reason = reason
        super().__init__(
            f"Redis at {url} could not be reached for {waited_s:.1f} s ({reason}). Check that redis-server runs "
            f"(`zoo-serving status`); to wait longer through restarts, raise `redis.retry_s` in config.yaml "
            f"(InputQueue(..., retry_s=...) for the Python client)."
        )

    def __reduce__(self):
        return (RedisUnavailableError, (self.url, self.waited_s, self.reason))


class PredictionError(RuntimeError):
    """A worker answered request ``uri`` with an error instead of a prediction.

    Attributes:
        uri: the id of the request.
        reason: the worker's message (what was wrong with the request, or what the model raised).
    """

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = reason
        super().__init__(f"Request {uri!r} failed: {reason}")

    def __reduce__(self):
        return (PredictionError, (self.uri, self.reason))

    def __eq__(self, other):
        return isinstance(other, PredictionError) and (self.uri, self.reason) == (other.uri, other.reason)

    def __hash__(self):
        return hash((self.uri, self.reason))


class ResultTimeoutError(TimeoutError):
    """No result for request ``uri`` arrived within the timeout; it may still be answered later."""

    def __init__(self, uri: str, timeout_s: float):
        self.uri = uri
        self.timeout_s = timeout_s
        super().__init__(
            f"No result for request {uri!r} within {timeout_s} s. Check that workers are running "
            f"(`zoo-serving status`), or pass a larger timeout; the result can still be fetched "
            f"later with OutputQueue.query({uri!r})."
        )

    def __reduce__(self):
        return (ResultTimeoutError, (self.uri, self.timeout_s))
