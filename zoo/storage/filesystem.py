"""The fsspec file system behind a URL, and storage failures turned into `zoo.storage.errors`.

``file`` is fsspec's local file system, ``s3``/``s3a`` is s3fs, ``hdfs`` is pyarrow's
HadoopFileSystem (through fsspec), and any other scheme fsspec knows (``gs``, ``abfs``, ...) works
when its package is installed. Instances are cached by fsspec per options, so asking again is cheap.
"""

from __future__ import annotations

import contextlib

from zoo.storage.errors import (
    CredentialsError,
    FileSystemMissingError,
    InvalidURLError,
    NotWritableError,
    StorageError,
    StorageNotFoundError,
    UnreachableError,
)
from zoo.storage.options import S3_CREDENTIAL_SETTINGS, S3_ENDPOINT_SETTINGS, options_for
from zoo.storage.urls import S3_SCHEMES, protocol_of, split_scheme

#: The package to install for a protocol whose fsspec class lives in fsspec itself.
PACKAGES = {"hdfs": "pyarrow", "arrow_hdfs": "pyarrow", "webhdfs": "requests", "http": "aiohttp", "https": "aiohttp"}
#: What hdfs:// needs besides pyarrow (libhdfs is loaded through the JVM).
HDFS_HINT = ("hdfs:// is read with pyarrow's HadoopFileSystem, which loads Hadoop's libhdfs through the JVM: set "
             "JAVA_HOME, HADOOP_HOME and CLASSPATH=$(hadoop classpath --glob) on the driver and on every executor")
_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                     "Unable to locate credentials", "NoCredentials")


def package_for(protocol: str) -> str:
    """The pip package that implements `protocol` for fsspec (``s3`` -> ``s3fs``, ``gs`` -> ``gcsfs``)."""
    from fsspec.registry import known_implementations

    if protocol in PACKAGES:
        return PACKAGES[protocol]
    entry = known_implementations.get(protocol)
    return entry["class"].split(".")[0] if entry else protocol


def filesystem(url: str):
    """``(fs, path)``: the fsspec file system serving `url` and the path to give it.

    Raises:
        FileSystemMissingError: the package for the scheme is missing (the message says what to install).
        InvalidURLError: fsspec knows no such scheme.
        StorageError: the file system could not be started (for hdfs: no JVM or libhdfs).
    """
    import fsspec

    scheme, rest = split_scheme(url)
    protocol = protocol_of(url)
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        package = package_for(protocol)
        raise FileSystemMissingError(
            f"Reading or writing {url!r} (scheme {scheme}) needs the Python package {package!r}, which is not "
            f"installed: pip install {package}" + (" (or: pip install 'spark-zoo[storage]')" if protocol == "s3" else "")
            + f". ({exc})") from exc
    except ValueError as exc:
        raise InvalidURLError(
            f"Unknown scheme {scheme!r} in {url!r}. Use a local path, file://, hdfs://, s3:// or s3a:// "
            f"(or another scheme fsspec knows, with its package installed).") from exc
    full = f"{protocol}:{rest}" if scheme else url
    kwargs = {**cls._get_kwargs_from_urls(full), **options_for(protocol)}
    try:
        fs = cls(**kwargs)
    except OSError as exc:
        hint = f" {HDFS_HINT}." if protocol == "hdfs" else ""
        raise StorageError(f"Could not open the file system of {url!r} (scheme {scheme}): {exc}.{hint}") from exc
    return fs, cls._strip_protocol(full)


def _code_of(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    return text + (f" / {type(cause).__name__}: {cause}" if cause is not None else "")


def translate(exc: BaseException, url: str, action: str) -> BaseException:
    """`exc`, raised while doing `action` ("read", "write", "list", ...) on `url`, as the
    `zoo.storage.errors` class users catch, with a message naming the URL, scheme and fix."""
    if isinstance(exc, (StorageError, FileSystemMissingError)):
        return exc
    scheme = split_scheme(url)[0] or "file"
    where = f"{url!r} (scheme {scheme})"
    text = _code_of(exc)
    s3 = scheme in S3_SCHEMES
    if s3 and any(code in text for code in _CREDENTIAL_CODES):
        return CredentialsError(f"Could not {action} {where}: the S3 store has no usable credentials ({text}). "
                                f"Give them with {S3_CREDENTIAL_SETTINGS}.")
    connection_failure = isinstance(exc, ConnectionError) or any(
        name in text for name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError",
                                  "Could not connect", "Connection refused"))
    if connection_failure:
        fix = f"Check {S3_ENDPOINT_SETTINGS}" if s3 else "Check the host and port in the URL (for hdfs://, the namenode)"
        return UnreachableError(f"Could not {action} {where}: the storage endpoint did not answer ({text}). "
                                f"{fix}, and that it is reachable from this host.")
    if isinstance(exc, FileNotFoundError):
        if s3 and "bucket does not exist" in text.lower():
            message = (f"Could not {action} {where}: the bucket {url.split('/')[2]!r} does not exist. Create it "
                       f"first, or fix the bucket name.")
            return NotWritableError(message) if action == "write" else StorageNotFoundError(message)
        if action != "write":
            return StorageNotFoundError(f"Could not {action} {where}: it does not exist ({text}).")
    if action == "write" and isinstance(exc, OSError):
        return NotWritableError(f"Could not {action} {where}: {text}. Choose a location this user can write "
                                f"(for a local path: a writable directory, not a file; for a bucket: one that "
                                f"exists and whose policy allows writes).")
    if isinstance(exc, OSError) and not isinstance(exc, PermissionError):
        return StorageError(f"Could not {action} {where}: {text}.")
    return exc


@contextlib.contextmanager
def storage_errors(url: str, action: str):
    """Re-raise failures inside the block as `translate` makes them (the original stays chained)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - filtered by translate, which returns non-storage errors as they are
        translated = translate(exc, url, action)
        if translated is exc:
            raise
        raise translated from exc
