"""Shared fixtures: one local[2] SparkSession for the whole run, a real redis-server on a free
loopback port, and a real S3-compatible server (moto in server mode on a loopback port) with a
fresh bucket per test."""

import os
import pathlib
import shutil
import sys
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from zoo.devcluster.processes import free_port

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark():
    from zoo import init_spark

    session = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server on 127.0.0.1 for the session (each test using `redis_client` flushes it)."""
    pytest.importorskip("redis", reason="Redis tests need redis-py: pip install 'spark-zoo[serving]'")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    from zoo.serving.redis_server import RedisServer

    server = RedisServer(host="127.0.0.1").start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    """A client of `redis_server`, on an empty database (flushed before and after the test)."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


def frame_from_arrays(spark, features: np.ndarray, labels: np.ndarray, partitions: int | None = None):
    """A DataFrame with an array<double> `features` column and a double `label` column."""
    pdf = pd.DataFrame({"features": [row.astype(float) for row in features], "label": labels.astype(float)})
    df = spark.createDataFrame(pdf)
    return df.repartition(partitions) if partitions else df


def rows_in_partitions(spark, partitions: list[list[tuple]], schema: str):
    """A DataFrame whose i-th partition holds exactly `partitions[i]` (possibly empty), in order.

    No shuffle: a shuffle may deliver a partition's rows in another order on a cluster, and with
    shuffling off that order decides each training step's batch."""
    rdd = spark.sparkContext.parallelize(range(len(partitions)), len(partitions)).flatMap(lambda i: partitions[i])
    return spark.createDataFrame(rdd, schema)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python or spark-submit: this one, with the checkout first on
    PYTHONPATH and this interpreter as PYSPARK_PYTHON and PYSPARK_DRIVER_PYTHON, plus `extra`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, **extra}


#: Credentials the moto server accepts (it accepts any); region of its buckets.
S3_TEST_ENV = {"AWS_ACCESS_KEY_ID": "zoo-test-key", "AWS_SECRET_ACCESS_KEY": "zoo-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of an S3-compatible server (moto's ThreadedMotoServer) on 127.0.0.1."""
    pytest.importorskip("s3fs", reason="S3 tests need s3fs: pip install 'spark-zoo[storage]'")
    server_module = pytest.importorskip("moto.server", reason="S3 tests need moto's server: pip install 'moto[server]'")
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass
class S3Bucket:
    """A bucket on the test S3 server: `url` is ``s3://<name>``; `fs` an s3fs file system on it."""

    name: str
    url: str
    endpoint: str
    fs: object

    def keys(self, prefix: str = "") -> list[str]:
        """The object keys under `prefix` (relative to the bucket), sorted."""
        return sorted(k[len(self.name) + 1:] for k in self.fs.find(f"{self.name}/{prefix}".rstrip("/")))


@pytest.fixture
def s3(s3_server, monkeypatch):
    """A new bucket, with this process's AWS environment variables pointing at the test server
    (as a user sets them on the driver; executors get them only through Zoo's storage options)."""
    import s3fs

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {**S3_TEST_ENV, "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(name, value)
    fs = s3fs.S3FileSystem(key=S3_TEST_ENV["AWS_ACCESS_KEY_ID"], secret=S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
                           endpoint_url=s3_server, use_listings_cache=False, skip_instance_cache=True)
    name = f"zoo-{uuid.uuid4().hex[:16]}"
    fs.mkdir(name)
    yield S3Bucket(name, f"s3://{name}", s3_server, fs)


@pytest.fixture
def no_s3_credentials(s3, monkeypatch, tmp_path):
    """The test bucket's server, but no S3 credentials anywhere: not in the environment, not in
    ~/.aws files, not from instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3
