"""The interface every backend implements: a loaded model that hands out requests."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from zoo.inference.errors import UnsupportedModelError
from zoo.inference.signature import TensorSpec

#: A request runs one batch: input arrays in signature order -> output arrays in model order.
Request = Callable[[Sequence[np.ndarray]], list[np.ndarray]]


class Backend:
    """A model loaded into one runtime.

    Attributes:
        name: the runtime (``"torch"``, ``"onnxruntime"``, ``"openvino"``, ``"keras"``).
        source: where the model came from, for messages (a path, or a description).
        inputs: the input signature, or None when the model declares none.
        output_names: one name per output.
    """

    name = "base"

    def __init__(self, source: str, inputs: list[TensorSpec] | None, output_names: list[str]):
        self.source = source
        self.inputs = inputs
        self.output_names = output_names

    def new_request(self) -> Request:
        """A request that one thread at a time may run."""
        raise UnsupportedModelError(f"{type(self).__name__} does not implement new_request; use a concrete backend.")

    def close(self) -> None:
        """Free what the runtime holds. Requests made before must not be used after this."""


def output_name(index: int) -> str:
    """The name given to an output the model leaves unnamed."""
    return f"output_{index}"
