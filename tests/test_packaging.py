"""Packing a Python environment for executors: real venvs packed by venv-pack, run after unpacking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from zoo.packaging import (
    DEFAULT_EXCLUDES, PackagingError, editable_packages, given_archive, installed_packages, pack_env,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)

pytest.importorskip("venv_pack", reason="packing tests need venv-pack: pip install venv-pack")


def _site(venv) -> str:
    return os.path.join(str(venv), "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")


def _add_package(venv, name: str, version: str, source: str = "VALUE = 1\n") -> None:
    """Install a one-module package into `venv` the way pip lays it out (module + dist-info)."""
    site = _site(venv)
    os.makedirs(os.path.join(site, name), exist_ok=True)
    with open(os.path.join(site, name, "__init__.py"), "w") as f:
        f.write(source)
    info = os.path.join(site, f"{name}-{version}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    open(os.path.join(info, "RECORD"), "w").close()


def _add_editable(venv, source_root, name: str) -> None:
    """An editable install as current pip/setuptools make it: a finder hook + PEP 610 metadata."""
    package_dir = os.path.join(str(source_root), name)
    os.makedirs(package_dir, exist_ok=True)
    with open(os.path.join(package_dir, "__init__.py"), "w") as f:
        f.write("WHERE = __file__\n")
    site = _site(venv)
    finder = f"__editable___{name}_0_1_finder"
    with open(os.path.join(site, finder + ".py"), "w") as f:
        f.write(
            "import importlib.util, sys\n"
            f"MAPPING = {{{name!r}: {package_dir!r}}}\n"
            "class _Finder:\n"
            "    @classmethod\n"
            "    def find_spec(cls, fullname, path=None, target=None):\n"
            "        if fullname in MAPPING:\n"
            "            return importlib.util.spec_from_file_location(fullname, MAPPING[fullname] + '/__init__.py',\n"
            "                submodule_search_locations=[MAPPING[fullname]])\n"
            "def install():\n"
            "    sys.meta_path.append(_Finder)\n"
        )
    with open(os.path.join(site, f"__editable__.{name}-0.1.pth"), "w") as f:
        f.write(f"import {finder}; {finder}.install()\n")
    info = os.path.join(site, f"{name}-0.1.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    with open(os.path.join(info, "top_level.txt"), "w") as f:
        f.write(name + "\n")
    with open(os.path.join(info, "direct_url.json"), "w") as f:
        json.dump({"url": f"file://{source_root}", "dir_info": {"editable": True}}, f)


@pytest.fixture
def venv(tmp_path):
    """A fresh, real venv of the base interpreter (no pip: small and quick to pack)."""
    path = tmp_path / "venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(path)], check=True)
    _add_package(path, "mypkg", "1.0")
    return path


def _unpack(archive: str, target) -> str:
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="fully_trusted")
    return str(target)


def _run_python(env_dir: str, code: str, **kwargs) -> str:
    return subprocess.run([os.path.join(env_dir, "bin", "python"), "-c", code], check=True, capture_output=True,
                          text=True, cwd=env_dir, **kwargs).stdout.strip()


def test_packed_venv_runs_from_wherever_it_is_unpacked(venv, tmp_path):
    packed = pack_env(str(venv), cache_dir=str(tmp_path / "cache"))
    assert packed.kind == "venv" and not packed.cached and packed.py_files == ()
    assert packed.archive.startswith(str(tmp_path / "cache")) and packed.archive.endswith(".tar.gz")
    assert oct(os.stat(packed.archive).st_mode & 0o777) == "0o644"
    unpacked = _unpack(packed.archive, tmp_path / "elsewhere")
    prefix, module = _run_python(unpacked, "import sys, mypkg; print(sys.prefix); print(mypkg.__file__)").splitlines()
    assert prefix == unpacked
    assert module.startswith(unpacked + os.sep)
    assert packed.executor_python("env") == "./env/bin/python"


def test_archive_is_packed_once_per_set_of_installed_packages(venv, tmp_path):
    cache = str(tmp_path / "cache")
    first = pack_env(str(venv), cache_dir=cache)
    inode = os.stat(first.archive).st_ino
    again = pack_env(str(venv), cache_dir=cache)
    assert again.cached and again.archive == first.archive and again.key == first.key
    assert os.stat(first.archive).st_ino == inode and again.pack_seconds == 0  # not written again
    _add_package(venv, "newpkg", "2.0")  # "pip install newpkg" changes the fingerprint
    assert "newpkg==2.0" in installed_packages(str(venv))
    changed = pack_env(str(venv), cache_dir=cache)
    assert not changed.cached and changed.archive != first.archive
    with tarfile.open(changed.archive) as tar:
        assert any(n.endswith("site-packages/newpkg/__init__.py") for n in tar.getnames())
    assert not pack_env(str(venv), cache_dir=cache, force=True).cached
    with open(changed.archive + ".json") as f:
        meta = json.load(f)
    assert "newpkg==2.0" in meta["packages"] and meta["pack_seconds"] >= 0


def test_exclude_and_include_filters_shape_the_archive(venv, tmp_path):
    _add_package(venv, "bigpkg", "1.0")
    exclude = list(DEFAULT_EXCLUDES) + ["lib/python*/site-packages/bigpkg/*", "lib/python*/site-packages/mypkg/*"]
    packed = pack_env(str(venv), cache_dir=str(tmp_path / "cache"), exclude=exclude,
                      include=["lib/python*/site-packages/mypkg/__init__.py"])
    with tarfile.open(packed.archive) as tar:
        names = tar.getnames()
    assert not any("site-packages/bigpkg/" in n for n in names)
    assert any(n.endswith("site-packages/mypkg/__init__.py") for n in names)


def test_editable_packages_ship_as_zips_instead_of_hooks_into_this_machine(venv, tmp_path):
    source = tmp_path / "src"
    _add_editable(venv, source, "edpkg")
    assert editable_packages(str(venv)) == {"edpkg": [str(source / "edpkg")]}
    packed = pack_env(str(venv), cache_dir=str(tmp_path / "cache"))
    assert len(packed.py_files) == 1
    with zipfile.ZipFile(packed.py_files[0]) as z:
        assert z.namelist() == ["edpkg/__init__.py"]
    with tarfile.open(packed.archive) as tar:
        assert not any("__editable__" in n for n in tar.getnames())
    unpacked = _unpack(packed.archive, tmp_path / "node")
    os.rename(source, tmp_path / "gone")  # the executor's machine has no copy of the source tree
    where = _run_python(unpacked, "import edpkg; print(edpkg.WHERE)",
                        env=dict(os.environ, PYTHONPATH=packed.py_files[0]))
    assert where.startswith(packed.py_files[0] + os.sep)
    # The zip is reused while the source is unchanged.
    os.rename(tmp_path / "gone", source)
    assert pack_env(str(venv), cache_dir=str(tmp_path / "cache")).py_files == packed.py_files


def test_a_python_that_is_not_a_venv_or_conda_env_is_refused_with_the_fix(tmp_path):
    with pytest.raises(PackagingError, match="neither a virtual environment .* nor a conda environment") as info:
        pack_env(str(tmp_path))
    assert "python -m venv" in str(info.value) and "env_archive" in str(info.value)
    # The same from a driver running a system-wide Python (not a venv).
    code = "from zoo.packaging import pack_env; pack_env()"
    proc = subprocess.run([BASE_PYTHON, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0 and "PackagingError" in proc.stderr and "neither a virtual environment" in proc.stderr


def test_missing_venv_pack_is_reported_with_the_install_command(venv, tmp_path):
    # The fresh venv has no venv-pack: packing itself from its own Python must say how to get it.
    code = f"from zoo.packaging import pack_env; pack_env(cache_dir={str(tmp_path / 'cache')!r})"
    proc = subprocess.run([os.path.join(str(venv), "bin", "python"), "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode != 0
    assert "needs venv-pack, which is not installed" in proc.stderr
    assert "-m pip install venv-pack" in proc.stderr


def test_conda_env_without_conda_pack_is_reported(tmp_path):
    prefix = tmp_path / "conda-env"
    (prefix / "conda-meta").mkdir(parents=True)
    try:
        import conda_pack  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("conda-pack is installed: this checks the message shown to users without it")
    with pytest.raises(PackagingError, match="needs conda-pack") as info:
        pack_env(str(prefix), cache_dir=str(tmp_path / "cache"))
    assert "conda install -c conda-forge conda-pack" in str(info.value)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs), so that packing genuinely runs out of space."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 2 MiB tmpfs needs root; run the suite as root to test the out-of-space error")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_running_out_of_disk_space_says_so_and_leaves_no_partial_archive(venv, tiny_disk):
    with open(os.path.join(_site(venv), "mypkg", "weights.bin"), "wb") as f:
        f.write(os.urandom(6 * 2**20))  # incompressible: the archive cannot fit in 2 MiB
    started = time.time()
    with pytest.raises(PackagingError, match="ran out of disk space") as info:
        pack_env(str(venv), cache_dir=str(tiny_disk))
    assert str(tiny_disk) in str(info.value) and "ZOO_ENV_CACHE" in str(info.value)
    assert time.time() - started < 60
    left = os.listdir(tiny_disk)
    assert not [n for n in left if n.endswith((".tar.gz", ".json")) or n.startswith(".staging")], left


def test_pack_format_and_given_archives_are_checked(tmp_path, venv):
    with pytest.raises(PackagingError, match="Expected `format` to be one of"):
        pack_env(str(venv), cache_dir=str(tmp_path / "cache"), format="tar")
    with pytest.raises(PackagingError, match="what Spark unpacks"):
        given_archive(str(tmp_path / "env.rar"))
    with pytest.raises(PackagingError, match="does not exist"):
        given_archive(str(tmp_path / "missing.tar.gz"))
    archive = tmp_path / "mine.tar.gz"
    archive.write_bytes(b"")
    assert given_archive(str(archive)).archive == str(archive)
    assert given_archive("hdfs:///envs/team.tar.gz").archive == "hdfs:///envs/team.tar.gz"
    assert given_archive("hdfs:///envs/conda.tgz", python="bin/python3").executor_python("py") == "./py/bin/python3"
    with pytest.raises(PackagingError, match="relative to the archive root"):
        given_archive("hdfs:///envs/team.tar.gz", python="/usr/bin/python3")


def test_old_unused_archives_are_pruned_but_recent_ones_kept(venv, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    two_days_ago = time.time() - 2 * 24 * 3600
    old = []
    for i in range(4):  # archives of earlier package sets, unused for two days, oldest first
        path = cache / f"venv-old{i}.tar.gz"
        path.write_bytes(b"x")
        (cache / f"venv-old{i}.tar.gz.json").write_text("{}")
        os.utime(path, (two_days_ago + i, two_days_ago + i))
        old.append(path)
    recent = cache / "venv-recent.tar.gz"
    recent.write_bytes(b"x")  # used just now by another job: kept whatever the count
    packed = pack_env(str(venv), cache_dir=str(cache))
    left = sorted(n for n in os.listdir(cache) if n.endswith(".tar.gz"))
    # Kept: the new archive and the two most recently used others (DEFAULT_CACHE_KEEP = 3).
    assert left == sorted([os.path.basename(packed.archive), "venv-recent.tar.gz", "venv-old3.tar.gz"])
    assert not (cache / "venv-old0.tar.gz.json").exists()
