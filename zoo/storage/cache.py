"""A local cache of remote files: `fetch` copies a remote file or directory to local disk once.

Entries are keyed by the URL and by what the store says about its content (ETag, or size and
modification time, of every file), so a repeated load reads the local copy and a changed file is
downloaded again. The cache lives in ``$ZOO_STORAGE_CACHE`` or ``~/.cache/zoo/storage``; each URL
keeps only its newest version. Downloads go to a hidden folder that is renamed into place, so
processes fetching the same URL at once never see a partial copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import uuid

from zoo.storage.filesystem import filesystem, storage_errors
from zoo.storage.ops import download
from zoo.storage.urls import basename, is_local, local_path, resolve

#: Environment variable naming the cache folder.
CACHE_ENV = "ZOO_STORAGE_CACHE"


def default_cache_dir() -> str:
    """``$ZOO_STORAGE_CACHE``, else ``~/.cache/zoo/storage``."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "zoo", "storage")


def _version(url: str) -> list:
    fs, path = filesystem(url)
    info = fs.info(path)
    if info.get("type") == "directory":
        files = fs.find(path, detail=True)
        return [[posixpath.relpath(p, path), i.get("size"), str(i.get("ETag") or i.get("mtime") or i.get("LastModified"))]
                for p, i in sorted(files.items())]
    return [[basename(url), info.get("size"), str(info.get("ETag") or info.get("mtime") or info.get("LastModified"))]]


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:20]


def fetch(url: str, cache_dir: str | None = None, also: tuple[str, ...] | list[str] = ()) -> str:
    """A local path holding the file or directory at `url`; a local `url` is returned as it is.

    Args:
        url: what to fetch.
        cache_dir: the cache folder (default `default_cache_dir()`).
        also: more URLs fetched into the same local folder, beside `url` under their own names
            (an OpenVINO ``.xml`` needs its ``.bin`` beside it).

    Raises:
        StorageNotFoundError: nothing exists at `url` (or at one of `also`).
    """
    url = resolve(url)
    if is_local(url):
        return local_path(url)
    urls = [url] + [resolve(u) for u in also]
    with storage_errors(url, "read"):
        versions = [_version(u) for u in urls]
    root = os.path.join(cache_dir or default_cache_dir(), _digest(urls))
    target = os.path.join(root, _digest(versions))
    result = os.path.join(target, basename(url))
    if os.path.exists(target):
        return result
    os.makedirs(root, exist_ok=True)
    partial = os.path.join(root, f".partial-{uuid.uuid4().hex}")
    try:
        for u in urls:
            download(u, os.path.join(partial, basename(u)))
        try:
            os.rename(partial, target)
        except OSError:
            if not os.path.exists(target):  # another process won the race otherwise
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    for name in os.listdir(root):
        if not name.startswith(".") and name != os.path.basename(target):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return result
