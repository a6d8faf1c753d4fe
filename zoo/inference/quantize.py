"""Int8 post-training quantization of a model to OpenVINO IR with NNCF (extra ``quant``: ``pip install nncf``).

``quantize`` calibrates on sample data, writes the int8 IR, and reports how much the outputs and,
when labels are given, the top-1 accuracy moved against the f32 model on the same data.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from zoo import storage
from zoo.inference import detect
from zoo.inference.backends import keras as keras_backend
from zoo.inference.backends import openvino as ov_backend
from zoo.inference.config import OpenVINOConfig
from zoo.inference.convert import keras_export, torch_to_openvino
from zoo.inference.errors import ExportError, InferenceArgumentError, UnsupportedModelError
from zoo.inference.signature import as_array_list, prepare_inputs

logger = logging.getLogger(__name__)

#: Calibration samples NNCF uses at most (NNCF's own default).
DEFAULT_SUBSET_SIZE = 300
#: Batch size used to compare the f32 and int8 models.
DEFAULT_EVAL_BATCH_SIZE = 64
#: NNCF presets: "performance" (symmetric) or "mixed" (asymmetric activations).
PRESETS = ("performance", "mixed")
INSTALL_HINT = "pip install nncf  (or the extra: pip install 'spark-zoo[quant]')"


@dataclass
class QuantizationReport:
    """What int8 quantization changed, measured on the evaluation data (f32 vs int8).

    Attributes:
        path: the int8 OpenVINO IR written (``.xml``; weights in the ``.bin`` beside it).
        samples: how many samples were compared.
        max_abs_diff: largest absolute difference of the first output.
        mean_abs_diff: mean absolute difference of the first output.
        relative_diff: ``mean_abs_diff`` over the mean absolute f32 output (scale-free drift).
        top1_agreement: fraction of samples whose arg-max class is the same in both models
            (None when the first output is not a class score vector).
        fp32_accuracy: top-1 accuracy of the f32 model against the labels (None without labels).
        int8_accuracy: top-1 accuracy of the int8 model (None without labels).
    """

    path: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    relative_diff: float
    top1_agreement: float | None
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None

    @property
    def accuracy_change(self) -> float | None:
        """``int8_accuracy - fp32_accuracy`` (negative: int8 is worse), or None without labels."""
        if self.fp32_accuracy is None or self.int8_accuracy is None:
            return None
        return self.int8_accuracy - self.fp32_accuracy

    def __str__(self) -> str:
        parts = [f"int8 model {self.path!r} on {self.samples} samples: max |diff| {self.max_abs_diff:.4g}, mean |diff| {self.mean_abs_diff:.4g} ({self.relative_diff:.1%} of mean |f32 output|)"]
        if self.top1_agreement is not None:
            parts.append(f"top-1 agreement {self.top1_agreement:.2%}")
        if self.accuracy_change is not None:
            parts.append(
                f"accuracy {self.fp32_accuracy:.2%} (f32) -> {self.int8_accuracy:.2%} (int8), change {self.accuracy_change:+.2%}"
            )
        return "; ".join(parts)


def _import_nncf():
    try:
        import nncf
    except ImportError as exc:
        raise ImportError(f"Int8 quantization needs NNCF: {INSTALL_HINT}") from exc
    return nncf


def _to_openvino(model: Any, arrays: list[np.ndarray], workdir: str):
    """``model`` (torch, Keras, ov.Model, or a .xml/.onnx path) as an ``openvino.Model``."""
    import openvino as ov
    import torch

    if isinstance(model, ov.Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = detect.local_model(model)
        if path.endswith(".xml"):
            return ov_backend.read(path)
        if not os.path.isfile(path):
            raise ExportError(f"Model file not found: {path!r} (formats tried: OpenVINO IR, ONNX). Check the path.")
        return ov_backend.core().read_model(path)
    if isinstance(model, (torch.nn.Module, torch.export.ExportedProgram)):
        return torch_to_openvino(model, [a[:1] for a in arrays])
    if keras_backend.is_keras_model(model):
        staged = os.path.join(workdir, "keras_f32.xml")
        keras_backend.KerasBackend(model, "keras").new_request()([a[:1] for a in arrays])
        keras_export(model, staged, "openvino")
        return ov_backend.read(staged)
    raise UnsupportedModelError(
        f"Expected a torch module, a keras.Model, an openvino.Model or a path to .xml/.onnx to quantize. "
        f"Received: {type(model).__name__}."
    )


def _run_all(backend, arrays: list[np.ndarray], batch_size: int) -> np.ndarray:
    run = backend.new_request()
    n = len(arrays[0])
    outs = []
    for start in range(0, n, batch_size):
        batch = prepare_inputs([a[start : start + batch_size] for a in arrays], backend.inputs)
        outs.append(run(batch)[0])
    return np.concatenate(outs, axis=0)


def quantize(
    model: Any,
    calibration_data: Any,
    path: str | os.PathLike,
    *,
    eval_data: Any = None,
    eval_labels: Sequence[int] | np.ndarray | None = None,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    preset: str = "performance",
    eval_batch_size: int = DEFAULT_EVAL_BATCH_SIZE,
) -> QuantizationReport:
    """Quantize ``model`` to int8 with NNCF post-training quantization and write it as OpenVINO IR.

    Args:
        model: a torch module, a Keras model, an ``openvino.Model``, or a ``.xml``/``.onnx`` path or URL.
        calibration_data: an ndarray or list of ndarrays (one per input, samples first) that look
            like real inputs; up to ``subset_size`` samples are used.
        path: the ``.xml`` file to write (a path or URL; the ``.bin`` goes beside it).
        eval_data: inputs on which f32 and int8 are compared (default: ``calibration_data``).
        eval_labels: integer class labels for ``eval_data``; with them the report gives top-1
            accuracy of both models and the change.
        subset_size: calibration samples NNCF uses at most.
        preset: ``"performance"`` or ``"mixed"``.
        eval_batch_size: batch size of the comparison runs.

    Returns:
        a :class:`QuantizationReport` (also logged).

    Raises:
        ImportError: NNCF is not installed (says what to install).
    """
    path = os.fspath(path)
    if not path.endswith(".xml"):
        raise InferenceArgumentError(f"Expected `path` to end with '.xml' (OpenVINO IR). Received: path={path!r}.")
    if preset not in PRESETS:
        raise InferenceArgumentError(f"Expected `preset` to be one of {list(PRESETS)}. Received: preset={preset!r}.")
    nncf = _import_nncf()
    import openvino as ov

    calib = as_array_list(calibration_data, "calibration_data")
    evaluation = as_array_list(eval_data, "eval_data") if eval_data is not None else calib
    labels = None if eval_labels is None else np.asarray(eval_labels).reshape(-1)
    if labels is not None and len(labels) != len(evaluation[0]):
        raise InferenceArgumentError(
            f"Expected one label per evaluation sample ({len(evaluation[0])}). Received {len(labels)} labels."
        )
    if not storage.is_local(path):
        storage.check_writable(storage.parent(path))
    # Staged (beside a local path) and committed when the report is ready: the .bin, then the .xml.
    with storage.staged_files(path[: -len(".xml")] + ".bin", path) as (_, staged):
        workdir = os.path.dirname(staged)
        f32_model = _to_openvino(model, calib, workdir)
        n = len(calib[0])
        items = [[a[i : i + 1] for a in calib] for i in range(n)]
        dataset = nncf.Dataset(items, lambda item: item if len(item) > 1 else item[0])
        preset_value = nncf.QuantizationPreset.PERFORMANCE if preset == "performance" else nncf.QuantizationPreset.MIXED
        int8_model = nncf.quantize(f32_model, dataset, subset_size=min(subset_size, n), preset=preset_value)
        ov.save_model(int8_model, staged, compress_to_fp16=False)

        config = OpenVINOConfig()
        f32 = ov_backend.compile(f32_model, config, 1, "f32")
        int8 = ov_backend.compile(ov_backend.read(staged), config, 1, path)
        ref = _run_all(f32, evaluation, eval_batch_size).astype(np.float64)
        got = _run_all(int8, evaluation, eval_batch_size).astype(np.float64)
        diff = np.abs(ref - got)
        f32.close()
        int8.close()
        is_scores = ref.ndim == 2 and ref.shape[1] > 1
        agreement = float(np.mean(ref.argmax(1) == got.argmax(1))) if is_scores else None
        fp32_acc = int8_acc = None
        if labels is not None:
            if not is_scores:
                raise InferenceArgumentError(
                    f"`eval_labels` need a model whose first output is class scores [batch, classes]. "
                    f"This model's first output has shape {list(ref.shape)}; leave eval_labels out."
                )
            fp32_acc = float(np.mean(ref.argmax(1) == labels))
            int8_acc = float(np.mean(got.argmax(1) == labels))
    report = QuantizationReport(
        path=path,
        samples=len(evaluation[0]),
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        relative_diff=float(diff.mean() / max(np.abs(ref).mean(), 1e-12)) if diff.size else 0.0,
        top1_agreement=agreement,
        fp32_accuracy=fp32_acc,
        int8_accuracy=int8_acc,
    )
    logger.info("Quantized: %s", report)
    return report
