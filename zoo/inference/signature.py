"""Input signatures: what a model expects, and turning user data into the arrays it accepts.

A signature is a list of :class:`TensorSpec`, one per model input. ``predict`` accepts one
ndarray (single-input models), a list/tuple of ndarrays in input order, or a dict keyed by input
name. Arrays are converted to the expected dtype by `zoo.dtypes.lossless_cast`: only when no value
changes (int64 -> float32 up to 2**24, float16 -> float32, whole floats -> int), floats rounded to
a narrower float (float64 -> float32); anything that would change a value is an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from zoo.dtypes import lossless_cast
from zoo.inference.errors import InferenceInputError


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output.

    Attributes:
        name: the tensor's name in the model.
        shape: one entry per dimension, None where the dimension is dynamic (the batch); None
            when even the rank is unknown.
        dtype: the numpy dtype, or None when the model does not declare it.
    """

    name: str
    shape: tuple[int | None, ...] | None = None
    dtype: np.dtype | None = None

    def describe(self) -> str:
        """``name: float32[?, 4]``; ``?`` marks a dynamic dimension, ``...`` an unknown shape."""
        dtype = "any" if self.dtype is None else np.dtype(self.dtype).name
        if self.shape is None:
            dims = "..."
        else:
            dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {dtype}[{dims}]"


def format_signature(specs: Sequence[TensorSpec]) -> str:
    """The signature as one line: ``(x: float32[?, 4], y: int64[?])``."""
    return "(" + ", ".join(spec.describe() for spec in specs) + ")"


def specs_from_examples(arrays: Sequence[np.ndarray], names: Sequence[str]) -> list[TensorSpec]:
    """Specs taken from example arrays: same dtypes and shapes, with a dynamic batch dimension."""
    return [
        TensorSpec(name, (None,) + tuple(int(d) for d in a.shape[1:]), np.dtype(a.dtype))
        for a, name in zip(arrays, names)
    ]


def as_array_list(example_input: Any, what: str = "example_input") -> list[np.ndarray]:
    """``example_input`` (an ndarray or a list/tuple of them, batch first) as a list of ndarrays."""
    items = list(example_input) if isinstance(example_input, (list, tuple)) else [example_input]
    if not items:
        raise InferenceInputError(f"Expected `{what}` to hold at least one array. Received an empty {type(example_input).__name__}.")
    arrays = []
    for i, item in enumerate(items):
        if hasattr(item, "detach") and hasattr(item, "numpy"):
            item = item.detach().cpu().numpy()
        array = np.asarray(item)
        if array.ndim == 0:
            raise InferenceInputError(
                f"Expected `{what}` item {i} to have a batch dimension first. Received a scalar; "
                f"use array.reshape(1) or pass a batch of samples."
            )
        arrays.append(array)
    return arrays


def _received(arrays: Sequence[Any]) -> str:
    parts = []
    for a in arrays:
        if isinstance(a, np.ndarray):
            parts.append(f"{a.dtype.name}{list(a.shape)}")
        else:
            parts.append(type(a).__name__)
    return "(" + ", ".join(parts) + ")"


def _order_inputs(data: Any, specs: Sequence[TensorSpec], signature: str) -> list[Any]:
    """Put ``data`` (ndarray, sequence or dict) in input order."""
    if isinstance(data, dict):
        names = [s.name for s in specs]
        missing = [n for n in names if n not in data]
        extra = [k for k in data if k not in names]
        if missing or extra:
            raise InferenceInputError(
                f"Input names do not match the model. Expected signature {signature}; received keys "
                f"{sorted(map(str, data))} (missing {missing}, unexpected {extra}). Pass a dict keyed "
                f"by the input names above, or a list in that order."
            )
        return [data[n] for n in names]
    if isinstance(data, (list, tuple)):
        items = list(data)
    else:
        items = [data]
    if len(items) != len(specs):
        raise InferenceInputError(
            f"Expected {len(specs)} input array(s) with signature {signature}. Received "
            f"{len(items)}: {_received([np.asarray(x) if not isinstance(x, np.ndarray) else x for x in items])}. "
            f"Pass one array per input, in order, or a dict keyed by input name."
        )
    return items


def prepare_inputs(data: Any, specs: Sequence[TensorSpec] | None) -> list[np.ndarray]:
    """Validate ``data`` against ``specs`` and return contiguous arrays of the expected dtypes.

    With ``specs`` None (a model that declares no signature) any ndarray or list of ndarrays is
    passed through unchanged.

    Raises:
        InferenceInputError: wrong number of inputs, names, rank, a fixed dimension, or a dtype
            conversion that would change a value; the message names the expected signature.
    """
    if specs is None:
        items = list(data) if isinstance(data, (list, tuple)) else ([data] if not isinstance(data, dict) else list(data.values()))
        return [np.ascontiguousarray(np.asarray(x)) for x in items]
    signature = format_signature(specs)
    items = _order_inputs(data, specs, signature)
    arrays = []
    for i, (item, spec) in enumerate(zip(items, specs)):
        if hasattr(item, "detach") and hasattr(item, "numpy"):
            item = item.detach().cpu().numpy()
        array = item if isinstance(item, np.ndarray) else np.asarray(item)
        if array.dtype == object:
            raise InferenceInputError(
                f"Input {spec.name!r} could not be read as a numeric array (ragged or mixed values). "
                f"Expected signature {signature}; received {_received([array])}."
            )
        if spec.shape is not None:
            if array.ndim != len(spec.shape):
                hint = ""
                if array.ndim == len(spec.shape) - 1:
                    hint = " If this is one sample, add the batch dimension: array[None, ...] or array.reshape(1, *array.shape)."
                raise InferenceInputError(
                    f"Input {spec.name!r} has rank {array.ndim}; expected rank {len(spec.shape)}. "
                    f"Expected signature {signature}; received {_received([array])}.{hint}"
                )
            for axis, (want, got) in enumerate(zip(spec.shape, array.shape)):
                if want is not None and want != got:
                    raise InferenceInputError(
                        f"Input {spec.name!r} has size {got} on axis {axis}; expected {want}. "
                        f"Expected signature {signature}; received {_received([array])}."
                    )
        if spec.dtype is not None and array.dtype != spec.dtype:
            converted, problem = lossless_cast(array, spec.dtype)
            if problem is not None:
                target = np.dtype(spec.dtype).name
                raise InferenceInputError(
                    f"Input {spec.name!r} has dtype {array.dtype.name} and the model takes {target}, but "
                    f"{problem}. Expected signature {signature}; received {_received([array])}. Send {target} "
                    f"values, or convert them yourself (array.astype({target!r})) if that change is intended."
                )
            array = converted
        arrays.append(np.ascontiguousarray(array))
    return arrays
