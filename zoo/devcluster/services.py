"""Shared services on the cluster's hosts: an S3-compatible server (moto) and Redis.

Both listen on a host's cluster address, so every host reaches them over the bridge (and shaped
links), as clients reach an object store or a Redis node on a real network.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

from zoo.devcluster.hosts import Host
from zoo.devcluster.processes import wait_for
from zoo.errors import DevClusterError

#: moto's S3 listens here on the edge host.
S3_PORT = 9000
#: The bucket made at start-up.
DEFAULT_BUCKET = "zoo"
#: moto accepts any credentials; clients still need some to sign their requests.
S3_ACCESS_KEY_ID = "zoo-dev"
S3_SECRET_ACCESS_KEY = "zoo-dev-secret"
S3_REGION = "us-east-1"
#: Redis's usual port (each host has its own ports).
REDIS_PORT = 6379
#: How long a service may take to answer after it starts.
SERVICE_TIMEOUT_S = 60.0


def s3_endpoint(ip: str) -> str:
    """The S3 endpoint URL of the server on `ip`."""
    return f"http://{ip}:{S3_PORT}"


def s3_env(ip: str, bucket: str = DEFAULT_BUCKET) -> dict[str, str]:
    """What an S3 client (boto3, s3fs, pyarrow) needs to use the dev cluster's server, as
    environment variables; ``ZOO_DEV_S3_BUCKET`` names the bucket made at start-up."""
    return {"AWS_ACCESS_KEY_ID": S3_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": S3_REGION, "AWS_ENDPOINT_URL": s3_endpoint(ip),
            "AWS_EC2_METADATA_DISABLED": "true", "ZOO_DEV_S3_BUCKET": bucket}


def start_s3(host: Host, log_path: str, bucket: str = DEFAULT_BUCKET) -> subprocess.Popen:
    """Start moto's S3 server on `host` (port `S3_PORT`), wait until it answers and create `bucket`.

    Raises:
        DevClusterError: moto is missing (the message says what to install) or did not start.
    """
    if any(importlib.util.find_spec(name) is None for name in ("moto", "flask", "flask_cors")):
        raise DevClusterError("The dev cluster's S3 server is moto's server mode, which is not installed in "
                              f"{sys.executable}. Install it with `pip install 'moto[server]'` (it is in Zoo's "
                              "`test` extra), or start the cluster without S3 (`--no-s3`).")
    with open(log_path, "ab") as log:
        proc = host.popen([sys.executable, "-m", "moto.server", "-H", host.ip, "-p", str(S3_PORT)], cwd="/",
                          stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: host.http(S3_PORT, "/")[0] == 200, f"moto's S3 server on {host.name}", [proc], [log_path],
             SERVICE_TIMEOUT_S)
    status, body = host.http(S3_PORT, f"/{bucket}", method="PUT")
    if status != 200:
        raise DevClusterError(f"Creating bucket {bucket!r} on {s3_endpoint(host.ip)} failed with HTTP {status}: "
                              f"{body[:500]!r}")
    return proc


def _redis_ping(host: Host, port: int) -> bool:
    with host.connect(port, timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def start_redis(host: Host, port: int, log_path: str) -> subprocess.Popen:
    """Start ``redis-server`` on `host`'s address and `port` (no persistence, data in the host's
    /tmp) and wait until it answers PING.

    Raises:
        DevClusterError: redis-server is not installed, or it did not come up.
    """
    server = shutil.which("redis-server")
    if server is None:
        raise DevClusterError("redis-server was not found on PATH. Install it with `apt-get install redis-server`.")
    with open(log_path, "ab") as log:
        proc = host.popen([server, "--bind", host.ip, "--port", str(port), "--protected-mode", "no", "--save", "",
                           "--appendonly", "no", "--dir", "/tmp"], cwd="/", stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: _redis_ping(host, port), f"redis-server on {host.name}:{port}", [proc], [log_path],
             SERVICE_TIMEOUT_S)
    return proc
