"""zoo.storage.urls: schemes, joining, and what a scheme-less path means with and without Spark."""

import getpass
import os
import subprocess
import sys

import pytest

from tests.conftest import subprocess_env
from zoo import storage
from zoo.engine import EveryEpoch
from zoo.engine.config import CheckpointConfig
from zoo.warm_up import wait_for_warm_up


def test_schemes_and_local_paths():
    assert storage.scheme_of("/data/x") == "" and storage.scheme_of("S3A://b/k") == "s3a"
    assert storage.scheme_of("C:\\data") == ""  # a drive letter is not a scheme
    assert storage.is_local("file:///x") and storage.is_local("rel/x") and not storage.is_local("hdfs://nn/x")
    assert storage.local_path("file:///a/b") == storage.local_path("file:/a/b") == storage.local_path("/a/b") == "/a/b"
    with pytest.raises(storage.InvalidURLError, match="names no host"):
        storage.local_path("file://server/a")
    with pytest.raises(storage.InvalidURLError, match="Expected a path or URL"):
        storage.resolve("")


def test_join_parent_and_basename():
    assert storage.join("s3://b/ckpt/", "checkpoint-1", "meta.json") == "s3://b/ckpt/checkpoint-1/meta.json"
    assert storage.join("/tmp/x", "y") == os.path.join("/tmp/x", "y")
    assert storage.parent("s3a://b/dir/m.xml") == "s3a://b/dir"
    assert storage.basename("hdfs://nn:8020/m/model.onnx") == "model.onnx"


def test_resolve_against_a_given_default_fs():
    user = getpass.getuser()
    assert storage.resolve("/ckpt", "hdfs://nn:8020") == "hdfs://nn:8020/ckpt"
    assert storage.resolve("runs/a/../b", "hdfs://nn:8020/ignored/path") == f"hdfs://nn:8020/user/{user}/runs/b"
    assert storage.resolve("/ckpt", "s3a://bucket/") == "s3a://bucket/ckpt"
    assert storage.resolve("ckpt", "file:///some/dir") == os.path.abspath("ckpt")  # only scheme and authority count
    assert storage.resolve("s3://b/k", "hdfs://nn") == "s3://b/k" and storage.resolve("file:///x/y") == "/x/y"


def test_without_a_spark_context_a_path_is_local():
    code = "from zoo import storage; print(storage.default_fs(), storage.resolve('ckpt'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                         cwd="/tmp", check=True, timeout=120).stdout.split()
    assert out == ["None", "/tmp/ckpt"]


@pytest.fixture
def default_fs(spark):
    """Sets the session's Hadoop fs.defaultFS for one test (as spark.hadoop.fs.defaultFS would)."""
    wait_for_warm_up()  # no job of init_spark's may run while the default file system is elsewhere
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    before = conf.get("fs.defaultFS")

    def set_to(value):
        conf.set("fs.defaultFS", value)

    yield set_to
    conf.set("fs.defaultFS", before)


def test_scheme_less_paths_resolve_against_sparks_default_fs(spark, default_fs, s3):
    assert storage.default_fs() == "file:///"
    assert storage.resolve("ckpt") == os.path.abspath("ckpt")
    default_fs(f"s3a://{s3.name}")
    assert storage.resolve("/runs/ckpt") == f"s3a://{s3.name}/runs/ckpt"
    assert storage.resolve("ckpt") == f"s3a://{s3.name}/user/{getpass.getuser()}/ckpt"
    # The driver resolves before shipping: a checkpoint config holds the qualified URL, which works.
    config = CheckpointConfig("/runs/ckpt", EveryEpoch())
    assert config.path == f"s3a://{s3.name}/runs/ckpt"
    storage.write_bytes(storage.join(config.path, "probe"), b"1")
    assert s3.keys() == ["runs/ckpt/probe"]
    default_fs("file:///some/dir")
    assert storage.resolve("/abs") == "/abs" and storage.resolve("rel") == os.path.abspath("rel")
