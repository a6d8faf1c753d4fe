"""A Zoo model's signature in Flink SQL types, read from the model file on the client.

Inputs: an input of rank 1 (``float32[?]``) is one scalar column; an input of higher rank
(``float32[?, 4]``, ``float32[?, 3, 8, 8]``) is one ARRAY column holding a sample flattened in
row-major order. Float inputs are declared DOUBLE, integer inputs BIGINT: Flink widens FLOAT,
INT, SMALLINT (and arrays of them) to those implicitly, and the function casts back to the
model's dtype, so the columns a user has usually fit as they are; anything else (a string, an
array given for a scalar input) is refused when the query is planned, before the job runs.

Outputs are found by running the model once on a zero sample: an output of one value per sample
is a scalar column, a larger one an ARRAY column (flattened), in the output's own element type;
several outputs make a ROW with one field per output.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from zoo.flink.errors import ModelPathError, ModelSignatureError

#: numpy kind -> (SQL type name of an input, of an output) by item size.
_FLOAT_SQL = {4: "FLOAT", 8: "DOUBLE"}
_INT_SQL = {1: "TINYINT", 2: "SMALLINT", 4: "INT", 8: "BIGINT"}


@dataclass(frozen=True)
class Column:
    """One input or output of a model as a Flink column.

    Attributes:
        name: the model's tensor name, made a valid SQL identifier.
        dtype: the model's numpy dtype.
        shape: the per-sample shape (without the batch dimension); () for a scalar.
        sql: the Flink SQL type, e.g. ``ARRAY<DOUBLE>``.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    sql: str

    @property
    def is_array(self) -> bool:
        """Whether a sample travels as an ARRAY column (flattened)."""
        return self.sql.startswith("ARRAY")

    @property
    def size(self) -> int:
        """Values per sample."""
        return int(np.prod(self.shape)) if self.shape else 1


def sql_identifier(name: str, index: int, prefix: str) -> str:
    """`name` made a plain SQL identifier (letters, digits, _), or ``prefix<index>`` if nothing is left."""
    cleaned = re.sub(r"\W", "_", name).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"{prefix}{index}"


def _element_sql(dtype: np.dtype, for_input: bool) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return "DOUBLE" if for_input else _FLOAT_SQL.get(dtype.itemsize, "DOUBLE")
    if dtype.kind in "iu":
        return "BIGINT" if for_input else _INT_SQL.get(dtype.itemsize, "BIGINT")
    if dtype.kind == "b":
        return "BOOLEAN"
    raise ModelSignatureError(f"Zoo's Flink functions carry numeric and boolean tensors; this model has a {dtype} tensor.")


def _column(name: str, index: int, prefix: str, dtype, shape: tuple[int, ...], for_input: bool) -> Column:
    element = _element_sql(dtype, for_input)
    sql = element if shape in ((), (1,)) and not for_input else (element if not shape else f"ARRAY<{element}>")
    return Column(sql_identifier(name, index, prefix), np.dtype(dtype), tuple(shape), sql)


@dataclass(frozen=True)
class ModelSignature:
    """The inputs and outputs of a model as Flink columns."""

    inputs: tuple[Column, ...]
    outputs: tuple[Column, ...]

    def describe(self) -> str:
        """``(x ARRAY<DOUBLE> for float32[?, 4]) -> (output_0 ARRAY<FLOAT>)``."""
        ins = ", ".join(f"{c.name} {c.sql} for {c.dtype.name}[?{''.join(f', {d}' for d in c.shape)}]"
                        for c in self.inputs)
        outs = ", ".join(f"{c.name} {c.sql}" for c in self.outputs)
        return f"({ins}) -> ({outs})"

    @property
    def result_sql(self) -> str:
        """The SQL type a function returns: the one output's type, or a ROW of all of them."""
        if len(self.outputs) == 1:
            return self.outputs[0].sql
        return "ROW<" + ", ".join(f"`{c.name}` {c.sql}" for c in self.outputs) + ">"

    def check_columns(self, columns: dict[str, str]) -> None:
        """Check named columns (name -> Flink SQL type as the table's schema prints it) against the
        inputs, in order. Raises `ModelSignatureError` naming the model's inputs and the fix."""
        names = list(columns)
        if len(names) != len(self.inputs):
            raise ModelSignatureError(
                f"The model takes {len(self.inputs)} input(s) {self.describe()}; received {len(names)} "
                f"column(s) {names}. Pass one column per model input, in order (combine scalar columns "
                f"into one with ARRAY[c1, c2, ...])."
            )
        for (name, sql), spec in zip(columns.items(), self.inputs):
            received = sql.upper().replace(" NOT NULL", "")
            if not accepts(spec, received):
                raise ModelSignatureError(
                    f"Column {name!r} has type {sql}, but model input {spec.name!r} ({spec.dtype.name}, "
                    f"{spec.size} value(s) per sample) takes {spec.sql} (or a narrower numeric type). "
                    f"Model signature: {self.describe()}. CAST the column, or build it with ARRAY[...]."
                )


_NUMERIC = ("TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL")


def accepts(spec: Column, received: str) -> bool:
    """Whether a column of Flink type `received` can feed input `spec` (implicit widening only)."""
    def element_ok(element: str) -> bool:
        element = element.strip()
        if spec.sql.endswith("BOOLEAN") or spec.sql.endswith("BOOLEAN>"):
            return element.startswith("BOOLEAN")
        allowed = _NUMERIC if "DOUBLE" in spec.sql else _NUMERIC[:4]
        return element.startswith(allowed)

    if spec.is_array:
        return received.startswith("ARRAY<") and element_ok(received[len("ARRAY<"):-1])
    return not received.startswith(("ARRAY", "ROW", "MAP")) and element_ok(received)


def absolute_model_path(path) -> str:
    """`path` as the workers must see it: absolute (their working folder is not the client's)."""
    text = os.fspath(path)
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


def load_for_signature(path: str, load_options: dict):
    """Load the model on the client, to read its signature; a path that cannot be read is a
    `ModelPathError` that says the workers will need it too."""
    from zoo.inference import InferenceModel
    from zoo.inference.errors import ModelLoadError

    try:
        return InferenceModel().load(path, **load_options)
    except ModelLoadError as exc:
        raise ModelPathError(
            f"Cannot read the model {path!r}: {exc} Flink's workers load the model from this path on "
            f"every TaskManager: give a path that exists there (a shared file system, or the same path "
            f"on each node) and that InferenceModel.load reads."
        ) from exc


def read_signature(model, example_sizes: dict[str, tuple[int, ...]] | None = None) -> ModelSignature:
    """The Flink signature of a loaded `InferenceModel`; outputs from one run on a zero sample.

    Args:
        model: a loaded `zoo.inference.InferenceModel`.
        example_sizes: per-sample shape of inputs whose non-batch dimensions the model leaves
            dynamic, by input name.
    """
    specs = model.inputs
    if specs is None:
        raise ModelSignatureError(
            f"The model {model!r} declares no input signature, so Flink cannot type its columns. "
            f"Export it with zoo.inference.export (ONNX or OpenVINO), which records one."
        )
    example_sizes = example_sizes or {}
    inputs, zeros = [], []
    for i, spec in enumerate(specs):
        if spec.shape is None or len(spec.shape) == 0:
            raise ModelSignatureError(f"Model input {spec.name!r} has no batch dimension ({spec.describe()}).")
        shape = tuple(example_sizes.get(spec.name, spec.shape[1:]))
        if any(d is None for d in shape):
            raise ModelSignatureError(
                f"Model input {spec.describe()} has dynamic dimensions besides the batch. Pass "
                f"input_shapes={{{spec.name!r}: (...)}} with the per-sample shape."
            )
        dtype = spec.dtype if spec.dtype is not None else np.dtype(np.float32)
        inputs.append(_column(spec.name, i, "input_", dtype, shape, for_input=True))
        zeros.append(np.zeros((1, *shape), dtype))
    outputs = model.predict(zeros)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    names = model.output_names or [f"output_{i}" for i in range(len(outputs))]
    columns = [_column(name, i, "output_", out.dtype, tuple(out.shape[1:]), for_input=False)
               for i, (name, out) in enumerate(zip(names, outputs))]
    return ModelSignature(tuple(inputs), tuple(columns))
