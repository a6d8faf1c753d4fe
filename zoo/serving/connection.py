"""Redis connections of Cluster Serving (plain, password, TLS) and the atomic enqueue script."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import redis
import redis.asyncio

from zoo.serving.errors import ServingConfigError

#: Lua: refuse the whole request when the stream already holds ``max_queue_length`` entries or
#: more (the limit published by the deployment in the model's info hash wins over the caller's),
#: otherwise XADD each ``uri, data, t`` triple. Returns the number added, or ``-(length + 1)``.
ENQUEUE_SCRIPT = """
local limit = tonumber(redis.call('HGET', KEYS[2], 'max_queue_length') or ARGV[1])
local length = redis.call('XLEN', KEYS[1])
if length >= limit then
  return -(length + 1)
end
local n = (#ARGV - 1) / 3
for i = 0, n - 1 do
  redis.call('XADD', KEYS[1], '*', 'uri', ARGV[2 + 3 * i], 'data', ARGV[3 + 3 * i], 't', ARGV[4 + 3 * i])
end
return n
"""


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
    # No read timeout: XREADGROUP BLOCK and BLPOP wait longer than redis-py 8's default of 5 s.
    options: dict[str, Any] = {"socket_timeout": None}
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
