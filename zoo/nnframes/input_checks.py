"""Checks of a fit's input on the driver, before any training job starts.

One aggregate pass over the DataFrame (row count, null labels, label range, array lengths) and
a forward pass of the model on a few rows catch bad input early, with messages naming the
column, what it holds and what was expected.
"""

from __future__ import annotations

import cloudpickle
import numpy as np
from pyspark.sql import functions as F

from zoo.engine.arrow_data import read_columns
from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes.columns import SCALAR, VECTOR


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


def data_summary(df, label_col: str | None, label_kind: str | None, array_columns: dict[str, str]) -> dict:
    """One pass over `df`: rows, null labels, label min/max and non-integer labels, and the
    min/max element count of each array/vector column."""
    aggregates = [F.count(F.lit(1)).alias("rows")]
    if label_col is not None:
        label = F.col(label_col)
        aggregates.append(F.sum(F.when(label.isNull(), 1).otherwise(0)).alias("null_labels"))
        if label_kind == SCALAR:
            aggregates += [F.min(label).alias("label_min"), F.max(label).alias("label_max"),
                           F.sum(F.when(label != F.floor(label), 1).otherwise(0)).alias("fractional_labels")]
    for i, (name, kind) in enumerate(array_columns.items()):
        values = F.col(name)
        if kind == VECTOR:
            from pyspark.ml.functions import vector_to_array

            values = vector_to_array(values)
        aggregates += [F.min(F.size(values)).alias(f"min_len_{i}"), F.max(F.size(values)).alias(f"max_len_{i}"),
                       F.sum(F.when(values.isNull(), 1).otherwise(0)).alias(f"nulls_{i}")]
    return df.agg(*aggregates).first().asDict()


def check_summary(summary: dict, label_col: str | None, array_columns: dict[str, int | None]) -> None:
    """Raise on an empty DataFrame, null labels, or arrays of the wrong length."""
    if summary["rows"] == 0:
        raise ZooValueError("The training DataFrame is empty. Expected at least one row.")
    if label_col is not None and summary.get("null_labels"):
        raise ZooValueError(
            f"The label column `{label_col}` has {summary['null_labels']} null value(s). "
            f"Drop them (df.dropna(subset=['{label_col}'])) or fill them before fitting."
        )
    for i, (name, expected) in enumerate(array_columns.items()):
        if summary.get(f"nulls_{i}"):
            raise ZooValueError(f"The feature column `{name}` has {summary[f'nulls_{i}']} null value(s); "
                                f"drop or fill them before fitting.")
        low, high = summary[f"min_len_{i}"], summary[f"max_len_{i}"]
        if expected is not None and (low != expected or high != expected):
            raise ZooValueError(
                f"The feature column `{name}` holds arrays of {low}..{high} elements, but its preprocessing "
                f"declares a shape of {expected} elements. Fix the declared shape or the data."
            )


def dry_run(df, columns: list[str], num_features: int, build_samples, adapter, model, criterion,
            check_output=None):
    """Run the model (and the criterion, when there are labels) on a few rows on the driver.

    `check_output(output)` runs between the two, so label checks that need the model's output
    width come before the criterion's own, less helpful, complaint. Returns the model's output
    as numpy. Raises ZooValueError with the shapes involved when the model or criterion fails.
    """
    batch = df.select(*columns).limit(4).toArrow()
    arrays = read_columns(batch.to_batches(), columns)
    labels = arrays[columns[num_features]] if len(columns) > num_features else None
    inputs, target = build_samples([arrays[c] for c in columns[:num_features]], labels)
    shapes = ", ".join(f"`{c}` -> {list(x.shape[1:])}" for c, x in zip(columns, inputs))
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


