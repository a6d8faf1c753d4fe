"""One storage layer for all of Zoo: paths and URLs for everything Zoo reads or writes.

Checkpoints, saved stages, exported models, TensorBoard logs and the models Cluster Serving loads
all go through these functions, so each of them takes a local path, ``file://``, ``hdfs://``,
``s3://`` or ``s3a://`` (and any other scheme fsspec serves with its package installed). fsspec
does the work: s3fs for S3, pyarrow's HadoopFileSystem for HDFS. This package is a leaf: it
imports nothing else of Zoo, and it never imports pyspark (it reads the active SparkContext's
settings only when pyspark is already loaded).

- Resolving: a scheme-less path means what it means in Spark, see `resolve`.
- Settings: S3 credentials, endpoint and region come from Spark's ``spark.hadoop.fs.s3a.*``
  settings and the AWS environment variables; the driver ships them to executors as a plain dict
  (`storage_options` on the driver, `install_storage_options` in the task).
- Atomic output: `staged` (a directory) and `staged_files` (files) write into a local staging
  location and commit by rename where the file system renames atomically, or write the commit
  marker last on object stores.
- Reading remote models: `fetch` copies to a local cache keyed by content.
- Pre-flight: `check_writable` fails fast, with the URL, the scheme and the fix in the message.

Example::

    from zoo import storage

    storage.check_writable("s3a://bucket/ckpt")
    with storage.staged("s3://bucket/ckpt/checkpoint-1", marker="meta.json") as folder:
        ...                                  # write files into the local folder
    local = storage.fetch("s3://bucket/models/net.onnx")
"""

from zoo.storage.atomic import staged, staged_files
from zoo.storage.cache import default_cache_dir, fetch
from zoo.storage.checks import check_credentials, check_writable
from zoo.storage.errors import (
    CredentialsError,
    FileSystemMissingError,
    InvalidURLError,
    NotSharedError,
    NotWritableError,
    StorageError,
    StorageNotFoundError,
    UnreachableError,
)
from zoo.storage.filesystem import filesystem
from zoo.storage.ops import (
    download,
    exists,
    isdir,
    list_files,
    listdir,
    makedirs,
    open_file,
    read_bytes,
    remove,
    upload,
    write_bytes,
)
from zoo.storage.options import install_storage_options, storage_options
from zoo.storage.urls import basename, default_fs, has_scheme, is_local, join, local_path, parent, resolve, scheme_of

__all__ = [
    "resolve", "default_fs", "join", "parent", "basename", "scheme_of", "has_scheme", "is_local", "local_path",
    "storage_options", "install_storage_options", "filesystem",
    "exists", "isdir", "listdir", "list_files", "makedirs", "remove", "read_bytes", "write_bytes", "open_file", "upload",
    "download", "staged", "staged_files", "fetch", "default_cache_dir", "check_writable", "check_credentials",
    "StorageError", "InvalidURLError", "CredentialsError", "UnreachableError", "NotWritableError",
    "StorageNotFoundError", "NotSharedError", "FileSystemMissingError",
]
