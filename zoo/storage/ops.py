"""File operations on URLs: exists, list, read, write, remove, upload and download.

Each takes a path or URL (resolved with `zoo.storage.urls.resolve`) and raises the errors of
`zoo.storage.errors`. Writes of whole files are atomic (`write_bytes`); for several files or a
directory use `zoo.storage.atomic`.
"""

from __future__ import annotations

import os
import posixpath

from zoo.storage.filesystem import filesystem, storage_errors
from zoo.storage.urls import RENAMING_SCHEMES, resolve, scheme_of


def exists(url: str) -> bool:
    """Whether a file or directory exists at `url` (on object stores: any object under the prefix)."""
    url = resolve(url)
    with storage_errors(url, "read"):
        fs, path = filesystem(url)
        return fs.exists(path)


def isdir(url: str) -> bool:
    """Whether `url` is a directory (on object stores: a prefix with objects under it)."""
    url = resolve(url)
    with storage_errors(url, "read"):
        fs, path = filesystem(url)
        return fs.isdir(path)


def listdir(url: str) -> list[str]:
    """The sorted names directly under `url`; ``[]`` when nothing is there (object stores have no
    empty directories, so a missing directory lists as empty everywhere)."""
    url = resolve(url)
    with storage_errors(url, "list"):
        fs, path = filesystem(url)
        if not fs.isdir(path):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)
                      if p.rstrip("/") != path.rstrip("/"))


def makedirs(url: str) -> None:
    """Create the directory `url` and its parents (nothing to do on object stores, whose
    directories are prefixes, and where this must not create buckets)."""
    url = resolve(url)
    if scheme_of(url) not in RENAMING_SCHEMES:
        return
    with storage_errors(url, "write"):
        fs, path = filesystem(url)
        fs.makedirs(path, exist_ok=True)


def remove(url: str) -> None:
    """Remove the file or directory tree at `url`; nothing to do when it does not exist."""
    url = resolve(url)
    with storage_errors(url, "write"):
        fs, path = filesystem(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def read_bytes(url: str) -> bytes:
    """The whole content of the file at `url`."""
    url = resolve(url)
    with storage_errors(url, "read"):
        fs, path = filesystem(url)
        return fs.cat_file(path)


def write_bytes(url: str, data: bytes) -> None:
    """Write `data` to the file `url` atomically: readers see the old content or all of the new."""
    from zoo.storage.atomic import staged_files

    with staged_files(url) as (local,):
        with open(local, "wb") as f:
            f.write(data)


def open_file(url: str, mode: str = "rb"):
    """An open file object for `url` (use it in a ``with``). Writing through it is not atomic:
    for output that must never be seen half-written use `write_bytes` or `zoo.storage.atomic`."""
    url = resolve(url)
    with storage_errors(url, "write" if set(mode) & set("wax+") else "read"):
        fs, path = filesystem(url)
        return fs.open(path, mode)


def local_files(folder: str) -> list[str]:
    """The files under the local `folder`, as sorted relative POSIX paths."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/"))
    return sorted(found)


def upload(local: str, url: str, order: list[str] | None = None) -> None:
    """Copy the local file or directory `local` to `url` (a directory is copied file by file, in
    `order` when given: relative paths, each file once; the last one is written last)."""
    url = resolve(url)
    with storage_errors(url, "write"):
        fs, path = filesystem(url)
        if not os.path.isdir(local):
            _put(fs, local, path, url)
            return
        for rel in order if order is not None else local_files(local):
            _put(fs, os.path.join(local, rel), posixpath.join(path, rel), url)


def _put(fs, local: str, path: str, url: str) -> None:
    if scheme_of(url) in RENAMING_SCHEMES:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
    fs.put_file(local, path)


def download(url: str, local: str) -> None:
    """Copy the file or directory at `url` to the local path `local` (a directory's files keep
    their relative paths under `local`)."""
    url = resolve(url)
    with storage_errors(url, "read"):
        fs, path = filesystem(url)
        if not fs.isdir(path):
            os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
            fs.get_file(path, local)
            return
        for remote in sorted(fs.find(path)):
            target = os.path.join(local, *posixpath.relpath(remote, path).split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(remote, target)


def list_files(url: str, recursive: bool = False) -> list[str]:
    """The URLs of the files at `url`, sorted: `url` itself when it is a file, the files directly
    in it (or, with `recursive`, anywhere below it) when it is a directory, or the files matching
    it when it holds a glob pattern (``*``, ``?``, ``[``).

    Raises:
        StorageNotFoundError: nothing exists at `url` (or nothing matches the pattern).
    """
    url = resolve(url)
    scheme = scheme_of(url)
    with storage_errors(url, "list"):
        fs, path = filesystem(url)
        path = path.rstrip("/") or path
        if any(c in path for c in "*?["):
            found = [p for p, info in fs.glob(path, detail=True).items() if info["type"] == "file"]
        elif fs.isdir(path):
            listing = fs.find(path, detail=True) if recursive else {i["name"]: i for i in fs.ls(path, detail=True)}
            found = [p for p, info in listing.items() if info["type"] == "file"]
        elif fs.exists(path):
            found = [path]
        else:
            raise FileNotFoundError(path)
        if not found and any(c in path for c in "*?["):
            raise FileNotFoundError(f"no file matches {path}")
    # The file system's paths drop the URL's scheme (and, for HDFS, its host): put them back as given.
    trimmed, stripped = url.rstrip("/"), path.rstrip("/")
    prefix = trimmed[: len(trimmed) - len(stripped)] if trimmed.endswith(stripped) else f"{scheme}://"
    return sorted(prefix + p for p in found)
