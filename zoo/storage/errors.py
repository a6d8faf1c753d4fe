"""Exceptions raised by `zoo.storage`, each a subclass of the builtin users already catch.

Every message names the URL, its scheme, what went wrong and how to fix it.

    StorageError (OSError)                   any storage operation that failed
      InvalidURLError (+ ValueError)         not a path or URL; an unknown scheme
      CredentialsError (+ PermissionError)   no S3 credentials found, or the store refused them
      UnreachableError (+ ConnectionError)   the endpoint (S3, the HDFS namenode) did not answer
      NotWritableError (+ PermissionError)   the location exists (or not) but cannot be written
      StorageNotFoundError (+ FileNotFoundError)  nothing at that URL
      NotSharedError                         a local path that executors on other hosts cannot see
    FileSystemMissingError (ImportError)     the package for a scheme is missing (`pip install s3fs`)
"""

from __future__ import annotations


class StorageError(OSError):
    """A storage operation failed; the message names the URL, its scheme and the fix."""


class InvalidURLError(StorageError, ValueError):
    """The value is not a path or URL Zoo can use, or its scheme is unknown."""


class CredentialsError(StorageError, PermissionError):
    """No credentials were found for an object store, or the store refused them; the message names
    the environment variables and the Spark settings that provide them."""


class UnreachableError(StorageError, ConnectionError):
    """The storage endpoint (an S3 endpoint, an HDFS namenode) could not be reached."""


class NotWritableError(StorageError, PermissionError):
    """A URL cannot be written: permission denied, a read-only file system, a missing bucket, or a
    file where a directory is expected."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """Nothing exists at the URL that was read."""


class NotSharedError(StorageError):
    """A checkpoint path is a local path that executors on other hosts cannot see."""


class FileSystemMissingError(ImportError):
    """The Python package that implements a URL's scheme is not installed; the message names the
    ``pip install`` command."""
