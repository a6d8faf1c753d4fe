"""zoo.storage.atomic and the file operations: staged output is all there after a commit and
nothing of it is visible after a failure, locally (rename) and on S3 (commit marker last)."""

import os

import pytest

from zoo import storage
from zoo.storage.atomic import upload_order


def fill(folder, files: dict):
    for rel, content in files.items():
        os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
        with open(os.path.join(folder, rel), "w") as f:
            f.write(content)


def test_local_staged_directory_replaces_the_target_or_leaves_it_alone(tmp_path):
    target = tmp_path / "out" / "run"
    with storage.staged(str(target), marker="meta.json") as folder:
        assert os.path.dirname(folder) == str(tmp_path / "out")  # beside the target: one rename commits it
        fill(folder, {"model.pt": "v1", "sub/x": "1", "meta.json": "{}"})
    assert sorted(os.listdir(target)) == ["meta.json", "model.pt", "sub"]
    with pytest.raises(RuntimeError, match="mid-write"):
        with storage.staged(str(target), marker="meta.json") as folder:
            fill(folder, {"model.pt": "v2"})
            raise RuntimeError("mid-write")
    assert (target / "model.pt").read_text() == "v1" and os.listdir(tmp_path / "out") == ["run"]
    with storage.staged(f"file://{target}", marker="meta.json") as folder:
        fill(folder, {"model.pt": "v3", "meta.json": "{}"})
    assert sorted(os.listdir(target)) == ["meta.json", "model.pt"] and os.listdir(tmp_path / "out") == ["run"]
    with pytest.raises(storage.StorageError, match="no commit marker 'meta.json'"):
        with storage.staged(str(target), marker="meta.json") as folder:
            fill(folder, {"model.pt": "v4"})
    assert (target / "model.pt").read_text() == "v3"


def test_the_marker_is_uploaded_last():
    assert upload_order(["z.bin", "meta.json", "a/b.pt"], "meta.json") == ["a/b.pt", "z.bin", "meta.json"]
    assert upload_order(["b", "a"], None) == ["a", "b"]


def test_s3_staged_directory_commits_marker_last_and_cleans_up_a_failed_upload(s3):
    target = f"{s3.url}/ckpt/checkpoint-1"
    with storage.staged(target, marker="meta.json") as folder:
        fill(folder, {"model.pt": "v1", "stale.txt": "old", "meta.json": "{}"})
    assert s3.keys("ckpt") == ["ckpt/checkpoint-1/meta.json", "ckpt/checkpoint-1/model.pt",
                               "ckpt/checkpoint-1/stale.txt"]
    with pytest.raises(storage.StorageError):
        with storage.staged(target.replace("s3://", "s3a://"), marker="meta.json") as folder:
            fill(folder, {"model.pt": "v2", "meta.json": "{}"})
            os.symlink("/nonexistent/zoo", os.path.join(folder, "optimizer.pt"))  # its upload fails
    assert s3.keys("ckpt") == []  # the old set lost its marker first, the partial new one is removed
    with storage.staged(target, marker="meta.json") as folder:
        fill(folder, {"model.pt": "v3", "meta.json": "{}"})
    assert s3.keys("ckpt") == ["ckpt/checkpoint-1/meta.json", "ckpt/checkpoint-1/model.pt"]
    assert storage.read_bytes(f"{target}/model.pt") == b"v3"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_staged_files_commit_in_order_and_leave_nothing_after_a_failure(tmp_path, s3, where):
    base = str(tmp_path / "models") if where == "local" else f"{s3.url}/models"
    bin_url, xml_url = storage.join(base, "m.bin"), storage.join(base, "m.xml")
    with storage.staged_files(bin_url, xml_url) as (staged_bin, staged_xml):
        assert os.path.dirname(staged_bin) == os.path.dirname(staged_xml)
        fill(os.path.dirname(staged_bin), {"m.bin": "weights", "m.xml": "<net/>"})
    assert storage.read_bytes(xml_url) == b"<net/>" and storage.listdir(base) == ["m.bin", "m.xml"]
    with pytest.raises(ValueError, match="converter broke"):
        with storage.staged_files(storage.join(base, "n.bin"), storage.join(base, "n.xml")) as (staged_bin, _):
            fill(os.path.dirname(staged_bin), {"n.bin": "weights"})
            raise ValueError("converter broke")
    assert storage.listdir(base) == ["m.bin", "m.xml"]
    with pytest.raises(storage.StorageError, match="Nothing was written"):
        with storage.staged_files(storage.join(base, "o.bin"), storage.join(base, "o.xml")) as (staged_bin, _):
            fill(os.path.dirname(staged_bin), {"o.bin": "weights"})
    assert storage.listdir(base) == ["m.bin", "m.xml"]  # o.bin was committed, then removed again


def test_file_operations_on_s3_and_file_urls(tmp_path, s3):
    for base in (f"file://{tmp_path}", s3.url, s3.url.replace("s3://", "s3a://")):
        url = storage.join(base, "dir", "data.bin")
        storage.write_bytes(url, b"abc")
        assert storage.exists(url) and storage.read_bytes(url) == b"abc"
        assert storage.isdir(storage.join(base, "dir")) and storage.listdir(storage.join(base, "dir")) == ["data.bin"]
        with storage.open_file(url) as f:
            assert f.read(2) == b"ab"
        assert storage.list_files(storage.join(base, "dir", "*.bin")) == [storage.resolve(url)]  # file:// -> path
        storage.remove(storage.join(base, "dir"))
        assert not storage.exists(url) and storage.listdir(storage.join(base, "dir")) == []
    with pytest.raises(storage.StorageNotFoundError, match="does not exist"):
        storage.read_bytes(f"{s3.url}/missing.bin")
    with pytest.raises(FileNotFoundError):  # what users catch
        storage.list_files(f"{s3.url}/missing/")


def test_upload_and_download_a_directory(tmp_path, s3):
    source = tmp_path / "src"
    fill(str(source), {"a.txt": "a", "sub/b.txt": "b"})
    storage.upload(str(source), f"{s3.url}/copy")
    assert s3.keys() == ["copy/a.txt", "copy/sub/b.txt"]
    storage.download(f"{s3.url}/copy", str(tmp_path / "back"))
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == "b"
