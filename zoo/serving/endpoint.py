"""Where a Cluster Serving client connects: Zoo's ``(redis_url, name)``, or the forms Analytics
Zoo's client took (``InputQueue()``, ``InputQueue(host=, port=)``, ``ssl=...``), which had no
model name: a queue built without `redis_url` and either without `name` or with host/port/ssl
is in AZ's form.

An AZ-form queue without `name` serves the first model of the ``config.yaml`` in the working
directory (where ``zoo-serving init`` writes it), with its Redis address and credentials, as AZ's
client served the one model of its deployment; with no config.yaml, Redis on localhost:6379.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from zoo.serving import defaults as D
from zoo.serving.errors import InputError

#: What `OutputQueue.query` (and `InputQueue.predict` at its timeout) answers for a request not
#: answered yet when the queue is built in AZ's form: AZ's client answered the string "[]".
AZ_PENDING = "[]"
#: The config.yaml an AZ-form queue reads its defaults from, relative to the working directory.
DEFAULT_CONFIG_FILE = "config.yaml"


@dataclass
class Endpoint:
    """A resolved client endpoint.

    Attributes:
        redis_url: the Redis URL.
        name: the model name ("" when unknown, e.g. a queue that only talks HTTP).
        options: connection keywords (password, tls_ca_cert, tls_cert, tls_key).
        pending: what a query of an unanswered request returns (None, or AZ's "[]").
    """

    redis_url: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    pending: Any = None


def resolve(redis_url: str | None, name: str, *, host: str | None = None, port: int | str | None = None,
            ssl: bool = False, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
            ssl_ca_certs: str | None = None, config_path: str = DEFAULT_CONFIG_FILE,
            options: dict[str, Any] | None = None) -> Endpoint:
    """The endpoint of a queue from Zoo's or AZ's arguments (see the module docstring)."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    tls = {"tls_cert": ssl_certfile, "tls_key": ssl_keyfile, "tls_ca_cert": ssl_ca_certs}
    if redis_url is not None:
        if host is not None or port is not None:
            raise InputError(f"Give either `redis_url` or `host`/`port`, not both. Received redis_url={redis_url!r}, "
                             f"host={host!r}, port={port!r}.")
        if "://" not in str(redis_url):
            raise InputError(f"Expected `redis_url` like 'redis://host:6379/0'. Received {redis_url!r}; for a host "
                             f"name alone pass host={redis_url!r} (and port=...).")
        return Endpoint(redis_url, name, {**{k: v for k, v in tls.items() if v}, **options})
    if name and host is None and port is None and not ssl:  # Zoo's form with its default URL
        return Endpoint(f"redis://{D.DEFAULT_HOST}:{D.DEFAULT_REDIS_PORT}/0", name, options)
    if host is not None or port is not None or ssl:
        scheme = "rediss" if ssl else "redis"
        url = f"{scheme}://{host or 'localhost'}:{port or D.DEFAULT_REDIS_PORT}/0"
        return Endpoint(url, name, {**{k: v for k, v in tls.items() if v}, **options}, AZ_PENDING)
    if os.path.exists(config_path):
        from zoo.serving.config import load_config

        config = load_config(config_path)
        connection = {k: v for k, v in config.redis.connection_options().items() if v is not None}
        return Endpoint(config.redis.effective_url, name or config.model(None).name, {**connection, **options},
                        AZ_PENDING)
    return Endpoint(f"redis://localhost:{D.DEFAULT_REDIS_PORT}/0", name, options, AZ_PENDING)
