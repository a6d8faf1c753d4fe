"""ONNX Runtime backend: a pool of ``InferenceSession`` objects over one ONNX model."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from zoo.inference.backends.base import Backend
from zoo.inference.config import OnnxRuntimeConfig
from zoo.inference.errors import ModelLoadError, short
from zoo.inference.signature import TensorSpec

FORMAT = "ONNX"

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in arg.shape) if arg.shape is not None else None
    dtype = _ORT_TYPES.get(arg.type)
    return TensorSpec(arg.name, shape, None if dtype is None else np.dtype(dtype))


class OnnxRuntimeBackend(Backend):
    """Each request is its own session, so requests never share run state."""

    name = "onnxruntime"

    def __init__(self, model: str | bytes, source: str, config: OnnxRuntimeConfig, concurrent_num: int):
        self._model = model
        self._config = config
        self._concurrent_num = concurrent_num
        first = self._session()
        super().__init__(source, [_spec(a) for a in first.get_inputs()], [o.name for o in first.get_outputs()])
        self._spare = [first]

    def _session(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self._config.session_threads(self._concurrent_num)
        if self._config.inter_op_threads is not None:
            options.inter_op_num_threads = self._config.inter_op_threads
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self._config.graph_optimization]
        return ort.InferenceSession(self._model, sess_options=options, providers=list(self._config.providers))

    def new_request(self):
        session = self._spare.pop() if self._spare else self._session()
        names = [a.name for a in session.get_inputs()]

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            return session.run(None, dict(zip(names, arrays)))

        return run

    def close(self) -> None:
        self._spare.clear()
        self._model = b""


def load(model: str | bytes, config: OnnxRuntimeConfig, concurrent_num: int, source: str | None = None) -> OnnxRuntimeBackend:
    """Open an ONNX model (a path, or the serialized bytes) with ONNX Runtime.

    Raises:
        ModelLoadError: the file is missing, or ONNX Runtime cannot read it; names the path.
    """
    if isinstance(model, (str, os.PathLike)):
        model = os.fspath(model)
        if not os.path.isfile(model):
            raise ModelLoadError(f"Model file not found: {model!r} (format tried: {FORMAT}). Check the path.")
        source = source or model
    try:
        return OnnxRuntimeBackend(model, source or "in-memory ONNX model", config, concurrent_num)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own error classes
        where = source or "the in-memory ONNX model"
        raise ModelLoadError(
            f"Could not load {where!r} as {FORMAT} with ONNX Runtime: {short(exc)}. "
            f"Check that the file is a complete .onnx model (re-export it if it was truncated)."
        ) from exc
