"""Checks of a fit's input on the driver, before any training job starts.

One aggregation (`summary_and_sample`) both summarises the DataFrame (row count, null labels,
label range, array lengths, NaN and infinite values) and keeps its first rows; a forward pass
of the model on those rows and a look at its trainable parameters catch bad input early, with
messages naming the column, what it holds and what was expected. `pickled` serializes what the
workers need once, and names the object that cannot be pickled.
"""

from __future__ import annotations

import cloudpickle
import numpy as np
import pyarrow as pa
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType

from zoo.engine.arrow_data import ColumnLayout, read_columns
from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes.columns import ARRAY, SCALAR, VECTOR
from zoo.nnframes.preprocessing import ChainedPreprocessing, SeqToTensor

_INF = float("inf")
#: Rows of the DataFrame the dry run feeds the model (more than one: BatchNorm needs a batch).
DRY_RUN_ROWS = 4
_SAMPLE_COLUMN, _ORDER_COLUMN = "__zoo_first_rows", "__zoo_row_order"


def check_picklable(**objects) -> None:
    """Raise naming the first object cloudpickle cannot serialize."""
    for name, obj in objects.items():
        try:
            cloudpickle.dumps(obj)
        except Exception as exc:
            raise ZooTypeError(
                f"Could not pickle `{name}` ({type(obj).__name__}) to send it to the executors: "
                f"{type(exc).__name__}: {exc}. Keep it free of open files, locks, sockets and "
                f"SparkSession references, or define it at module level."
            ) from exc


def pickled(payload, **parts) -> bytes:
    """`payload` serialized with cloudpickle, once. When that fails, raise as `check_picklable`
    does, naming the first of `parts` (name -> object inside `payload`) that cannot be pickled."""
    try:
        return cloudpickle.dumps(payload)
    except Exception as exc:
        check_picklable(**parts)
        raise ZooTypeError(
            f"Could not pickle the fit's payload to send it to the executors: {', '.join(f'`{n}`' for n in parts)} "
            f"pickle on their own, so the rest of the training configuration (a trigger, a validation method) does "
            f"not: {type(exc).__name__}: {exc}. Keep it free of open files, locks, sockets and SparkSession "
            f"references, or define it at module level."
        ) from exc


def _innermost_type(data_type):
    while isinstance(data_type, ArrayType):
        data_type = data_type.elementType
    return data_type


def _non_finite_rows(df, name: str, kind: str):
    """Aggregate: rows of column `name` holding NaN or +-Inf (None where its type cannot hold them).

    For arrays, Spark orders NaN above every number, so array_max is NaN or +Inf exactly when the
    row holds one of them, and array_min is -Inf when the row holds -Inf: no per-element lambda.
    """
    column = F.col(name)
    if kind == VECTOR:
        from pyspark.ml.functions import vector_to_array

        column = vector_to_array(column)
    elif not isinstance(_innermost_type(df.schema[name].dataType), (FloatType, DoubleType)):
        return None
    if kind == SCALAR:
        bad = F.isnan(column) | (F.abs(column) == F.lit(_INF))
    else:
        data_type = df.schema[name].dataType if kind != VECTOR else ArrayType(DoubleType())
        while isinstance(data_type.elementType, ArrayType):
            column, data_type = F.flatten(column), data_type.elementType
        high, low = F.array_max(column), F.array_min(column)
        bad = F.isnan(high) | (high == F.lit(_INF)) | (low == F.lit(-_INF))
    return F.sum(F.when(bad, 1).otherwise(0))


def summary_aggregates(df, label_col: str | None, label_kind: str | None, feature_kinds: dict[str, str]) -> list:
    """The aggregates of the data summary of `df`: rows, null labels, label min/max, non-integer and
    NaN/Inf labels, and per feature column (its position `i` in `feature_kinds`) nulls ``nulls_i``,
    rows with NaN/Inf ``non_finite_i``, and for array/vector columns the min/max element count
    ``min_len_i``/``max_len_i``."""
    aggregates = [F.count(F.lit(1)).alias("rows")]
    if label_col is not None:
        label = F.col(label_col)
        aggregates.append(F.sum(F.when(label.isNull(), 1).otherwise(0)).alias("null_labels"))
        if label_kind == SCALAR:
            aggregates += [F.min(label).alias("label_min"), F.max(label).alias("label_max"),
                           # Not label != floor(label): floor returns a long, which overflows (an error
                           # under ANSI mode) for NaN, Inf and huge values.
                           F.sum(F.when(label.cast("double") % 1 != 0, 1).otherwise(0)).alias("fractional_labels")]
        if label_kind in (SCALAR, ARRAY, VECTOR):
            non_finite = _non_finite_rows(df, label_col, label_kind)
            if non_finite is not None:
                aggregates.append(non_finite.alias("non_finite_labels"))
    for i, (name, kind) in enumerate(feature_kinds.items()):
        if kind not in (SCALAR, ARRAY, VECTOR):
            continue
        values = F.col(name)
        if kind == VECTOR:
            from pyspark.ml.functions import vector_to_array

            values = vector_to_array(values)
        aggregates.append(F.sum(F.when(values.isNull(), 1).otherwise(0)).alias(f"nulls_{i}"))
        if kind != SCALAR:
            aggregates += [F.min(F.size(values)).alias(f"min_len_{i}"), F.max(F.size(values)).alias(f"max_len_{i}")]
        non_finite = _non_finite_rows(df, name, kind)
        if non_finite is not None:
            aggregates.append(non_finite.alias(f"non_finite_{i}"))
    return aggregates


def summary_and_sample(df, label_col: str | None, label_kind: str | None, feature_kinds: dict[str, str],
                       inputs: list, rows: int = DRY_RUN_ROWS) -> tuple[dict, pa.RecordBatch]:
    """One aggregation over `df`: its data summary (`summary_aggregates`, as a dict) and its first
    `rows` rows of the model-input columns `inputs` (Column expressions, each named after its
    column), as Arrow, for the dry run (read after `check_summary`, which explains nulls better);
    None for an empty `df`."""
    # Row order as an aggregate may not compute it (a non-deterministic expression) but may read it.
    ordered = df.withColumn(_ORDER_COLUMN, F.monotonically_increasing_id())
    first_rows = F.min_by(F.struct(*inputs), F.col(_ORDER_COLUMN), rows).alias(_SAMPLE_COLUMN)
    table = ordered.agg(*summary_aggregates(df, label_col, label_kind, feature_kinds), first_rows).toArrow()
    summary = table.drop_columns([_SAMPLE_COLUMN]).to_pylist()[0]
    if not summary["rows"]:  # no first rows to read (the array is null)
        return summary, None
    sample = pa.RecordBatch.from_struct_array(table.column(_SAMPLE_COLUMN).combine_chunks().flatten())
    return summary, sample


def _needs_equal_lengths(step) -> bool:
    """Whether `step` stacks an array column's rows into one tensor (a callable may pad them)."""
    while isinstance(step, ChainedPreprocessing):
        step = step.steps[0]
    return isinstance(step, SeqToTensor)


def check_summary(summary: dict, label_col: str | None, feature_steps: dict[str, object],
                  feature_kinds: dict[str, str]) -> None:
    """Raise on an empty DataFrame, null or NaN/Inf labels, null or NaN/Inf features, and array
    columns whose rows differ in length or do not have the length the preprocessing declares.

    Args:
        summary: the summary `summary_and_sample(df, label_col, _, feature_kinds, _)` returned.
        feature_steps: each feature column's Preprocessing.
        feature_kinds: each feature column's kind, in the order given to `summary_and_sample`.
    """
    if summary["rows"] == 0:
        raise ZooValueError("The training DataFrame is empty. Expected at least one row.")
    if label_col is not None and summary.get("null_labels"):
        raise ZooValueError(
            f"The label column `{label_col}` has {summary['null_labels']} null value(s). "
            f"Drop them (df.dropna(subset=['{label_col}'])) or fill them before fitting."
        )
    if label_col is not None and summary.get("non_finite_labels"):
        raise ZooValueError(
            f"The label column `{label_col}` has NaN or infinite values in {summary['non_finite_labels']} of "
            f"{summary['rows']} rows; the loss would be NaN. Drop those rows (e.g. "
            f"df.filter(~F.isnan('{label_col}'))) or replace the values before fitting."
        )
    for i, (name, kind) in enumerate(feature_kinds.items()):
        if summary.get(f"nulls_{i}"):
            raise ZooValueError(f"The feature column `{name}` has {summary[f'nulls_{i}']} null value(s); "
                                f"drop or fill them before fitting.")
        if summary.get(f"non_finite_{i}"):
            raise ZooValueError(
                f"The feature column `{name}` has NaN or infinite values in {summary[f'non_finite_{i}']} of "
                f"{summary['rows']} rows; training on them makes every weight NaN. Drop those rows or replace "
                f"the values (impute, clip) before fitting."
            )
        if kind not in (ARRAY, VECTOR):
            continue
        low, high = summary[f"min_len_{i}"], summary[f"max_len_{i}"]
        step = feature_steps[name]
        expected = step.expected_length()
        if expected is not None and (low != expected or high != expected):
            raise ZooValueError(
                f"The feature column `{name}` holds arrays of {low}..{high} elements, but its preprocessing "
                f"declares a shape of {expected} elements. Fix the declared shape or the data."
            )
        if low != high and _needs_equal_lengths(step):
            raise ZooValueError(
                f"The feature column `{name}` holds arrays of different lengths: from {low} to {high} elements "
                f"per row. Expected every row to have the same length, as {type(step).__name__} stacks them "
                f"into one tensor. Pad or cut the rows to one length (or filter on F.size('{name}')), or give a "
                f"feature_preprocessing callable that does."
            )


def dry_run(sample: pa.RecordBatch, layout: ColumnLayout, build_samples, adapter, model, criterion,
            check_output=None):
    """Run the model (and the criterion, when there are labels) on a few rows on the driver.

    `sample` holds the rows (from `summary_and_sample`).
    `check_output(output)` runs between the two, so label checks that need the model's output
    width come before the criterion's own, less helpful, complaint. Returns the model's output
    as numpy. Raises ZooValueError with the shapes involved when the model or criterion fails.
    """
    inputs, target = layout.samples(read_columns([sample], layout.names).__getitem__, build_samples)
    shapes = ", ".join(f"`{c}` -> {list(x.shape[1:])}" for c, x in zip(layout.features, inputs))
    target_shape = list(target.shape[1:]) if target is not None else None
    try:
        output = adapter.dry_run(model, None, inputs, None)
    except Exception as exc:
        raise ZooValueError(
            f"The model failed on the DataFrame's first rows. Inputs per sample: {shapes}. Check that the "
            f"columns match the model's inputs (and featuresCol order for multi-input models). "
            f"Error: {type(exc).__name__}: {exc}"
        ) from exc
    if check_output is not None:
        check_output(output)
    if target is not None:
        try:
            adapter.dry_run(model, criterion, inputs, target)
        except Exception as exc:
            raise ZooValueError(
                f"The criterion failed on the model's output for the DataFrame's first rows. Output per "
                f"sample: {list(output.shape[1:])}; target per sample: {target_shape}. Check the label "
                f"column and label_preprocessing. Error: {type(exc).__name__}: {exc}"
            ) from exc
    return np.asarray(output)


def check_trainable(adapter, model) -> None:
    """Raise when `model` has no trainable parameter: there would be nothing to train."""
    count = adapter.trainable_count(model)
    if count == 0:
        raise ZooValueError(
            f"The model ({type(model).__name__}) has no trainable parameters, so a fit has nothing to train. "
            f"Expected at least one parameter that requires a gradient (torch: requires_grad=True; Keras: "
            f"layer.trainable=True). Unfreeze the layers to train, or use the model for inference as it is "
            f"(NNModel(model=...))."
        )


def check_class_labels(summary: dict, label_col: str, num_outputs: int, base: int) -> None:
    """Class labels must be whole numbers within the model's output range."""
    if summary.get("fractional_labels"):
        raise ZooValueError(f"The label column `{label_col}` holds non-integer values; expected class indices.")
    classes = 2 if num_outputs == 1 else num_outputs
    low, high = summary["label_min"], summary["label_max"]
    if low < base or high > base + classes - 1:
        raise ZooValueError(
            f"Labels in `{label_col}` range over [{low}, {high}], but the model has {num_outputs} output(s), "
            f"so {base}-based class labels must lie in [{base}, {base + classes - 1}]. "
            + ("Set zeroBasedLabel=False for 1-based labels." if base == 0 and low >= 1 and high <= classes
               else "Check the model's output size or the labels.")
        )


