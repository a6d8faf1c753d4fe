"""``export``: write a torch or Keras model as ONNX or OpenVINO IR, checked against the source.

The file is written to a staging folder (beside ``path`` when it is local), loaded back with its
runtime, run on ``example_input`` and on a batch one sample larger (proving the batch dimension is
dynamic), and compared with the source model's outputs. Only then is it committed to ``path``
(`zoo.storage.staged_files`: a rename locally, an upload for a URL, the ``.xml`` after its
``.bin``); a failed export leaves nothing behind. ``path`` may be a URL (``s3://``, ``hdfs://``).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from zoo import storage
from zoo.inference.backends import keras as keras_backend
from zoo.inference.backends import onnxruntime as ort_backend
from zoo.inference.backends import openvino as ov_backend
from zoo.inference.config import DEFAULT_ATOL, DEFAULT_ONNX_OPSET, DEFAULT_RTOL, OnnxRuntimeConfig, OpenVINOConfig
from zoo.inference.convert import (
    check_outputs,
    grown_batch,
    keras_export,
    keras_reference,
    torch_reference,
    torch_to_onnx,
    torch_to_openvino,
)
from zoo.inference.errors import ExportError, InferenceArgumentError, UnsupportedModelError, short
from zoo.inference.signature import as_array_list, prepare_inputs

#: Export formats and the file ending each one needs.
FORMATS = {"onnx": ".onnx", "openvino": ".xml"}


def framework_of(model: Any) -> str:
    """``"torch"`` or ``"keras"``; raises TypeError for anything else."""
    import torch

    if isinstance(model, (torch.nn.Module, torch.export.ExportedProgram)):
        return "torch"
    if keras_backend.is_keras_model(model):
        return "keras"
    raise UnsupportedModelError(
        f"Expected a torch.nn.Module, torch.export.ExportedProgram or keras.Model to export. "
        f"Received: {type(model).__name__}."
    )


def _check_path(path: str, fmt: str) -> None:
    if fmt not in FORMATS:
        raise InferenceArgumentError(f"Expected `format` to be one of {sorted(FORMATS)}. Received: format={fmt!r}.")
    if not path.endswith(FORMATS[fmt]):
        raise InferenceArgumentError(
            f"Expected `path` to end with {FORMATS[fmt]!r} for format={fmt!r}. Received: path={path!r}."
            + (" OpenVINO writes the weights beside it, with the ending .bin." if fmt == "openvino" else "")
        )


def _written_files(path: str, fmt: str) -> list[str]:
    return [path, path[: -len(".xml")] + ".bin"] if fmt == "openvino" else [path]


def _run_exported(path: str, fmt: str, batches: Sequence[list[np.ndarray]]) -> list[list[np.ndarray]]:
    if fmt == "onnx":
        backend = ort_backend.load(path, OnnxRuntimeConfig(), 1)
    else:
        backend = ov_backend.compile(ov_backend.read(path), OpenVINOConfig(), 1, path)
    run = backend.new_request()
    try:
        return [run(prepare_inputs(batch, backend.inputs)) for batch in batches]
    finally:
        backend.close()


def export(
    model: Any,
    example_input: Any,
    path: str | os.PathLike,
    format: str = "onnx",
    *,
    verify: bool = True,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    opset: int = DEFAULT_ONNX_OPSET,
) -> str:
    """Write ``model`` to ``path`` as ONNX or OpenVINO IR with a dynamic batch dimension.

    Args:
        model: a ``torch.nn.Module`` (eager or TorchScript), ``torch.export.ExportedProgram`` or a
            Keras 3 ``keras.Model``.
        example_input: an ndarray or a list of ndarrays (one per input, batch first) to trace with
            and to check the result on.
        path: the file to write, a path or URL: ``*.onnx`` for ``format="onnx"``, ``*.xml`` for
            ``format="openvino"`` (the weights go to the ``.bin`` beside it, kept in f32).
        format: ``"onnx"`` or ``"openvino"``.
        verify: load the written model and compare its outputs with ``model``'s (``numpy.allclose``
            with ``atol``/``rtol``) on ``example_input`` and on a batch of another size.
        opset: ONNX opset for torch models.

    Returns:
        ``path``, as a str.

    Raises:
        ExportError: the conversion failed or changed the results; nothing is left at ``path``.
        ImportError: a converter is missing (Keras -> ONNX needs ``tf2onnx``), or the package for
            the URL's scheme (``s3fs``).
        StorageError: a remote ``path`` cannot be written (checked before converting).
    """
    path = os.fspath(path)
    _check_path(path, format)
    framework = framework_of(model)
    arrays = as_array_list(example_input)
    batches = [arrays, grown_batch(arrays)]
    if framework == "torch":
        expected = [torch_reference(model, b) for b in batches]
    else:
        keras_backend.import_keras()
        expected = [keras_reference(model, b) for b in batches]

    if not storage.is_local(path):
        storage.check_writable(storage.parent(path))
    try:
        # The .bin first: a reader opens the .xml and finds its weights beside it.
        with storage.staged_files(*reversed(_written_files(path, format))) as staged_paths:
            staged = staged_paths[-1]
            if framework == "torch" and format == "onnx":
                torch_to_onnx(model, arrays, staged, opset=opset)
            elif framework == "torch":
                import openvino as ov

                ov.save_model(torch_to_openvino(model, arrays), staged, compress_to_fp16=False)
            else:
                keras_export(model, staged, format)
            if verify:
                actual = _run_exported(staged, format, batches)
                for want, got, batch in zip(expected, actual, batches):
                    check_outputs(want, got, atol, rtol, f"The exported {format} model (batch {len(batch[0])})")
    except (ExportError, ImportError, storage.StorageError):
        raise
    except Exception as exc:  # noqa: BLE001 - any converter failure becomes one clear error
        raise ExportError(f"Exporting {type(model).__name__} to {format} at {path!r} failed: {short(exc)}") from exc
    return path
