"""Pack the driver's Python environment once so that executors run exactly the same packages.

A venv is packed with venv-pack, a conda env with conda-pack. The archive is cached under
``DEFAULT_CACHE_DIR`` by a fingerprint of the installed packages and the Python version, so a
machine packs an environment once and reuses the archive until a package changes. Editable
installs (``pip install -e .``) point outside the environment, so their source is zipped
separately and shipped on the executors' PYTHONPATH (``py_files``).

`zoo.context.init_spark` and ``zoo-submit`` call `pack_env`; call it yourself to choose
what goes in (``exclude``/``include``) and pass the result as ``env_archive``.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zipfile
from dataclasses import dataclass, field

from zoo.errors import PackagingError

logger = logging.getLogger(__name__)

#: Where packed archives are cached; the environment variable ZOO_ENV_CACHE overrides it.
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "zoo", "envs")
#: Archive format of packed environments; Spark unpacks .tar.gz, .tgz, .tar and .zip.
DEFAULT_FORMAT = "tar.gz"
#: gzip level: 1 packs several times faster than 9 for archives only a few percent larger.
DEFAULT_COMPRESS_LEVEL = 1
#: Left out of every archive unless `include` brings them back: the JVM side of pyspark (the
#: cluster's own Spark runs the executors' JVMs; the Python workers never read these jars).
DEFAULT_EXCLUDES = ("lib/python*/site-packages/pyspark/jars/*",)
#: Formats `pack_env` writes. Spark's own unpacking of a plain .tar refuses the absolute symlink
#: a venv's bin/python is, and a .zip loses file modes, so packed environments are gzipped tars.
PACK_FORMATS = ("tar.gz", "tgz")
#: Formats Spark unpacks from spark.archives / spark.yarn.dist.archives (for archives you give).
ARCHIVE_FORMATS = ("tar.gz", "tgz", "tar", "zip")
#: Packing starts over when pip changes the environment meanwhile; at most this many times.
DEFAULT_PACK_ATTEMPTS = 2
#: Cached archives and editable-package zips unused for this long are removed when a newer one
#: is written (a running job may still serve a recent one to executors it starts later).
CACHE_TTL_S = 24 * 3600
#: Archives always kept in the cache, the most recently used first, whatever their age.
DEFAULT_CACHE_KEEP = 3
#: The interpreter inside a packed venv or conda env, relative to the archive root.
ARCHIVE_PYTHON = "bin/python"

VENV = "venv"
CONDA = "conda"
GIVEN = "given"


@dataclass(frozen=True)
class PackedEnv:
    """An environment archive ready to ship to executors.

    Attributes:
        archive: absolute path (or URL, for a given archive) of the archive.
        kind: ``"venv"``, ``"conda"`` or ``"given"`` (an archive the user packed).
        python: the interpreter inside the archive, relative to its root.
        key: the cache key (fingerprint of packages, Python version, filters); empty when given.
        cached: True when the archive came from the cache instead of being packed now.
        pack_seconds: how long packing took (0 when cached or given).
        py_files: zips of editable packages to put on the executors' PYTHONPATH.
    """

    archive: str
    kind: str
    python: str = ARCHIVE_PYTHON
    key: str = ""
    cached: bool = False
    pack_seconds: float = 0.0
    py_files: tuple[str, ...] = field(default_factory=tuple)

    def executor_python(self, alias: str) -> str:
        """The interpreter path executors use once the archive is unpacked as ``alias``."""
        return f"./{alias}/{self.python}"


def _cache_dir(cache_dir: str | None) -> str:
    chosen = cache_dir or os.environ.get("ZOO_ENV_CACHE") or DEFAULT_CACHE_DIR
    return os.path.abspath(os.path.expanduser(chosen))


def env_kind(prefix: str) -> str:
    """``"venv"`` or ``"conda"`` for the environment at `prefix`.

    Raises:
        PackagingError: `prefix` is neither a virtual environment nor a conda environment.
    """
    if os.path.isfile(os.path.join(prefix, "pyvenv.cfg")):
        return VENV
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return CONDA
    raise PackagingError(
        f"Cannot pack the Python environment at {prefix!r}: it is neither a virtual environment "
        f"(no pyvenv.cfg) nor a conda environment (no conda-meta/). Zoo ships only those two kinds. "
        f"Fix: run the driver from a venv (`python -m venv .venv && .venv/bin/pip install spark-zoo`) "
        f"or a conda env, or pack an environment yourself and pass its archive as `env_archive`."
    )


def _site_packages(prefix: str) -> list[str]:
    return sorted(glob.glob(os.path.join(prefix, "lib", "python*", "site-packages")))


def _python_version(prefix: str) -> str:
    if os.path.realpath(prefix) == os.path.realpath(sys.prefix):
        return platform.python_version()
    cfg = os.path.join(prefix, "pyvenv.cfg")
    if os.path.isfile(cfg):
        with open(cfg) as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() in ("version", "version_info"):
                    return value.strip()
    libs = glob.glob(os.path.join(prefix, "lib", "python*"))
    return os.path.basename(libs[0]) if libs else "unknown"


def _scan(prefix: str) -> tuple[list[str], list[tuple[importlib.metadata.Distribution, str]]]:
    """One walk over the environment's metadata: the sorted ``name==version`` list of
    `installed_packages` and (distribution, source directory) of each editable install."""
    found, editable = set(), []
    for dist in importlib.metadata.distributions(path=_site_packages(prefix)):
        name = dist.metadata["Name"]
        source_dir = _editable_dir(dist)
        if name:
            found.add(f"{name.lower()}=={dist.version}" + (" (editable)" if source_dir else ""))
        if source_dir is not None:
            editable.append((dist, source_dir))
    return sorted(found), editable


def installed_packages(prefix: str) -> list[str]:
    """``name==version`` of every distribution installed in the environment (as pip freeze)."""
    return _scan(prefix)[0]


def env_fingerprint(python: str, kind: str, options: dict, packages: list[str]) -> str:
    """The cache key of an environment: its packages (as `installed_packages` lists them), Python
    version `python`, platform and pack options."""
    digest = hashlib.sha256()
    for part in [kind, python, platform.machine(), sys.platform,
                 json.dumps(options, sort_keys=True)] + packages:
        digest.update(part.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _editable_dir(dist) -> str | None:
    """The source directory of an editable install (PEP 610 direct_url.json), else None."""
    try:
        text = dist.read_text("direct_url.json")
    except OSError:
        return None
    if not text:
        return None
    info = json.loads(text)
    if not info.get("dir_info", {}).get("editable"):
        return None
    url = urllib.parse.urlparse(info.get("url", ""))
    return urllib.parse.unquote(url.path) if url.scheme == "file" else None


def _top_level_names(dist) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [dist.metadata["Name"].replace("-", "_").lower()]


def _locate(name: str, source_dir: str, prefix: str) -> str | None:
    """Where the driver imports the top-level module `name` from (a package dir or a .py file)."""
    if os.path.realpath(prefix) == os.path.realpath(sys.prefix):
        spec = importlib.util.find_spec(name)
        if spec is not None:
            if spec.submodule_search_locations:
                return list(spec.submodule_search_locations)[0]
            return spec.origin
    for base in (source_dir, os.path.join(source_dir, "src")):
        for candidate in (os.path.join(base, name), os.path.join(base, name + ".py")):
            if os.path.exists(candidate):
                return candidate
    return None


def editable_packages(prefix: str) -> dict[str, list[str]]:
    """``{distribution: [paths of its top-level packages]}`` for each editable install in `prefix`.

    Raises:
        PackagingError: an editable package's source cannot be found.
    """
    return _editable_paths(_scan(prefix)[1], prefix)


def _editable_paths(editable: list[tuple[importlib.metadata.Distribution, str]],
                    prefix: str) -> dict[str, list[str]]:
    """`editable_packages` from the (distribution, source directory) pairs `_scan` found."""
    return {dist.metadata["Name"]: _module_paths(dist, source_dir, prefix) for dist, source_dir in editable}


def _module_paths(dist: importlib.metadata.Distribution, source_dir: str, prefix: str) -> list[str]:
    """Where the top-level modules of the editable install `dist` live under `source_dir`."""
    paths = []
    for name in _top_level_names(dist):
        location = _locate(name, source_dir, prefix)
        if location is None:
            raise PackagingError(
                f"The editable package {dist.metadata['Name']!r} has no source for its module "
                f"{name!r} under {source_dir!r}. Fix: reinstall it (`pip install -e {source_dir}`) "
                f"or install it non-editable (`pip install {source_dir}`)."
            )
        paths.append(location)
    return paths


def _tree_files(path: str) -> list[tuple[str, str]]:
    """(absolute path, archive name) of the files of a package, without bytecode caches."""
    base = os.path.dirname(path)
    if os.path.isfile(path):
        return [(path, os.path.basename(path))]
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                full = os.path.join(root, name)
                files.append((full, os.path.relpath(full, base)))
    return files


def _zip_editables(editable: dict[str, list[str]], cache_dir: str | None) -> tuple[str, ...]:
    """Zip the source of each editable install (``{distribution: [paths]}`` as `editable_packages`
    returns it) for the executors' PYTHONPATH; returns the zip paths.

    Each zip is named by a hash of its files' names, sizes and modification times, so an
    unchanged package reuses its zip.
    """
    out_dir = os.path.join(_cache_dir(cache_dir), "pyfiles")
    zips = []
    for dist_name, paths in sorted(editable.items()):
        files = [entry for path in paths for entry in _tree_files(path)]
        digest = hashlib.sha256()
        for full, name in files:
            stat = os.stat(full)
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        target = os.path.join(out_dir, f"{dist_name.replace('-', '_')}-{digest.hexdigest()[:16]}.zip")
        if os.path.exists(target):
            os.utime(target)  # recently used: not pruned
        else:
            os.makedirs(out_dir, exist_ok=True)
            staging = f"{target}.{os.getpid()}.partial"
            try:
                with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
                    for full, name in files:
                        archive.write(full, name)
                os.replace(staging, target)
                _prune_old_zips(out_dir, dist_name, keep=target)
            except OSError as exc:
                raise _space_error(exc, out_dir) if exc.errno == errno.ENOSPC else exc
            finally:
                if os.path.exists(staging):
                    os.remove(staging)
        zips.append(target)
    return tuple(zips)


def _remove_unused(paths: list[str], companions: tuple[str, ...] = ()) -> None:
    """Remove each of `paths` that no run has used for CACHE_TTL_S, with its files named
    ``path + suffix`` for each suffix in `companions`."""
    for path in paths:
        if time.time() - os.path.getmtime(path) > CACHE_TTL_S:
            for stale in (path, *(path + suffix for suffix in companions)):
                if os.path.exists(stale):
                    os.remove(stale)


def _prune_old_zips(out_dir: str, dist_name: str, keep: str) -> None:
    """Remove a package's zips that no run has used for CACHE_TTL_S."""
    prefix = dist_name.replace("-", "_") + "-"
    zips = [os.path.join(out_dir, name) for name in os.listdir(out_dir)
            if name.startswith(prefix) and name.endswith(".zip")]
    _remove_unused([path for path in zips if path != keep])


def _prune_old_archives(cache: str) -> None:
    """Remove archives beyond the DEFAULT_CACHE_KEEP most recently used ones that no run has
    used for CACHE_TTL_S (each can be a gigabyte)."""
    archives = sorted((os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(PACK_FORMATS)),
                      key=os.path.getmtime, reverse=True)
    _remove_unused(archives[DEFAULT_CACHE_KEEP:], companions=(".json", ".lock"))


def _space_error(exc: BaseException, directory: str) -> PackagingError:
    free = shutil.disk_usage(directory).free if os.path.isdir(directory) else 0
    return PackagingError(
        f"Packing the Python environment ran out of disk space in {directory!r} "
        f"({free / 2**20:.0f} MiB free): {exc}. Fix: free some space there, point the cache at a "
        f"bigger disk (cache_dir=... or the ZOO_ENV_CACHE environment variable), or pack less "
        f"(exclude=[...] patterns for packages the executors do not need)."
    )


# Runs in a child interpreter so that the packer's temporary file lands in the cache directory
# (TMPDIR) and a failed or interrupted pack never leaves a partial archive behind.
_PACK_SCRIPT = """
import json, sys
args = json.loads(sys.argv[1])
tool = args.pop("tool")
packer = __import__(tool)
try:
    packer.pack(**args)
except Exception as exc:
    sys.stderr.write("%s: %s\\n" % (type(exc).__name__, exc))
    sys.exit(3)
"""

_TOOLS = {VENV: ("venv_pack", "venv-pack"), CONDA: ("conda_pack", "conda-pack")}


def _check_tool(kind: str) -> str:
    module, project = _TOOLS[kind]
    if importlib.util.find_spec(module) is None:
        raise PackagingError(
            f"Packing a {kind} environment needs {project}, which is not installed for {sys.executable}. "
            f"Fix: `{sys.executable} -m pip install {project}`"
            + (" (or `conda install -c conda-forge conda-pack`)" if kind == CONDA else "")
            + ", or pack the environment yourself and pass the archive as `env_archive`."
        )
    return module


def _run_packer(kind: str, args: dict, staging: str) -> None:
    module = _TOOLS[kind][0]  # pack_env has checked that it is installed
    env = dict(os.environ, TMPDIR=staging)
    proc = subprocess.run([sys.executable, "-c", _PACK_SCRIPT, json.dumps({"tool": module, **args})],
                          env=env, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    message = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    if "No space left" in proc.stderr or "Errno 28" in proc.stderr:
        raise _space_error(OSError(errno.ENOSPC, message), os.path.dirname(staging))
    if "editable" in proc.stderr:
        raise PackagingError(
            f"{_TOOLS[kind][1]} refused to pack {args['prefix']!r}: {message} Fix: reinstall editable "
            f"packages with a current pip (`pip install -U pip && pip install -e <dir>`; Zoo ships their "
            f"source as py_files) or install them non-editable."
        )
    raise PackagingError(f"{_TOOLS[kind][1]} failed to pack {args['prefix']!r}: {message}\n{proc.stderr[-2000:]}")


def pack_env(prefix: str | None = None, cache_dir: str | None = None, format: str = DEFAULT_FORMAT,
             exclude: tuple[str, ...] | list[str] = DEFAULT_EXCLUDES, include: tuple[str, ...] | list[str] = (),
             python_prefix: str | None = None, compress_level: int = DEFAULT_COMPRESS_LEVEL,
             force: bool = False) -> PackedEnv:
    """Pack the Python environment at `prefix` (default: the running interpreter's) for executors.

    Args:
        prefix: the venv or conda env to pack; default ``sys.prefix``.
        cache_dir: where archives are cached; default ``$ZOO_ENV_CACHE`` or ``DEFAULT_CACHE_DIR``.
        format: one of ``PACK_FORMATS``.
        exclude: file patterns, relative to the environment root (``lib/python*/site-packages/
            tensorflow/*``), left out of the archive.
        include: patterns brought back after `exclude`.
        python_prefix: venv only: the base Python's prefix on the cluster nodes when it differs
            from this machine's (venv-pack relinks ``bin/python`` to it).
        compress_level: gzip level for ``tar.gz``/``tgz``.
        force: pack again even when a cached archive exists.

    Returns:
        A PackedEnv; packing happens once per fingerprint (other processes wait on a lock).

    Raises:
        PackagingError: an unsupported environment, a missing packer, no disk space, or a
            packer failure; each message says how to fix it.
    """
    prefix = os.path.abspath(prefix or sys.prefix)
    if not os.path.isdir(prefix):
        raise PackagingError(f"Cannot pack {prefix!r}: no such directory. Pass the prefix of a venv or conda env.")
    if format not in PACK_FORMATS:
        raise PackagingError(f"Expected `format` to be one of {PACK_FORMATS} (gzipped tars keep a venv's "
                             f"symlinks and file modes through Spark's unpacking). Received: format={format!r}.")
    kind = env_kind(prefix)
    _check_tool(kind)
    cache = _cache_dir(cache_dir)
    try:
        os.makedirs(cache, exist_ok=True)
    except OSError as exc:
        raise PackagingError(f"Cannot create the environment cache directory {cache!r}: {exc}. "
                             f"Fix: pass cache_dir= (or set ZOO_ENV_CACHE to) a writable directory.") from exc
    packages, editable = _scan(prefix)
    py_files = _zip_editables(_editable_paths(editable, prefix), cache)
    filters = [("exclude", p) for p in exclude]
    if py_files:  # the editable hooks point at this machine's source tree: ship the zips instead
        filters.append(("exclude", "lib/python*/site-packages/__editable__*"))
    filters += [("include", p) for p in include]
    options = {"format": format, "filters": filters, "python_prefix": python_prefix,
               "compress_level": compress_level}
    python = _python_version(prefix)
    for attempt in range(DEFAULT_PACK_ATTEMPTS):
        if attempt:  # the packages changed during the previous attempt: list them again
            packages = installed_packages(prefix)
        key = env_fingerprint(python, kind, options, packages)
        archive = os.path.join(cache, f"{kind}-{key[:20]}.{format}")
        with open(archive + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not force and os.path.exists(archive) and os.path.exists(archive + ".json"):
                os.utime(archive)  # recently used: not pruned
                logger.info("Using the cached environment archive %s", archive)
                return PackedEnv(archive, kind, ARCHIVE_PYTHON, key, True, 0.0, py_files)
            started = time.time()
            if _pack_into(archive, kind, prefix, options, packages, python):
                seconds = time.time() - started
                _prune_old_archives(cache)
                logger.info("Packed %s in %.1f s (%.0f MiB)", archive, seconds, os.path.getsize(archive) / 2**20)
                return PackedEnv(archive, kind, ARCHIVE_PYTHON, key, False, seconds, py_files)
        logger.warning("Packages in %s changed while it was being packed (pip running?); packing again", prefix)
    raise PackagingError(f"The packages in {prefix!r} kept changing while Zoo packed it. Fix: wait until "
                         f"pip/conda has finished installing, then run again.")


def _pack_into(archive: str, kind: str, prefix: str, options: dict, packages: list[str], python: str) -> bool:
    """Pack `prefix` (Python version `python`) into `archive` (+ its ``.json`` metadata) through a
    staging directory.

    Returns False, keeping nothing, when the installed packages changed while packing.
    """
    cache = os.path.dirname(archive)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=cache)
    started = time.time()
    logger.info("Packing the %s at %s into %s (once per set of installed packages)", kind, prefix, archive)
    try:
        output = os.path.join(staging, os.path.basename(archive))
        args = {"prefix": prefix, "output": output, "format": options["format"], "force": True,
                "compress_level": options["compress_level"], "filters": options["filters"]}
        if kind == VENV:
            args["python_prefix"] = options["python_prefix"]
        else:
            args["n_threads"] = -1
        _run_packer(kind, args, staging)
        if installed_packages(prefix) != packages:
            return False
        os.chmod(output, 0o644)
        meta = {"prefix": prefix, "kind": kind, "python": python, "packages": packages,
                "options": options, "pack_seconds": round(time.time() - started, 2), "created": time.time()}
        with open(os.path.join(staging, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        os.replace(output, archive)
        os.replace(os.path.join(staging, "meta.json"), archive + ".json")
        return True
    except OSError as exc:
        if os.path.exists(archive) and not os.path.exists(archive + ".json"):
            os.remove(archive)
        raise _space_error(exc, cache) if exc.errno == errno.ENOSPC else exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def given_archive(path: str, python: str = ARCHIVE_PYTHON) -> PackedEnv:
    """An environment archive the user packed (a local path or a URL such as ``hdfs:///envs/x.tar.gz``).

    Args:
        path: the archive; it must end in one of ``ARCHIVE_FORMATS``.
        python: the interpreter inside the archive, relative to its root.

    Raises:
        PackagingError: the format is not one Spark unpacks, or a local archive does not exist.
    """
    name = path.split("#", 1)[0]
    if not any(name.endswith("." + ext) for ext in ARCHIVE_FORMATS):
        raise PackagingError(f"Expected an environment archive ending in one of "
                             f"{['.' + f for f in ARCHIVE_FORMATS]} (what Spark unpacks). Received: {path!r}.")
    is_url = "://" in name and not name.startswith("file://")
    if not is_url:
        local = os.path.abspath(os.path.expanduser(name[len("file://"):] if name.startswith("file://") else name))
        if not os.path.isfile(local):
            raise PackagingError(f"The environment archive {local!r} does not exist. Pack one with "
                                 f"zoo.packaging.pack_env() or `venv-pack -o env.tar.gz`, or pass a URL.")
        name = local
    if os.path.isabs(python) or python.startswith(".."):
        raise PackagingError(f"Expected `python` relative to the archive root, e.g. 'bin/python'. "
                             f"Received: {python!r}.")
    return PackedEnv(name, GIVEN, python)
