"""zoo.storage.check_writable: every bad storage input is found before any work, with a message
that names the URL, the scheme and the fix."""

import os

import pytest

from zoo import storage
from zoo.devcluster.processes import free_port


def test_a_writable_location_passes_and_the_check_leaves_nothing_behind(tmp_path, s3):
    assert storage.check_writable(str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")
    assert os.listdir(tmp_path) == []
    assert storage.check_writable(f"s3a://{s3.name}/ckpt") == f"s3a://{s3.name}/ckpt"
    assert s3.keys() == []


def test_unwritable_local_paths(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(storage.NotWritableError, match=r"file\.txt/ckpt' \(scheme file\).*Not a directory"):
        storage.check_writable(str(tmp_path / "file.txt" / "ckpt"))
    with pytest.raises(storage.NotWritableError, match="it is a file, and a directory was expected"):
        storage.check_writable(str(tmp_path / "file.txt"))
    with pytest.raises(PermissionError, match="/proc/zoo-ckpt"):  # a read-only file system, even for root
        storage.check_writable("/proc/zoo-ckpt")


def test_an_unreachable_s3_endpoint(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(ConnectionError) as info:
        storage.check_writable(f"s3://{s3.name}/ckpt")
    assert isinstance(info.value, storage.UnreachableError)
    message = str(info.value)
    assert f"'s3://{s3.name}/ckpt' (scheme s3)" in message and "did not answer" in message
    assert "AWS_ENDPOINT_URL" in message and "spark.hadoop.fs.s3a.endpoint" in message


def test_a_bucket_that_does_not_exist(s3):
    with pytest.raises(storage.NotWritableError, match=r"'s3a://no-such-zoo-bucket/ckpt' \(scheme s3a\): the bucket "
                                                        r"'no-such-zoo-bucket' does not exist"):
        storage.check_writable("s3a://no-such-zoo-bucket/ckpt")


def test_s3_without_credentials_names_the_settings(no_s3_credentials, monkeypatch):
    s3 = no_s3_credentials
    with pytest.raises(PermissionError) as info:
        storage.check_writable(f"s3://{s3.name}/ckpt")
    assert isinstance(info.value, storage.CredentialsError)
    for setting in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "spark.hadoop.fs.s3a.access.key",
                    "spark.hadoop.fs.s3a.secret.key", f"s3://{s3.name}/ckpt"):
        assert setting in str(info.value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "only-the-key")
    with pytest.raises(storage.CredentialsError, match="access key is set but no secret key"):
        storage.check_writable(f"s3://{s3.name}/ckpt")


def test_a_missing_filesystem_package_names_what_to_install():
    with pytest.raises(ImportError) as info:
        storage.check_writable("gs://bucket/ckpt")
    assert isinstance(info.value, storage.FileSystemMissingError)
    assert "'gs://bucket/ckpt' (scheme gs)" in str(info.value) and "pip install gcsfs" in str(info.value)


def test_an_unknown_scheme():
    with pytest.raises(ValueError, match=r"Unknown scheme 'nosuch' in 'nosuch://x/y'\. Use a local path, file://, "
                                         r"hdfs://, s3:// or s3a://"):
        storage.check_writable("nosuch://x/y")


def test_hdfs_without_a_hadoop_client_says_what_it_needs():
    if os.environ.get("HADOOP_HOME"):
        pytest.skip("a Hadoop client is installed here; this checks the message where there is none")
    with pytest.raises(storage.StorageError) as info:
        storage.check_writable(f"hdfs://127.0.0.1:{free_port()}/ckpt")
    assert "hdfs://127.0.0.1" in str(info.value) and "(scheme hdfs)" in str(info.value)
    assert "JAVA_HOME, HADOOP_HOME and CLASSPATH" in str(info.value)
