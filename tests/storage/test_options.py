"""zoo.storage.options: S3 settings from Spark's s3a configuration and the AWS environment, and
their way to the executors as a plain dict."""

import pickle

import pytest

from zoo import storage
from zoo.storage import options as options_module


@pytest.fixture
def no_installed_options(monkeypatch):
    monkeypatch.setattr(options_module, "_installed", None)


@pytest.fixture
def hadoop_conf(spark):
    """Sets Hadoop settings of the session for one test (as spark.hadoop.* settings would)."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    before = {}

    def set_to(name, value):
        before.setdefault(name, conf.get(name))
        conf.set(name, value)

    yield set_to
    for name, value in before.items():
        conf.unset(name) if value is None else conf.set(name, value)


def test_s3_options_from_the_aws_environment(monkeypatch, no_installed_options):
    for name, value in {"AWS_ACCESS_KEY_ID": "env-key", "AWS_SECRET_ACCESS_KEY": "env-secret",
                        "AWS_SESSION_TOKEN": "env-token", "AWS_ENDPOINT_URL": "http://minio:9000",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    options = storage.storage_options()
    assert options == {"s3": {"key": "env-key", "secret": "env-secret", "token": "env-token",
                              "endpoint_url": "http://minio:9000", "client_kwargs": {"region_name": "eu-west-1"},
                              "use_listings_cache": False}}
    assert pickle.loads(pickle.dumps(options)) == options  # plain values: it travels in a task payload


def test_sparks_s3a_settings_win_over_the_environment(spark, hadoop_conf, monkeypatch, no_installed_options):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env-endpoint:1")
    for name, value in {"fs.s3a.access.key": "spark-key", "fs.s3a.secret.key": "spark-secret",
                        "fs.s3a.endpoint": "minio.local:9000", "fs.s3a.connection.ssl.enabled": "false",
                        "fs.s3a.path.style.access": "true", "fs.s3a.endpoint.region": "us-west-2"}.items():
        hadoop_conf(name, value)
    s3 = storage.storage_options()["s3"]
    assert (s3["key"], s3["secret"]) == ("spark-key", "spark-secret") and "token" not in s3
    assert s3["endpoint_url"] == "http://minio.local:9000"
    assert s3["config_kwargs"] == {"s3": {"addressing_style": "path"}}
    assert s3["client_kwargs"] == {"region_name": "us-west-2"}
    hadoop_conf("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider")
    assert storage.storage_options()["s3"]["anon"] is True


def test_installed_options_win_and_are_what_executors_use(monkeypatch, no_installed_options):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "driver-env-key")
    shipped = {"s3": {"key": "shipped", "secret": "shipped-secret", "use_listings_cache": False}}
    storage.install_storage_options(shipped)
    shipped["s3"]["key"] = "changed after install"
    assert storage.storage_options()["s3"]["key"] == "shipped"
    assert options_module.options_for("s3")["key"] == "shipped"
    with pytest.raises(TypeError, match="storage_options"):
        storage.install_storage_options([("s3", {})])
