"""Flink SQL and Table inference with a Zoo model: a vectorized (pandas) ScalarFunction.

    from zoo.flink import inference_function, table_environment

    t_env = table_environment()
    t_env.create_temporary_function("classify", inference_function("/models/mlp.onnx"))
    t_env.sql_query("SELECT id, classify(features) AS scores FROM events")

Each Flink task loads the model once (`open`) into an `InferenceModel` and predicts one Arrow
batch at a time (`python.fn-execution.arrow.batch.size` rows, split further into `batch_size`
chunks when given). The client loads the model once too, to type the function from the model's
signature (`zoo.flink.signature`), so a column that does not fit is refused when the query is
planned, not when the job runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.flink import runtime
from zoo.flink.signature import ModelSignature, absolute_model_path, load_for_signature, read_signature


def _to_batch(series, column) -> np.ndarray:
    """One pandas column of an Arrow batch as the model's batch array."""
    if column.is_array:
        values = series.to_numpy()
        flat = np.stack(values) if len(values) else np.zeros((0, column.size))
        return flat.reshape((len(values), *column.shape)).astype(column.dtype, copy=False)
    return series.to_numpy().astype(column.dtype, copy=False)


def _to_series(array: np.ndarray, column):
    """One model output as a pandas column of the function's result type."""
    import pandas as pd

    rows = np.asarray(array).reshape(len(array), -1)
    if not column.is_array:
        return pd.Series(rows[:, 0])
    return pd.Series(list(rows))


class ModelFunction:
    """The body of the vectorized function; built by `inference_function`, run by Flink's workers.

    Args:
        path: the model, as `InferenceModel.load` reads it (absolute, as every worker sees it).
        signature: the model's Flink signature.
        batch_size: rows per predict call at most (None: the whole Arrow batch).
        concurrent_num, load_options: given to `InferenceModel` and its `load`.
    """

    def __init__(self, path: str, signature: ModelSignature, batch_size: int | None, concurrent_num: int,
                 load_options: dict):
        self.path = path
        self.signature = signature
        self.batch_size = batch_size
        self.concurrent_num = concurrent_num
        self.load_options = load_options
        self.model = None

    def open(self, function_context) -> None:
        """Load the model once per task."""
        from zoo.inference import InferenceModel

        self.model = InferenceModel(self.concurrent_num).load(self.path, **self.load_options)

    def eval(self, *columns):
        """Predict one Arrow batch: pandas Series in, a Series (one output) or DataFrame (ROW) out."""
        import pandas as pd

        inputs = [_to_batch(series, spec) for series, spec in zip(columns, self.signature.inputs)]
        rows = len(inputs[0])
        step = self.batch_size or max(rows, 1)
        parts = []
        for start in range(0, rows, step):
            out = self.model.predict([x[start:start + step] for x in inputs])
            parts.append(out if isinstance(out, list) else [out])
        outputs = [np.concatenate([p[i] for p in parts]) if parts else np.zeros((0,))
                   for i in range(len(self.signature.outputs))]
        series = [_to_series(o, spec) for o, spec in zip(outputs, self.signature.outputs)]
        if len(series) == 1:
            return series[0]
        return pd.DataFrame({spec.name: s for spec, s in zip(self.signature.outputs, series)})

    def close(self) -> None:
        """Free the model."""
        if self.model is not None:
            self.model.release()
            self.model = None


def _data_type(sql: str):
    """A pyflink DataType from a Flink SQL type string of `zoo.flink.signature`."""
    from pyflink.table import DataTypes

    sql = sql.strip()
    if sql.startswith("ARRAY<"):
        return DataTypes.ARRAY(_data_type(sql[len("ARRAY<"):-1]))
    if sql.startswith("ROW<"):
        fields = []
        for part in _split_fields(sql[len("ROW<"):-1]):
            name, kind = part.strip().split(" ", 1)
            fields.append(DataTypes.FIELD(name.strip("`"), _data_type(kind)))
        return DataTypes.ROW(fields)
    simple = {"DOUBLE": DataTypes.DOUBLE, "FLOAT": DataTypes.FLOAT, "BIGINT": DataTypes.BIGINT, "INT": DataTypes.INT,
              "SMALLINT": DataTypes.SMALLINT, "TINYINT": DataTypes.TINYINT, "BOOLEAN": DataTypes.BOOLEAN}
    return simple[sql]()


def _split_fields(text: str) -> list[str]:
    """Split ``a X, b ARRAY<Y>`` at the commas outside angle brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current] if current.strip() else parts


def sql_type(data_type) -> str:
    """The Flink SQL name of a pyflink DataType (``ARRAY<DOUBLE>``, ``BIGINT``, ...)."""
    element = getattr(data_type, "element_type", None)
    if element is not None:
        return f"ARRAY<{sql_type(element)}>"
    return type(data_type).__name__.removesuffix("Type").upper()


def model_signature(model: Any, input_shapes: dict | None = None, **load_options: Any) -> ModelSignature:
    """Load `model` (a path or URL `InferenceModel.load` reads) on the client and return its
    Flink signature (see `zoo.flink.signature`)."""
    path = absolute_model_path(model)
    loaded = load_for_signature(path, load_options)
    try:
        return read_signature(loaded, input_shapes)
    finally:
        loaded.release()


def inference_function(model: Any, *, batch_size: int | None = None, concurrent_num: int = 1,
                       input_shapes: dict | None = None, **load_options: Any):
    """A vectorized Flink ScalarFunction that runs `model` with `zoo.inference.InferenceModel`.

    Register it with ``t_env.create_temporary_function(name, fn)`` and call it from SQL, use it
    in the Table API (``table.select(fn(col("x")))``), or name it in
    ``CREATE TEMPORARY FUNCTION name AS 'module.attribute' LANGUAGE PYTHON`` when a module holds it.
    It takes one column per model input (a scalar for a rank-1 input, an ARRAY holding a
    flattened sample otherwise) and returns the model's output, or a ROW of its outputs.

    Args:
        model: a model path (or URL) of any kind `InferenceModel.load` reads; every TaskManager
            must be able to read it at that path.
        batch_size: rows per predict call at most; None predicts each Arrow batch whole.
        concurrent_num: requests in each task's `InferenceModel` pool.
        input_shapes: per-sample shapes of inputs whose dimensions the model leaves dynamic.
        **load_options: given to `InferenceModel.load` (e.g. ``intra_op_threads=1``).

    Raises:
        ModelPathError: the model cannot be read here.
        ModelSignatureError: the model's signature cannot be expressed in Flink types.
        FlinkSetupError: PyFlink is not installed in this Python.
    """
    return _build(model, batch_size, concurrent_num, input_shapes, load_options)[0]


def _build(model, batch_size, concurrent_num, input_shapes, load_options):
    """(the pyflink function, the model's signature)."""
    runtime.require_pyflink()
    from pyflink.table.udf import ScalarFunction, udf

    signature = model_signature(model, input_shapes, **load_options)
    body = ModelFunction(absolute_model_path(model), signature, batch_size, concurrent_num, load_options)

    class ZooModelFunction(ScalarFunction):
        """The pyflink face of `ModelFunction` (pyflink needs a ScalarFunction subclass)."""

        def open(self, function_context):
            body.open(function_context)

        def eval(self, *columns):
            return body.eval(*columns)

        def close(self):
            body.close()

    function = udf(ZooModelFunction(), input_types=[_data_type(c.sql) for c in signature.inputs],
                   result_type=_data_type(signature.result_sql), func_type="pandas")
    return function, signature


def predict(table, model: Any, columns: list[str], output: str = "prediction", *, batch_size: int | None = None,
            concurrent_num: int = 1, input_shapes: dict | None = None, **load_options: Any):
    """`table` with a column `output` holding `model`'s predictions for `columns` (Table API).

    The columns' types are checked against the model's signature here, before any job runs, with
    a `ModelSignatureError` that names the model's inputs and the fix. The other arguments are
    those of `inference_function`.
    """
    from pyflink.table.expressions import col

    from zoo.flink.errors import ModelSignatureError

    schema = table.get_schema()
    names = schema.get_field_names()
    missing = [c for c in columns if c not in names]
    if missing:
        raise ModelSignatureError(f"Columns {missing} are not in the table. Its columns: {names}.")
    function, signature = _build(model, batch_size, concurrent_num, input_shapes, load_options)
    signature.check_columns({c: sql_type(schema.get_field_data_type(c)) for c in columns})
    return table.add_columns(function(*[col(c) for c in columns]).alias(output))
