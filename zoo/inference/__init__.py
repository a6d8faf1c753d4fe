"""Inference on numpy for torch, ONNX, OpenVINO and Keras models, behind one handle.

``InferenceModel`` loads a model of any supported kind and predicts from many threads with a pool
of compiled requests; ``export`` writes torch/Keras models as ONNX or OpenVINO IR (checked
against the source); ``quantize`` makes an int8 OpenVINO model with NNCF (extra ``quant``).
Serving and ``NNModel`` run their models through ``InferenceModel``.
"""

from zoo.inference.config import OnnxRuntimeConfig, OpenVINOConfig
from zoo.inference.errors import (
    ExportError, InferenceArgumentError, InferenceInputError, ModelLoadError, NotLoadedError, UnsupportedModelError,
)
from zoo.inference.export import export
from zoo.inference.model import InferenceModel
from zoo.inference.quantize import QuantizationReport, quantize
from zoo.inference.signature import TensorSpec

__all__ = [
    "InferenceModel",
    "export",
    "quantize",
    "QuantizationReport",
    "OpenVINOConfig",
    "OnnxRuntimeConfig",
    "TensorSpec",
    "InferenceInputError",
    "ModelLoadError",
    "ExportError",
    "NotLoadedError",
    "InferenceArgumentError",
    "UnsupportedModelError",
]
