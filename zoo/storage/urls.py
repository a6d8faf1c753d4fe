"""Paths and URLs: their scheme, how they join, and what a scheme-less path means.

A scheme-less path means what it means in Spark. On the driver, with an active SparkContext, it is
resolved against Hadoop's ``fs.defaultFS`` (``spark.hadoop.fs.defaultFS`` or core-site.xml), as
Hadoop does: only its scheme and authority count, an absolute path goes to the root of that file
system and a relative one under ``/user/<user>``. Without a SparkContext, or when ``fs.defaultFS`` is ``file:///``, it is a local path,
made absolute against the driver's working directory. The driver resolves every URL before it
ships it, so executors only ever see fully qualified URLs (or absolute local paths).

Local paths stay plain paths (``/data/ckpt``); ``file:///data/ckpt`` and Hadoop's ``file:/data/ckpt``
mean the same. ``s3a://`` (Hadoop's name) is an alias of ``s3://``.
"""

from __future__ import annotations

import getpass
import os
import posixpath
import re

from zoo.storage.errors import InvalidURLError
from zoo.storage.spark_conf import active_context, hadoop_setting

#: Schemes of the local file system.
LOCAL_SCHEMES = ("", "file", "local")
#: Schemes served by s3fs; s3a and s3n are Hadoop's names for S3.
S3_SCHEMES = ("s3", "s3a", "s3n")
#: Schemes whose file system renames a directory atomically (a commit is one rename).
RENAMING_SCHEMES = LOCAL_SCHEMES + ("hdfs", "viewfs")
#: fsspec protocol of each scheme that is not its own name.
PROTOCOL_ALIASES = {"": "file", "local": "file", "s3a": "s3", "s3n": "s3", "gcs": "gs"}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.S)


def _check(url) -> str:
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url:
        raise InvalidURLError(f"Expected a path or URL (a non-empty str: /dir, file:///dir, hdfs://nn/dir, "
                              f"s3://bucket/dir). Received: {url!r}.")
    return url


def split_scheme(url: str) -> tuple[str, str]:
    """(scheme in lower case, the rest): ``("s3", "//bucket/key")``; ``("", path)`` for a plain path."""
    url = _check(url)
    match = _SCHEME.match(url)
    if match is None or len(match.group(1)) == 1:  # "C:..." is a drive, not a scheme
        return "", url
    return match.group(1).lower(), match.group(2)


def scheme_of(url: str) -> str:
    """The scheme of `url` in lower case (``""`` for a plain path)."""
    return split_scheme(url)[0]


def has_scheme(url: str) -> bool:
    """Whether `url` names its scheme (``file:///x`` does, ``/x`` and ``x`` do not)."""
    return scheme_of(url) != ""


def is_local(url: str) -> bool:
    """Whether `url` is on the local file system (a plain path or ``file:``)."""
    return scheme_of(url) in LOCAL_SCHEMES


def protocol_of(url: str) -> str:
    """The fsspec protocol serving `url` (``file``, ``s3``, ``hdfs``, ...)."""
    scheme = scheme_of(url)
    return PROTOCOL_ALIASES.get(scheme, scheme)


def local_path(url: str) -> str:
    """The OS path of a local `url` (``file:///a/b``, ``file:/a/b`` and ``/a/b`` give ``/a/b``).

    Raises:
        InvalidURLError: `url` is not local.
    """
    scheme, rest = split_scheme(url)
    if scheme not in LOCAL_SCHEMES:
        raise InvalidURLError(f"Expected a local path or file:// URL. Received: {url!r} (scheme {scheme}).")
    if scheme == "":
        return rest
    if rest.startswith("//"):
        authority, _, path = rest[2:].partition("/")
        if authority not in ("", "localhost"):
            raise InvalidURLError(f"A file:// URL names no host: use file:///path. Received: {url!r}.")
        rest = "/" + path
    return rest


def join(url: str, *parts: str) -> str:
    """`url` with `parts` appended, one ``/`` between each (``os.path.join`` for local paths)."""
    if not has_scheme(url):
        return os.path.join(url, *parts)
    result = url
    for part in parts:
        result = result.rstrip("/") + "/" + part.lstrip("/")
    return result


def parent(url: str) -> str:
    """The folder holding `url` (``s3://b/x/y`` -> ``s3://b/x``)."""
    if not has_scheme(url):
        return os.path.dirname(os.path.abspath(url))
    scheme, rest = split_scheme(url.rstrip("/"))
    head, _ = posixpath.split(rest)
    return f"{scheme}:{head}"


def basename(url: str) -> str:
    """The last part of `url` (``s3://b/x/y.onnx`` -> ``y.onnx``)."""
    return posixpath.basename(url.rstrip("/")) if has_scheme(url) else os.path.basename(url.rstrip(os.sep))


def default_fs() -> str | None:
    """Hadoop's ``fs.defaultFS`` of the active SparkContext (``file:///`` unless configured), or
    None when this process has no SparkContext (an executor, or plain Python)."""
    if active_context() is None:
        return None
    return hadoop_setting("fs.defaultFS") or "file:///"


def resolve(path: str, default_fs_url: str | None = None) -> str:
    """`path` as a fully qualified URL, or an absolute local path.

    A URL with a scheme other than ``file`` is returned as given. ``file:`` URLs and local paths
    become absolute local paths. A scheme-less path is resolved against `default_fs_url` (by default
    the active SparkContext's ``fs.defaultFS``, see the module docstring): it stays local when
    there is no SparkContext or the default file system is ``file:///``.

    Raises:
        InvalidURLError: `path` is not a non-empty str (or os.PathLike).
    """
    path = _check(path)
    scheme, _ = split_scheme(path)
    if scheme in LOCAL_SCHEMES[1:]:
        return os.path.abspath(local_path(path))
    if scheme:
        return path
    fs = default_fs_url or default_fs()
    if fs is None or scheme_of(fs) in LOCAL_SCHEMES:
        return os.path.abspath(path)
    # Hadoop takes only the scheme and authority of fs.defaultFS; its working directory is /user/<user>.
    fs_scheme, rest = split_scheme(fs)
    authority = rest[2:].split("/", 1)[0] if rest.startswith("//") else ""
    absolute = path if path.startswith("/") else f"/user/{getpass.getuser()}/{path}"
    return f"{fs_scheme}://{authority}{posixpath.normpath(absolute)}"
