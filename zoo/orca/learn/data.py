"""The data Orca Estimators take (Spark DataFrame, pandas DataFrame, numpy dict) as a FrameSource."""

from __future__ import annotations

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError
from zoo.tfpark.tf_dataset import FrameSource, frame_from_arrays


def _names(value, what: str) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) for n in names):
        raise ZooTypeError(f"Expected `{what}` to be a column name or a list of names. Received: {value!r}.")
    return names


def _active_spark(what: str):
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise ZooValueError(f"{what} needs a SparkSession. Call zoo.orca.init_orca_context() first.")
    return spark


def is_spark_frame(data) -> bool:
    """Whether `data` is a Spark DataFrame."""
    from pyspark.sql import DataFrame

    return isinstance(data, DataFrame)


def is_pandas_frame(data) -> bool:
    """Whether `data` is a pandas DataFrame."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with pyspark's Arrow support
        return False
    return isinstance(data, pd.DataFrame)


def _from_frame(df, feature_cols, label_cols, role: str, needs_label: bool) -> FrameSource:
    features, labels = _names(feature_cols, "feature_cols"), _names(label_cols, "label_cols")
    if not features:
        hint = " and its label: label_cols=['y']" if needs_label else ""
        raise ZooValueError(f"With a DataFrame as `{role}`, name its model inputs: feature_cols=['x', ...] "
                            f"(one column per model input){hint}.")
    if needs_label and not labels:
        raise ZooValueError(f"Training and evaluation need labels: give label_cols=['label'] for `{role}`.")
    if len(labels) > 1:
        raise ZooValueError(f"Expected one label column. Received label_cols={labels}. Put several targets in "
                            f"one array column (pyspark.sql.functions.array(...)).")
    missing = [c for c in features + labels if c not in df.columns]
    if missing:
        raise ZooValueError(f"`{role}` has no column(s) {missing}. Its columns are {df.columns}; fix "
                            f"feature_cols / label_cols.")
    return FrameSource(df, features, labels[0] if labels and needs_label else None)


def _from_dict(data: dict, role: str, needs_label: bool) -> FrameSource:
    if "x" not in data:
        raise ZooValueError(f"Expected `{role}` as a dict {{'x': features, 'y': labels}}. Received keys "
                            f"{sorted(data)}.")
    x = data["x"]
    features = [np.asarray(a) for a in x] if isinstance(x, (list, tuple)) else [np.asarray(x)]
    labels = data.get("y")
    if needs_label and labels is None:
        raise ZooValueError(f"Training and evaluation need labels: give `{role}` as {{'x': ..., 'y': labels}}.")
    _active_spark("numpy data")
    return frame_from_arrays(features, np.asarray(labels) if labels is not None and needs_label else None)


def _is_tf_dataset(data) -> bool:
    if not type(data).__module__.startswith("tensorflow"):
        return False  # TensorFlow is imported only for its own objects
    import tensorflow as tf

    return isinstance(data, tf.data.Dataset)


def _from_tf_dataset(dataset, needs_label: bool) -> FrameSource:
    """A tf.data.Dataset (batched, as Orca's data creators return it, or not) sharded across tasks."""
    from zoo.tfpark.tf_dataset import frame_from_tf_data

    if "Batch" in type(dataset).__name__:
        dataset = dataset.unbatch()
    source = frame_from_tf_data(dataset)
    if needs_label and source.label_col is None:
        raise ZooValueError("Training and evaluation need labels: make the tf.data.Dataset yield (features, label).")
    if not needs_label and source.label_col is not None:
        source = FrameSource(source.df, source.feature_cols, None, source.feature_steps)
    return source


def _is_data_loader(data) -> bool:
    try:
        from torch.utils.data import DataLoader
    except ImportError:
        return False
    return isinstance(data, DataLoader)


def collect_loader(loader) -> dict:
    """A torch DataLoader's batches, concatenated on the driver, as {"x": array(s), "y": array}.

    Orca handed a DataLoader to BigDL's driver-side FeatureSet; Zoo reads it once on the driver
    and ships the samples as a DataFrame, so it suits data that fits in the driver's memory.
    """
    xs, ys = [], []
    for batch in loader:
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise ZooValueError("Expected the DataLoader to yield (features, labels) batches, as Orca requires. "
                                f"Received a batch of type {type(batch).__name__}.")
        *features, labels = batch
        xs.append([np.asarray(f) for f in features])
        ys.append(np.asarray(labels))
    if not xs:
        raise ZooValueError("The DataLoader yielded no batches.")
    x = [np.concatenate([b[i] for b in xs]) for i in range(len(xs[0]))]
    return {"x": x if len(x) > 1 else x[0], "y": np.concatenate(ys)}


def to_source(data, feature_cols=None, label_cols=None, *, role: str = "data",
              needs_label: bool = True) -> FrameSource:
    """A FrameSource from a Spark DataFrame, a pandas DataFrame, a dict {"x": ..., "y": ...}, a
    torch DataLoader (see `collect_loader`) or a finite tf.data.Dataset (batched or not; each task
    runs a shard of it); a callable is a creator ``(config, batch_size) -> DataLoader or
    tf.data.Dataset``, called by the Estimator.

    A DataFrame's model inputs are `feature_cols` (one column per input) and its label
    `label_cols` (one column); a dict's "x" is an array or a list of arrays (one per input),
    whose per-sample shapes are kept.
    """
    if is_spark_frame(data):
        return _from_frame(data, feature_cols, label_cols, role, needs_label)
    if is_pandas_frame(data):
        spark = _active_spark("A pandas DataFrame")
        return _from_frame(spark.createDataFrame(data), feature_cols, label_cols, role, needs_label)
    if isinstance(data, dict):
        return _from_dict(data, role, needs_label)
    if _is_data_loader(data):
        return _from_dict(collect_loader(data), role, needs_label)
    if _is_tf_dataset(data):
        return _from_tf_dataset(data, needs_label)
    raise ZooTypeError(f"Expected `{role}` to be a Spark DataFrame, a pandas DataFrame or a dict "
                       f"{{'x': ndarray, 'y': ndarray}} (a torch DataLoader or a tf.data.Dataset too). Received: {type(data).__name__}. "
                       f"For an XShards, collect it into one of these.")
