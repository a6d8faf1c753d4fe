"""Conversions from a framework model to ONNX or OpenVINO, and the check that they agree.

Torch -> ONNX uses the TorchScript-based exporter (``dynamo=False``): it needs no extra package,
takes well under a second for small models and marks the batch dimension dynamic. When it
cannot handle a model (or the model is a ``torch.export.ExportedProgram``) the ``torch.export``
based exporter is tried, which needs ``onnxscript``. Torch -> OpenVINO uses
``openvino.convert_model`` directly. Keras -> ONNX/OpenVINO uses ``keras.Model.export``
(ONNX needs ``tf2onnx``).
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any, Sequence

import numpy as np

from zoo.inference.backends import torch as torch_backend
from zoo.inference.backends.base import output_name
from zoo.inference.config import DEFAULT_ONNX_OPSET
from zoo.inference.errors import ExportError, short

logger = logging.getLogger(__name__)



def torch_reference(model: Any, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The source torch model's outputs on ``arrays`` (what a conversion must reproduce)."""
    return torch_backend.from_module(model).new_request()(list(arrays))


def _torch_args(arrays: Sequence[np.ndarray]) -> tuple:
    import torch

    return tuple(torch.from_numpy(np.array(a, copy=True)) for a in arrays)


def torch_to_onnx(model: Any, arrays: Sequence[np.ndarray], target: str | io.BytesIO, opset: int = DEFAULT_ONNX_OPSET) -> None:
    """Write ``model`` as ONNX to ``target`` (a path or a BytesIO) with a dynamic batch dimension.

    Inputs are named after ``forward``'s arguments, outputs ``output_0``, ``output_1``...
    """
    import torch

    reference = torch_reference(model, arrays)
    in_names = torch_backend.input_names(model, len(arrays))
    out_names = [output_name(i) for i in range(len(reference))]
    errors = []
    if not isinstance(model, torch.export.ExportedProgram):
        dynamic_axes = {n: {0: "batch"} for n, a in zip(in_names, arrays)}
        dynamic_axes.update({n: {0: "batch"} for n, r in zip(out_names, reference) if r.ndim >= 1})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    model.eval(), _torch_args(arrays), target, dynamo=False, input_names=in_names,
                    output_names=out_names, dynamic_axes=dynamic_axes, opset_version=opset,
                )
            return
        except Exception as exc:  # noqa: BLE001 - fall back to the torch.export based exporter below
            errors.append(f"TorchScript exporter: {short(exc)}")
            logger.info("TorchScript ONNX export failed (%s); trying the torch.export based exporter", exc)
    try:
        import onnxscript  # noqa: F401 - the dynamo exporter imports it lazily
    except ImportError:
        errors.append("torch.export exporter: needs `pip install onnxscript`")
        raise ExportError(f"Could not export {type(model).__name__} to ONNX. {'; '.join(errors)}.") from None
    try:
        kwargs: dict[str, Any] = {"dynamo": True, "input_names": in_names, "output_names": out_names, "opset_version": max(opset, 18)}
        if not isinstance(model, torch.export.ExportedProgram):
            batch = torch.export.Dim("batch")
            kwargs["dynamic_shapes"] = tuple({0: batch} for _ in arrays)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, _torch_args(arrays), **kwargs)
        data = program.model_proto.SerializeToString()
    except Exception as exc:  # noqa: BLE001 - report both exporters' failures together
        errors.append(f"torch.export exporter: {short(exc)}")
        raise ExportError(f"Could not export {type(model).__name__} to ONNX. {'; '.join(errors)}.") from exc
    if isinstance(target, io.BytesIO):
        target.write(data)
    else:
        with open(target, "wb") as f:
            f.write(data)


def torch_to_openvino(model: Any, arrays: Sequence[np.ndarray]):
    """``model`` as an in-memory ``openvino.Model`` whose inputs have a dynamic batch dimension."""
    import openvino as ov
    import torch

    try:
        if isinstance(model, torch.export.ExportedProgram):
            return ov.convert_model(model)
        shapes = [(ov.PartialShape([-1] + list(a.shape[1:])), ov.Type(a.dtype)) for a in arrays]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ov.convert_model(model.eval(), example_input=_torch_args(arrays), input=shapes)
    except Exception as exc:  # noqa: BLE001 - OpenVINO's frontends raise many error classes
        raise ExportError(
            f"OpenVINO could not convert {type(model).__name__}: {short(exc)}. "
            f"Try format='onnx' (ONNX Runtime), or simplify the model's forward."
        ) from exc


def keras_reference(model: Any, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The source Keras model's outputs on ``arrays`` (this also builds an unbuilt model)."""
    from zoo.inference.backends import keras as keras_backend

    return keras_backend.KerasBackend(model, "keras").new_request()(list(arrays))


def keras_export(model: Any, path: str, fmt: str) -> None:
    """Write a Keras model to ``path`` with ``keras.Model.export`` (``fmt`` ``onnx`` or ``openvino``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.export(path, format=fmt, verbose=False)
    except ImportError as exc:
        need = "tf2onnx" if fmt == "onnx" else "openvino"
        raise ImportError(f"Exporting a Keras model to {fmt} needs `pip install {need}`: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - Keras export raises many error classes
        raise ExportError(f"Keras could not export {type(model).__name__} to {fmt}: {short(exc)}") from exc


def check_outputs(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray], atol: float, rtol: float, what: str) -> float:
    """Raise ExportError unless ``actual`` matches ``expected``; return the largest abs difference."""
    if len(expected) != len(actual):
        raise ExportError(f"{what} returns {len(actual)} output(s); the source model returns {len(expected)}.")
    worst = 0.0
    for i, (e, a) in enumerate(zip(expected, actual)):
        e = np.asarray(e)
        a = np.asarray(a)
        if e.shape != a.shape:
            raise ExportError(f"{what}: output {i} has shape {list(a.shape)}; the source model gives {list(e.shape)}.")
        if e.size == 0:
            continue
        diff = float(np.max(np.abs(e.astype(np.float64) - a.astype(np.float64))))
        worst = max(worst, diff)
        if not np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
            raise ExportError(
                f"{what}: output {i} differs from the source model by up to {diff:.3g} "
                f"(allowed: atol={atol}, rtol={rtol}). The conversion changed the model's results; "
                f"check for ops that behave differently in eval mode or pass looser atol/rtol."
            )
    return worst


def grown_batch(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The example batch with its first sample repeated once more: a second batch size to check."""
    return [np.concatenate([a, a[:1]], axis=0) for a in arrays]
