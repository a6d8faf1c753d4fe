"""Pre-flight checks: find bad storage input before any work starts.

`check_writable(url)` proves a location can be written by writing and removing a small probe
file (and any folders it had to create), after checking that the scheme's package is installed
and, for S3, that credentials can be found. Each failure raises the `zoo.storage.errors` class
users catch, with a message that names the URL, its scheme and the fix.
"""

from __future__ import annotations

import posixpath
import uuid

from zoo.storage.errors import CredentialsError, NotWritableError
from zoo.storage.filesystem import filesystem, storage_errors
from zoo.storage.options import S3_CREDENTIAL_SETTINGS, options_for
from zoo.storage.urls import RENAMING_SCHEMES, S3_SCHEMES, resolve, split_scheme

#: Seconds a probe waits for an S3 endpoint to accept a connection, and for its answer.
PROBE_CONNECT_TIMEOUT_S = 5
PROBE_READ_TIMEOUT_S = 20


def check_credentials(url: str) -> None:
    """For an S3 URL, raise unless credentials can be found (Spark's s3a settings, the AWS
    environment variables, or botocore's own chain); other schemes pass.

    Raises:
        CredentialsError: naming the environment variables and the Spark settings to set.
    """
    scheme = split_scheme(url)[0]
    if scheme not in S3_SCHEMES:
        return
    options = options_for("s3")
    if options.get("anon") or (options.get("key") and options.get("secret")):
        return
    if options.get("key") or options.get("secret"):
        given, missing = ("access key", "secret key") if options.get("key") else ("secret key", "access key")
        raise CredentialsError(f"{url!r} (scheme {scheme}): an S3 {given} is set but no {missing}. Give both with "
                               f"{S3_CREDENTIAL_SETTINGS}.")
    import botocore.session

    if botocore.session.Session().get_credentials() is None:
        raise CredentialsError(f"No S3 credentials found for {url!r} (scheme {scheme}). Set {S3_CREDENTIAL_SETTINGS}; "
                               f"for a public bucket set spark.hadoop.fs.s3a.aws.credentials.provider="
                               f"org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider.")


def _probe_filesystem(url: str):
    """The file system of `url`, with short timeouts for S3 so an unreachable endpoint fails fast."""
    fs, path = filesystem(url)
    if split_scheme(url)[0] in S3_SCHEMES:
        kwargs = dict(fs.storage_options)
        config = dict(kwargs.get("config_kwargs") or {})
        config.update(connect_timeout=PROBE_CONNECT_TIMEOUT_S, read_timeout=PROBE_READ_TIMEOUT_S,
                      retries={"max_attempts": 1})
        fs = type(fs)(**{**kwargs, "config_kwargs": config, "skip_instance_cache": True})
    return fs, path


def check_writable(url: str) -> str:
    """Raise unless `url` can be written as a directory; returns `url` resolved.

    Side-effect free: the probe file and any folders created for it are removed again.

    Raises:
        FileSystemMissingError: the scheme's package is missing (``pip install s3fs``, ...).
        CredentialsError: S3 without credentials, or credentials the store refuses.
        UnreachableError: the endpoint did not answer.
        NotWritableError: the location cannot be written (read-only, a file, a missing bucket).
    """
    url = resolve(url)
    scheme = split_scheme(url)[0] or "file"
    fs, path = _probe_filesystem(url)
    check_credentials(url)
    probe = posixpath.join(path, f".zoo-write-probe-{uuid.uuid4().hex}")
    with storage_errors(url, "write"):
        if scheme not in RENAMING_SCHEMES:
            fs.pipe_file(probe, b"zoo")
            fs.rm_file(probe)
            return url
        if fs.exists(path) and not fs.isdir(path):
            raise NotWritableError(f"Could not write {url!r} (scheme {scheme}): it is a file, and a directory was "
                                   f"expected. Choose another path.")
        created = path
        while not fs.exists(posixpath.dirname(created)) and posixpath.dirname(created) != created:
            created = posixpath.dirname(created)
        made = not fs.exists(path)
        fs.makedirs(path, exist_ok=True)
        try:
            fs.pipe_file(probe, b"zoo")
            fs.rm_file(probe)
        finally:
            if made:
                fs.rm(created, recursive=True)
    return url
