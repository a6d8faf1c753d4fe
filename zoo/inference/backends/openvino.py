"""OpenVINO backend: one compiled model and a pool of its infer requests."""

from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import numpy as np

from zoo.inference.backends.base import Backend
from zoo.inference.config import OpenVINOConfig
from zoo.inference.errors import ModelLoadError, short
from zoo.inference.signature import TensorSpec

FORMAT = "OpenVINO IR"


@functools.lru_cache(maxsize=1)
def core():
    """The process's one ``openvino.Core`` (it owns the device plugins; one is enough)."""
    import openvino as ov

    return ov.Core()


def _port_name(port, index: int, prefix: str) -> str:
    names = port.get_names()
    if names:
        return port.get_any_name()
    return f"{prefix}_{index}"


def _spec(port, index: int) -> TensorSpec:
    pshape = port.get_partial_shape()
    if pshape.rank.is_dynamic:
        shape = None
    else:
        shape = tuple(None if d.is_dynamic else d.get_length() for d in pshape)
    try:
        dtype = np.dtype(port.get_element_type().to_dtype())
    except (RuntimeError, TypeError):
        dtype = None
    return TensorSpec(_port_name(port, index, "input"), shape, dtype)


class OpenVINOBackend(Backend):
    """Requests are infer requests of one compiled model."""

    name = "openvino"

    def __init__(self, model: Any, source: str, config: OpenVINOConfig, concurrent_num: int):
        self.config = config
        self.properties = config.properties(concurrent_num)
        self.compiled = core().compile_model(model, config.device, self.properties)
        super().__init__(
            source,
            [_spec(p, i) for i, p in enumerate(self.compiled.inputs)],
            [_port_name(p, i, "output") for i, p in enumerate(self.compiled.outputs)],
        )

    def new_request(self):
        request = self.compiled.create_infer_request()
        outputs = list(self.compiled.outputs)

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            result = request.infer(list(arrays))
            return [result[o] for o in outputs]

        return run

    def close(self) -> None:
        self.compiled = None


def read(xml: str, bin: str | None = None):
    """Read an OpenVINO IR (``.xml`` + ``.bin``) or any file OpenVINO can read into an ``ov.Model``.

    Raises:
        ModelLoadError: a file is missing or unreadable; names the path and the format.
    """
    xml = os.fspath(xml)
    for path in (xml, bin):
        if path is not None and not os.path.isfile(path):
            raise ModelLoadError(f"Model file not found: {os.fspath(path)!r} (format tried: {FORMAT}). Check the path.")
    if bin is None and xml.endswith(".xml"):
        implied = xml[: -len(".xml")] + ".bin"
        if not os.path.isfile(implied):
            raise ModelLoadError(
                f"Weights file not found: {implied!r} for {xml!r} (format tried: {FORMAT}). "
                f"Pass bin=... if the weights live elsewhere."
            )
    try:
        return core().read_model(xml, os.fspath(bin) if bin is not None else None)
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
        raise ModelLoadError(
            f"Could not load {xml!r} as {FORMAT}: {short(exc)}. "
            f"Check that the .xml and its .bin are complete and from the same export."
        ) from exc


def set_batch(model: Any, batch_size: int):
    """Fix the first (batch) dimension of every input of an ``ov.Model`` to ``batch_size``, as
    Analytics Zoo's ``load_openvino(..., batch_size)`` did; returns the model."""
    import openvino as ov

    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_dynamic or shape.rank.get_length() == 0:
            raise ModelLoadError(f"Cannot set batch_size={batch_size}: input {port.any_name!r} has no batch dimension "
                                 f"(shape {shape}). Load it with batch_size=0 to keep the model's shapes.")
        dims = list(shape)
        dims[0] = ov.Dimension(batch_size)
        shapes[port] = ov.PartialShape(dims)
    model.reshape(shapes)
    return model


def compile(model: Any, config: OpenVINOConfig, concurrent_num: int, source: str) -> OpenVINOBackend:
    """Compile an ``ov.Model`` with ``config`` for ``concurrent_num`` parallel requests."""
    return OpenVINOBackend(model, source, config, concurrent_num)
