"""Redis connections of Cluster Serving (plain, password, TLS), the atomic enqueue script, and
retrying through a Redis outage.

Clients connect with redis-py's own retries turned off: `call_with_retry` (and its asyncio twin)
is the one retry policy, bounded by a deadline rather than a count, so a call never waits longer
than its caller's timeout and a sub-second Redis restart is invisible to it.
"""

from __future__ import annotations

import asyncio as _asyncio
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar
from urllib.parse import urlparse

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import EqualJitterBackoff, NoBackoff

from zoo.serving import defaults as D
from zoo.serving.errors import RedisUnavailableError, ServingConfigError

if TYPE_CHECKING:
    from zoo.serving.config import ModelConfig, QueueConfig, ServingConfig

T = TypeVar("T")

#: Lua: add the request's ``uri, data, t`` triples only when all of them fit under the queue limit
#: (the limit the deployment published in the model's info hash wins over the caller's ARGV[1]).
#: Returns ``{added, length before, limit}``; ``added`` is 0 when the request was refused.
ENQUEUE_SCRIPT = f"""
local limit = tonumber(redis.call('HGET', KEYS[2], '{D.INFO_MAX_QUEUE_LENGTH}') or ARGV[1])
local length = redis.call('XLEN', KEYS[1])
local n = (#ARGV - 1) / 3
if length + n > limit then
  return {{0, length, limit}}
end
for i = 0, n - 1 do
  redis.call('XADD', KEYS[1], '*', '{D.FIELD_URI}', ARGV[2 + 3 * i], '{D.FIELD_DATA}', ARGV[3 + 3 * i],
             '{D.FIELD_ENQUEUED_AT}', ARGV[4 + 3 * i])
end
return {{n, length, limit}}
"""

#: Errors that mean Redis cannot be reached right now: refused or reset connections, timeouts, and
#: a server still loading its append-only file after a restart (`redis.BusyLoadingError`).
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)

#: Pauses between retries: doubling from 20 ms up to 0.5 s, half of each pause random.
_BACKOFF = EqualJitterBackoff(cap=0.5, base=0.02)


def call_with_retry(call: Callable[[], T], *, url: str, deadline: float) -> T:
    """``call()``; while Redis is unavailable, retry with backoff until ``deadline`` (a
    `time.monotonic` value), then raise `RedisUnavailableError`."""
    began, failures = time.monotonic(), 0
    while True:
        try:
            return call()
        except UNAVAILABLE as exc:
            failures += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RedisUnavailableError(url, time.monotonic() - began, f"{type(exc).__name__}: {exc}") from exc
            time.sleep(min(_BACKOFF.compute(failures), remaining))


async def acall_with_retry(call: Callable[[], Awaitable[T]], *, url: str, deadline: float) -> T:
    """`call_with_retry` for coroutines: ``await call()`` with the same retries and deadline."""
    began, failures = time.monotonic(), 0
    while True:
        try:
            return await call()
        except UNAVAILABLE as exc:
            failures += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RedisUnavailableError(url, time.monotonic() - began, f"{type(exc).__name__}: {exc}") from exc
            await _asyncio.sleep(min(_BACKOFF.compute(failures), remaining))


def connect(
    url: str,
    *,
    password: str | None = None,
    tls_ca_cert: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    asyncio: bool = False,
    max_connections: int | None = None,
) -> Any:
    """A `redis.Redis` (or `redis.asyncio.Redis` when ``asyncio``) for ``url``.

    Replies have a finite read timeout (`DEFAULT_REDIS_SOCKET_TIMEOUT_S`), above the longest
    blocking read Zoo issues, so a half-open connection raises `redis.TimeoutError` (which callers
    retry) instead of hanging.

    Args:
        url: ``redis://host:port/db``, ``rediss://`` for TLS, or ``unix://path``.
        password: Redis password; overrides one embedded in the URL.
        tls_ca_cert: CA file that verifies the server (``rediss://`` only).
        tls_cert: client certificate (mutual TLS), with ``tls_key``.
        tls_key: the client certificate's key.
        asyncio: return the asyncio client (the HTTP frontend uses it).
        max_connections: pool size (``None``: redis-py's default).
    """
    scheme = urlparse(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ServingConfigError(
            f"Expected a Redis URL starting with redis://, rediss:// or unix://. Received {url!r}."
        )
    # No retries inside redis-py: callers retry with a deadline (call_with_retry), the workers in
    # their loop, so one failure is never retried by two layers.
    no_retries = (redis.asyncio.retry if asyncio else redis.retry).Retry(NoBackoff(), 0)
    options: dict[str, Any] = {"socket_timeout": D.DEFAULT_REDIS_SOCKET_TIMEOUT_S, "socket_connect_timeout": D.DEFAULT_REDIS_CONNECT_TIMEOUT_S,
                               "retry": no_retries}
    if password is not None:
        options["password"] = password
    if max_connections is not None:
        options["max_connections"] = max_connections
    if scheme == "rediss":
        if tls_ca_cert:
            options["ssl_ca_certs"] = tls_ca_cert
        if tls_cert:
            options["ssl_certfile"] = tls_cert
            options["ssl_keyfile"] = tls_key
    elif tls_ca_cert or tls_cert:
        raise ServingConfigError(
            f"TLS files were given but the URL {url!r} is not rediss://. Use rediss://host:port to connect over TLS."
        )
    module = redis.asyncio if asyncio else redis
    return module.Redis.from_url(url, **options)


def connect_config(config: ServingConfig) -> redis.Redis:
    """A synchronous client for the Redis of ``config``."""
    return connect(config.redis.effective_url, **config.redis.connection_options())


def publish_info(client: redis.Redis, model: ModelConfig, queue: QueueConfig) -> None:
    """Write the model's info hash (read by clients for the queue limit and by ``GET /models``)."""
    client.hset(D.info_key(model.name), mapping={
        "name": model.name, "path": model.path, "batch_size": model.batch_size,
        "max_batch_wait_ms": model.max_batch_wait_ms, "workers": model.workers,
        D.INFO_MAX_QUEUE_LENGTH: queue.max_queue_length, "top_n": model.top_n or 0,
    })
