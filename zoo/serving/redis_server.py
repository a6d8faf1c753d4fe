"""A local ``redis-server`` that Cluster Serving starts, watches and stops itself.

`zoo-serving start` uses one when config.yaml names no ``redis.url``; the tests use one on a free
loopback port. It keeps an append-only file (AOF, fsynced every second by default) in its data
folder, so the queued requests, their delivery state and the results survive a restart of Redis:
that is what makes Cluster Serving at-least-once across restarts (see docs/operations.md). RDB
snapshots are off. The password and TLS settings go into a private config file (mode 0600), never
onto the command line.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

import redis

from zoo.serving import defaults as D
from zoo.serving.config import APPENDFSYNC_POLICIES
from zoo.serving.errors import ServingConfigError

INSTALL_HINT = "Install it with `apt-get install redis-server` (Debian/Ubuntu) or point redis.url at an existing Redis."


def find_redis_server() -> str:
    """Path of the ``redis-server`` executable; raises with the install command when missing."""
    path = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None)
    if path is None:
        raise ServingConfigError(f"redis-server was not found on PATH. {INSTALL_HINT}")
    return path


def free_port(host: str = D.DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` child process.

    Args:
        host: bind address (loopback by default).
        port: port; ``None`` picks a free one.
        password: ``requirepass``.
        tls_cert: server certificate; with it the server speaks TLS only (``rediss://``).
        tls_key: key of ``tls_cert``.
        tls_ca_cert: CA file of the TLS setup (Redis needs one; clients verify the server with it).
        tls_auth_clients: require clients to present a certificate that ``tls_ca_cert`` signed.
        data_dir: working folder (config, log, append-only file); a temporary folder removed on
            `stop` when ``None``. Start a server again on the same folder to get its data back.
        appendonly: keep the append-only file (see `zoo.serving.config.RedisConfig.appendonly`).
        appendfsync: ``always``, ``everysec`` or ``no``: when that file is flushed to disk.
    """

    def __init__(self, host: str = D.DEFAULT_HOST, port: int | None = None, password: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, tls_ca_cert: str | None = None,
                 tls_auth_clients: bool = False, data_dir: str | None = None, appendonly: bool = True,
                 appendfsync: str = D.DEFAULT_APPENDFSYNC):
        if appendfsync not in APPENDFSYNC_POLICIES:
            raise ServingConfigError(f"Expected `appendfsync` to be one of {list(APPENDFSYNC_POLICIES)}. "
                                     f"Received {appendfsync!r}.")
        if (tls_cert is None) != (tls_key is None):
            raise ServingConfigError("Expected `tls_cert` and `tls_key` together to serve TLS. Received only one.")
        self.host = host
        self.port = port or free_port(host)
        self.password = password
        if tls_cert and not tls_ca_cert:
            raise ServingConfigError("Expected `tls_ca_cert` with `tls_cert`: redis-server needs a CA file to serve TLS.")
        self.tls_cert, self.tls_key, self.tls_ca_cert = tls_cert, tls_key, tls_ca_cert
        self.tls_auth_clients = tls_auth_clients
        self.appendonly, self.appendfsync = appendonly, appendfsync
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="zoo-redis-")
        os.makedirs(self.data_dir, exist_ok=True)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """URL clients connect to (``rediss://`` when serving TLS)."""
        return f"{'rediss' if self.tls_cert else 'redis'}://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the running server."""
        return self.process.pid if self.process else None

    def _config_text(self) -> str:
        lines = [f"bind {self.host}", "protected-mode yes", 'save ""', f"appendonly {'yes' if self.appendonly else 'no'}",
                 f"appendfsync {self.appendfsync}", "daemonize no", f"dir {self.data_dir}",
                 f"logfile {os.path.join(self.data_dir, 'redis.log')}"]
        if self.tls_cert:
            lines += ["port 0", f"tls-port {self.port}", f"tls-cert-file {self.tls_cert}",
                      f"tls-key-file {self.tls_key}"]
            lines += [f"tls-ca-cert-file {self.tls_ca_cert}",
                      f"tls-auth-clients {'yes' if self.tls_auth_clients else 'no'}"]
        else:
            lines += [f"port {self.port}"]
        if self.password:
            lines.append(f'requirepass "{self.password}"')
        return "\n".join(lines) + "\n"

    def client(self, **options: Any) -> redis.Redis:
        """A synchronous client for this server (TLS verified against ``tls_ca_cert`` when set)."""
        from zoo.serving.connection import connect

        return connect(self.url, password=self.password, tls_ca_cert=options.pop("tls_ca_cert", self.tls_ca_cert),
                       **options)

    def start(self, timeout_s: float = 10.0, detach: bool = False) -> "RedisServer":
        """Start the server and wait until it answers PING.

        Args:
            timeout_s: how long to wait for it to come up.
            detach: start it in its own session so it outlives this process (`zoo-serving start`).
        """
        conf = os.path.join(self.data_dir, "redis.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self._config_text())
        self.process = subprocess.Popen([find_redis_server(), conf], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=detach)
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServingConfigError(
                    f"redis-server exited with code {self.process.returncode} on {self.host}:{self.port}. "
                    f"See {os.path.join(self.data_dir, 'redis.log')} (is the port taken?)."
                )
            try:
                ping_client = self._ping_client()
                ping_client.ping()
                ping_client.close()
                return self
            except redis.RedisError as exc:
                last = exc
                time.sleep(0.05)
        self.stop()
        raise ServingConfigError(f"redis-server did not answer on {self.url} within {timeout_s} s: {last}")

    def _ping_client(self) -> redis.Redis:
        if self.tls_cert and self.tls_auth_clients:
            # the server checks client certificates: present its own pair, which the CA signed
            return self.client(tls_cert=self.tls_cert, tls_key=self.tls_key)
        return self.client()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its temporary folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
