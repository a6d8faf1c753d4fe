"""zoo.storage.fetch: a remote file or directory is downloaded once, again only when it changes."""

import os

from zoo import storage


def test_a_local_path_is_used_in_place(tmp_path):
    assert storage.fetch(str(tmp_path)) == str(tmp_path)
    assert storage.fetch(f"file://{tmp_path}/m.onnx") == f"{tmp_path}/m.onnx"


def test_repeated_fetches_reuse_the_copy_until_the_content_changes(tmp_path, s3):
    cache = str(tmp_path / "cache")
    storage.write_bytes(f"{s3.url}/m/model.xml", b"<net/>")
    storage.write_bytes(f"{s3.url}/m/model.bin", b"weights-1")
    local = storage.fetch(f"{s3.url}/m/model.xml", cache, also=[f"{s3.url}/m/model.bin"])
    assert os.path.basename(local) == "model.xml"
    assert sorted(os.listdir(os.path.dirname(local))) == ["model.bin", "model.xml"]
    stamp = os.stat(local).st_mtime_ns
    again = storage.fetch(f"{s3.url}/m/model.xml", cache, also=[f"{s3.url}/m/model.bin"])
    assert again == local and os.stat(again).st_mtime_ns == stamp  # not downloaded again
    storage.write_bytes(f"{s3.url}/m/model.bin", b"weights-2")
    changed = storage.fetch(f"{s3.url}/m/model.xml", cache, also=[f"{s3.url}/m/model.bin"])
    assert changed != local and not os.path.exists(local)  # a URL keeps only its newest version
    with open(os.path.join(os.path.dirname(changed), "model.bin"), "rb") as f:
        assert f.read() == b"weights-2"


def test_a_directory_is_fetched_whole(tmp_path, s3):
    storage.write_bytes(f"{s3.url}/saved/saved_model.pb", b"pb")
    storage.write_bytes(f"{s3.url}/saved/variables/v.index", b"ix")
    local = storage.fetch(f"{s3.url}/saved", str(tmp_path / "cache"))
    assert sorted(os.listdir(local)) == ["saved_model.pb", "variables"]
    assert open(os.path.join(local, "variables", "v.index"), "rb").read() == b"ix"
