"""Atomic writes: write into a local staging location, then commit, so nothing half-written is
ever visible at the target.

How a commit works depends on what the file system can do:
- **Local paths (and NFS):** the staging folder is created beside the target, on the same file
  system, and the commit is one ``rename``.
- **HDFS:** the staged files are uploaded into a hidden folder beside the target, which is then
  renamed into place (HDFS renames atomically).
- **Object stores (S3):** there is no rename. The files are written under the final prefix and
  the *commit marker* (the file readers require before they trust the rest, e.g. a checkpoint's
  ``meta.json``) is written last; an older object set at that prefix loses its marker first. A
  reader that requires the marker never sees a half-written set.
After a failure the staging location is removed, and on object stores what was already uploaded
is deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import shutil
import tempfile
import uuid

from zoo.storage.errors import StorageError
from zoo.storage.filesystem import filesystem, storage_errors
from zoo.storage.ops import local_files, upload
from zoo.storage.urls import RENAMING_SCHEMES, basename, is_local, join, local_path, parent, resolve, scheme_of

logger = logging.getLogger(__name__)

#: Prefix of staging folders created beside a target (hidden; never a checkpoint or model name).
STAGING_PREFIX = ".staging-"


def _hidden_name(kind: str, name: str) -> str:
    return f"{kind}{uuid.uuid4().hex[:12]}-{name}"


def upload_order(files: list[str], marker: str | None) -> list[str]:
    """The order in which staged `files` (relative paths) are uploaded: the marker last."""
    if marker is None:
        return sorted(files)
    if marker not in files:
        raise StorageError(f"The staged output has no commit marker {marker!r} (files: {sorted(files)}). "
                           f"Write the marker into the staging folder before the block ends.")
    return sorted(f for f in files if f != marker) + [marker]


def _replace_by_rename(rename, exists, remove, staging: str, final: str, trash: str) -> None:
    """Move `staging` to `final`; an existing `final` is moved aside first and removed after."""
    if not exists(final):
        rename(staging, final)
        return
    rename(final, trash)
    try:
        rename(staging, final)
    except BaseException:
        rename(trash, final)
        raise
    remove(trash)


def _best_effort(what: str, action, *args) -> None:
    try:
        action(*args)
    except Exception:  # noqa: BLE001 - cleanup after a failure must not hide the failure
        logger.warning("Could not %s %s", what, args[0], exc_info=True)


@contextlib.contextmanager
def staged(url: str, marker: str | None = None):
    """Write the directory `url` atomically: yields a local staging folder to fill; when the block
    ends without an error, the folder replaces whatever was at `url` (see the module docstring).

    Args:
        url: the directory to write (a path or URL).
        marker: the relative path of the file readers require (``"meta.json"``); on object stores
            it is written last. It must be among the staged files when given.

    Raises:
        NotWritableError, UnreachableError, CredentialsError: the commit failed; nothing is left
            at `url` (on object stores, an older version at `url` is gone too).
    """
    url = resolve(url)
    if is_local(url):
        final = local_path(url)
        with storage_errors(url, "write"):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            staging = os.path.join(os.path.dirname(final), _hidden_name(STAGING_PREFIX, os.path.basename(final)))
            os.makedirs(staging)
        try:
            yield staging
            upload_order(local_files(staging), marker)
            with storage_errors(url, "write"):
                trash = os.path.join(os.path.dirname(final), _hidden_name(".trash-", os.path.basename(final)))
                _replace_by_rename(os.rename, os.path.exists, shutil.rmtree, staging, final, trash)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return
    staging = tempfile.mkdtemp(prefix="zoo-staging-")
    try:
        yield staging
        order = upload_order(local_files(staging), marker)
        if scheme_of(url) in RENAMING_SCHEMES:
            _commit_by_rename(staging, url, order)
        else:
            _commit_marker_last(staging, url, order, marker)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit_by_rename(staging: str, url: str, order: list[str]) -> None:
    remote_staging = join(parent(url), _hidden_name(STAGING_PREFIX, basename(url)))
    fs, final = filesystem(url)
    _, staged_path = filesystem(remote_staging)
    try:
        upload(staging, remote_staging, order)
        with storage_errors(url, "write"):
            trash = posixpath.join(posixpath.dirname(final), _hidden_name(".trash-", posixpath.basename(final)))
            _replace_by_rename(fs.mv, fs.exists, lambda p: fs.rm(p, recursive=True), staged_path, final, trash)
    except BaseException:
        _best_effort("remove the staging folder", lambda p: fs.rm(p, recursive=True) if fs.exists(p) else None,
                     staged_path)
        raise


def _commit_marker_last(staging: str, url: str, order: list[str], marker: str | None) -> None:
    fs, final = filesystem(url)
    with storage_errors(url, "write"):
        if marker is not None and fs.exists(posixpath.join(final, marker)):
            fs.rm_file(posixpath.join(final, marker))
        if fs.exists(final):
            fs.rm(final, recursive=True)
    try:
        upload(staging, url, order)
    except BaseException:
        _best_effort("remove the partial upload", lambda p: fs.rm(p, recursive=True) if fs.exists(p) else None, final)
        raise


@contextlib.contextmanager
def staged_files(*urls: str):
    """Write files atomically: yields one local path per URL, all in one staging folder and named
    as their URLs (so tools that write companions beside a file, like OpenVINO's ``.bin`` beside
    its ``.xml``, find each other). On success each file is committed in the order given, the last
    one last: give the file readers open first (the ``.xml``) last.

    Local targets are committed by ``rename`` from a staging folder beside them (all targets must
    then share a folder); remote ones by one upload each (an S3 object appears whole) or, on
    HDFS, an upload beside and a rename. A failure leaves none of the files that this call would
    have committed.
    """
    resolved = [resolve(u) for u in urls]
    names = [basename(u) for u in resolved]
    if not resolved or len(set(names)) != len(names):
        raise StorageError(f"Expected one or more target files with different names. Received: {list(urls)}.")
    local_targets = [is_local(u) for u in resolved]
    if all(local_targets):
        folders = {os.path.dirname(local_path(u)) for u in resolved}
        if len(folders) != 1:
            raise StorageError(f"Expected local target files in one folder. Received: {list(urls)}.")
        folder = folders.pop()
        with storage_errors(resolved[0], "write"):
            os.makedirs(folder, exist_ok=True)
            staging = os.path.join(folder, _hidden_name(STAGING_PREFIX, names[-1]))
            os.makedirs(staging)
    else:
        staging = tempfile.mkdtemp(prefix="zoo-staging-")
    committed: list[str] = []
    try:
        paths = [os.path.join(staging, n) for n in names]
        yield paths
        for staged_path, url in zip(paths, resolved):
            if not os.path.isfile(staged_path):
                raise StorageError(f"Nothing was written to the staged file for {url!r} ({staged_path}).")
            _commit_file(staged_path, url)
            committed.append(url)
    except BaseException:
        for url in committed:
            _best_effort("remove the committed file", _remove_file, url)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _commit_file(staged_path: str, url: str) -> None:
    if is_local(url):
        with storage_errors(url, "write"):
            os.replace(staged_path, local_path(url))
        return
    if scheme_of(url) not in RENAMING_SCHEMES:
        upload(staged_path, url)
        return
    fs, final = filesystem(url)
    beside = posixpath.join(posixpath.dirname(final), _hidden_name(STAGING_PREFIX, posixpath.basename(final)))
    with storage_errors(url, "write"):
        fs.makedirs(posixpath.dirname(final), exist_ok=True)
        fs.put_file(staged_path, beside)
        if fs.exists(final):
            fs.rm_file(final)
        fs.mv(beside, final)


def _remove_file(url: str) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm_file(path)
