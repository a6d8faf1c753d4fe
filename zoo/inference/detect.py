"""Tell which kind of model a path holds, from its name first and its first bytes second; and
bring a model at a URL to local disk (`local_model`) so the runtimes can read it."""

from __future__ import annotations

import os
import zipfile

from zoo import storage
from zoo.inference.errors import ModelLoadError

ONNX = "onnx"
OPENVINO = "openvino"
TORCHSCRIPT = "torchscript"
EXPORTED_PROGRAM = "exported_program"
KERAS = "keras"
SAVED_MODEL = "saved_model"
#: File name endings and the kind each one means.
EXTENSIONS = {
    ".onnx": ONNX,
    ".xml": OPENVINO,
    ".pt2": EXPORTED_PROGRAM,
    ".pt": TORCHSCRIPT,
    ".pth": TORCHSCRIPT,
    ".ts": TORCHSCRIPT,
    ".torchscript": TORCHSCRIPT,
    ".keras": KERAS,
    ".h5": KERAS,
    ".hdf5": KERAS,
}
SUPPORTED = (
    ".onnx (ONNX), .xml + .bin (OpenVINO IR), .pt/.pth (TorchScript), .pt2 (torch.export), "
    ".keras/.h5 (Keras), a TensorFlow SavedModel directory"
)


def _sniff(path: str) -> str | None:
    with open(path, "rb") as f:
        head = f.read(64)
    stripped = head.lstrip()
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<net"):
        return OPENVINO
    if head.startswith(b"\x89HDF"):
        return KERAS
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return None
        if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
            return KERAS
        if any(n.endswith("archive_format") or "/models/" in n for n in names):
            return EXPORTED_PROGRAM
        return TORCHSCRIPT
    return None


def detect_format(path: str | os.PathLike) -> str:
    """The kind of model at ``path``: one of ``onnx``, ``openvino``, ``torchscript``,
    ``exported_program``, ``keras``, ``saved_model``.

    Raises:
        ModelLoadError: the path does not exist, or holds no model kind Zoo reads.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"Model file not found: {path!r} (format tried: detected from the name, one of {SUPPORTED}). Check the path.")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return SAVED_MODEL
        raise ModelLoadError(
            f"{path!r} is a directory without saved_model.pb (format tried: TensorFlow SavedModel). "
            f"Pass the model file itself; supported: {SUPPORTED}."
        )
    kind = EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if kind is not None:
        return kind
    kind = _sniff(path)
    if kind is not None:
        return kind
    return ONNX


def local_model(path: str | os.PathLike) -> str:
    """A local path holding the model at `path` (a path or URL).

    A local path is returned as it is (a ``file://`` URL as its path). A remote one (``s3://``,
    ``hdfs://``, ...) is fetched into `zoo.storage`'s local cache, keyed by its content so a repeated
    load does not download it again: the file, with the ``.bin`` beside an OpenVINO ``.xml``, or
    the whole folder of a SavedModel.

    Raises:
        ModelLoadError: nothing exists at a remote `path`.
    """
    path = os.fspath(path)
    if not storage.has_scheme(path):
        return path
    if storage.is_local(path):
        return storage.local_path(path)
    if not storage.exists(path):
        raise ModelLoadError(f"Model file not found: {path!r} (format tried: detected from the name, one of "
                             f"{SUPPORTED}). Check the URL.")
    also = [path[: -len(".xml")] + ".bin"] if path.lower().endswith(".xml") else []
    return storage.fetch(path, also=also)
