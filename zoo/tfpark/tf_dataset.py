"""TFDataset: training or inference data for a Keras model, as a Spark DataFrame plus how to
read it.

Every source becomes a DataFrame whose feature columns hold flat numeric arrays (or scalars) and
whose label column holds a scalar or an array, with one SeqToTensor per column restoring the
per-sample shape; training and inference then run through nnframes (NNEstimator / NNModel) on
the engine. A tf.data pipeline is serialized on the driver and run on the executors, one shard
per task, so only pipelines TensorFlow can serialize (no Python generators or py_function) are
accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes.preprocessing import Preprocessing, ScalarToTensor, SeqToTensor

#: Means "not given" for batch_size and batch_per_thread, as in Analytics Zoo.
UNSET = -1
#: Inference batch per task when neither batch_size nor batch_per_thread is given.
DEFAULT_BATCH_PER_THREAD = 32
FEATURE_PREFIX, LABEL_COLUMN = "feature_", "label"
#: Analytics Zoo's memory_type values: "DRAM" keeps training samples in memory; "DISK_AND_DRAM"
#: (or "DISK_n") streams them into a file on local disk, so the OS caches what fits.
MEMORY_TYPES = ("DRAM", "DISK_AND_DRAM")


def caching_sample_for(memory_type: str) -> bool:
    """NNEstimator's cachingSample for AZ's `memory_type` (True: samples in memory)."""
    value = str(memory_type).upper()
    if value == "DRAM":
        return True
    if value == "DISK_AND_DRAM" or re.fullmatch(r"DISK_\d+", value):
        return False
    if value == "PMEM":
        raise ZooValueError("memory_type='PMEM' (Optane persistent memory) is not supported. Use 'DRAM' (samples in "
                            "memory) or 'DISK_AND_DRAM' (samples in a file on local disk).")
    raise ZooValueError(f"Expected `memory_type` in {MEMORY_TYPES} (or 'DISK_n'). Received: memory_type={memory_type!r}.")


def _reading_options(dataset: "TFDataset", shuffle: bool, sequential_order: bool, memory_type: str) -> "TFDataset":
    """Apply AZ's TFDataset keywords: `shuffle` and `sequential_order` (no shuffling: every epoch
    reads each worker's samples in order) and `memory_type` (see `caching_sample_for`)."""
    dataset.shuffle = bool(shuffle) and not sequential_order
    dataset.caching_sample = caching_sample_for(memory_type)
    return dataset


def _to_step(shape: tuple) -> Preprocessing:
    """The preprocessing that turns a flat column back into per-sample `shape`."""
    return SeqToTensor(shape) if len(shape) else ScalarToTensor()


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class FrameSource:
    """A DataFrame and how its columns feed a model.

    Attributes:
        df: the DataFrame.
        feature_cols: one column per model input, in the model's input order.
        label_col: the label column, or None (inference only).
        feature_steps: one Preprocessing per feature column (None: nnframes' default, flat).
        label_step: the label's Preprocessing (None: nnframes' default).
    """

    df: object
    feature_cols: list[str]
    label_col: str | None
    feature_steps: list[Preprocessing] | None = None
    label_step: Preprocessing | None = None


def frame_from_arrays(features: list[np.ndarray], labels: np.ndarray | None) -> FrameSource:
    """A DataFrame (built through Arrow, no per-row Python) from per-input arrays and labels."""
    import pyarrow as pa
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise ZooValueError("TFDataset needs an active SparkSession for numpy data. Call zoo.init_spark() first.")
    lengths = {len(a) for a in features + ([labels] if labels is not None else [])}
    if len(lengths) != 1:
        raise ZooValueError(f"Expected every array to have the same number of samples (first axis). "
                            f"Received lengths {sorted(lengths)}.")

    def column(array: np.ndarray) -> pa.Array:
        array = np.asarray(array)
        if array.ndim == 1:
            return pa.array(array.astype(np.float64))
        width = int(np.prod(array.shape[1:]))
        flat = pa.array(np.ascontiguousarray(array, dtype=np.float32).reshape(-1))
        return pa.ListArray.from_arrays(pa.array(np.arange(len(array) + 1, dtype=np.int32) * width), flat)

    names = [f"{FEATURE_PREFIX}{i}" for i in range(len(features))]
    columns = {name: column(a) for name, a in zip(names, features)}
    if labels is not None:
        columns[LABEL_COLUMN] = column(labels)
    df = spark.createDataFrame(pa.table(columns))
    steps = [_to_step(tuple(np.asarray(a).shape[1:])) for a in features]
    label_step = _to_step(tuple(np.asarray(labels).shape[1:])) if labels is not None else None
    return FrameSource(df, names, LABEL_COLUMN if labels is not None else None, steps, label_step)


def _split_xy(tensors):
    """(features list, labels or None) from `x`, `(x,)` or `(x, y)`; x is an array, or a list or
    tuple of arrays (one per model input), so a multi-input x without labels must be a list."""
    if isinstance(tensors, tuple) and len(tensors) == 2:
        x, y = tensors
    elif isinstance(tensors, tuple) and len(tensors) == 1:
        x, y = tensors[0], None
    else:
        x, y = tensors, None
    features = [np.asarray(a) for a in _as_list(x)]
    return features, None if y is None else np.asarray(y)


class TFDataset:
    """Data for KerasModel, TFOptimizer and TFPredictor (Analytics Zoo's TFDataset on TF 2).

    Build one with `from_ndarrays`, `from_rdd`, `from_dataframe` or `from_tf_data_dataset`.
    `batch_size` is the global training batch (summed over workers); `batch_per_thread` is the
    inference batch of each task. Give one of them, not both.

    Attributes:
        source: the FrameSource the data lives in.
        validation: a FrameSource for validation, or None.
        batch_size, batch_per_thread: as given (-1 when not given).
        shuffle: reshuffle each worker's samples every training epoch (default True; set False
            for a reproducible order).
        caching_sample: keep training samples in memory (True, AZ's memory_type="DRAM") or
            keep them in a file on local disk (False, "DISK_AND_DRAM").

    Every constructor also takes AZ's keywords: `shuffle`, `sequential_order` (True: no
    shuffling), `memory_type` and `hard_code_batch_size` (accepted; TF 2 batches are dynamic).
    """

    def __init__(self, source: FrameSource, batch_size: int = UNSET, batch_per_thread: int = UNSET,
                 validation: FrameSource | None = None):
        for name, value in (("batch_size", batch_size), ("batch_per_thread", batch_per_thread)):
            if not isinstance(value, int) or (value != UNSET and value < 1):
                raise ZooValueError(f"Expected `{name}` to be a positive int (or -1 for not given). "
                                    f"Received: {name}={value!r}.")
        if batch_size != UNSET and batch_per_thread != UNSET:
            raise ZooValueError(
                f"Give either `batch_size` (the global batch, for training) or `batch_per_thread` (the batch "
                f"of each task, for inference), not both. Received: batch_size={batch_size}, "
                f"batch_per_thread={batch_per_thread}."
            )
        self.source = source
        self.validation = validation
        self.batch_size = batch_size
        self.batch_per_thread = batch_per_thread
        self.shuffle = True
        self.caching_sample = True

    # ---- constructors ------------------------------------------------------------------------
    @classmethod
    def from_ndarrays(cls, tensors, batch_size: int = UNSET, batch_per_thread: int = UNSET,
                      hard_code_batch_size: bool = False, val_tensors=None, memory_type: str = "DRAM",
                      sequential_order: bool = False, shuffle: bool = True) -> "TFDataset":
        """From numpy arrays: `x`, or `(x, y)` where x is an array or a tuple/list of arrays (one
        per model input); `val_tensors` likewise, for validation."""
        features, labels = _split_xy(tensors)
        validation = None
        if val_tensors is not None:
            validation = frame_from_arrays(*_split_xy(val_tensors))
        return _reading_options(cls(frame_from_arrays(features, labels), batch_size, batch_per_thread, validation),
                                shuffle, sequential_order, memory_type)

    @classmethod
    def from_dataframe(cls, df, feature_cols, labels_cols=None, batch_size: int = UNSET,
                       batch_per_thread: int = UNSET, hard_code_batch_size: bool = False, validation_df=None,
                       memory_type: str = "DRAM", sequential_order: bool = False, shuffle: bool = True,
                       feature_shapes=None) -> "TFDataset":
        """From a DataFrame: one feature column per model input (numeric, array or ML Vector) and
        at most one label column. `feature_shapes` (one per feature column) reshapes flat arrays
        to what each model input takes; by default arrays stay flat."""
        features = _as_list(feature_cols)
        labels = _as_list(labels_cols)
        if not features or not all(isinstance(c, str) for c in features):
            raise ZooTypeError(f"Expected `feature_cols` to be a column name or a list of them. "
                               f"Received: {feature_cols!r}.")
        if len(labels) > 1:
            raise ZooValueError(f"Expected at most one label column (the engine trains single-target models). "
                                f"Received labels_cols={labels_cols!r}; combine them into one array column.")
        steps = None
        if feature_shapes is not None:
            shapes = list(feature_shapes)
            if len(shapes) != len(features):
                raise ZooValueError(f"Expected one shape per feature column ({features}). Received {shapes!r}.")
            steps = [_to_step(tuple(s)) for s in shapes]
        label = labels[0] if labels else None

        def frame(data):
            return FrameSource(data, features, label, steps)

        dataset = cls(frame(df), batch_size, batch_per_thread, frame(validation_df) if validation_df is not None else None)
        return _reading_options(dataset, shuffle, sequential_order, memory_type)

    @classmethod
    def from_rdd(cls, rdd, features=None, labels=None, batch_size: int = UNSET, batch_per_thread: int = UNSET,
                 hard_code_batch_size: bool = False, val_rdd=None, memory_type: str = "DRAM",
                 sequential_order: bool = False, shuffle: bool = True, names=None, shapes=None,
                 types=None) -> "TFDataset":
        """From an RDD of `(features, label)` records (or features alone when `labels` is None),
        where features is an array or a tuple of arrays; `features` and `labels` describe each
        part as `(dtype, shape)`, as in Analytics Zoo.

        AZ's older `names` / `shapes` / `types` (tensors fed to TF 1 placeholders) are refused
        with the `features=` / `labels=` call that replaces them.
        """
        if names is not None or shapes is not None or types is not None:
            raise ZooValueError(_placeholder_form_message(shapes, types))
        if features is None:
            raise ZooValueError("Expected `features` as (dtype, shape), e.g. features=(tf.float32, [28, 28, 1]).")
        feature_specs = [features] if _is_spec(features) else list(features)
        label_spec = labels
        for spec in feature_specs + ([label_spec] if label_spec is not None else []):
            if not _is_spec(spec):
                raise ZooTypeError(f"Expected each of `features` / `labels` to be (dtype, shape), e.g. "
                                   f"(tf.float32, [28, 28, 1]). Received: {spec!r}.")

        def source(data):
            return _frame_from_records(data, [tuple(s[1]) for s in feature_specs],
                                       tuple(label_spec[1]) if label_spec is not None else None)

        dataset = cls(source(rdd), batch_size, batch_per_thread, source(val_rdd) if val_rdd is not None else None)
        return _reading_options(dataset, shuffle, sequential_order, memory_type)

    @classmethod
    def from_tf_data_dataset(cls, dataset, batch_size: int = UNSET, batch_per_thread: int = UNSET,
                             hard_code_batch_size: bool = False, validation_dataset=None,
                             sequential_order: bool = False, shuffle: bool = True,
                             memory_type: str = "DRAM") -> "TFDataset":
        """From an unbatched, finite tf.data.Dataset of `(features, label)` or features elements.

        The pipeline is serialized on the driver and each executor task runs its `shard` of it,
        so it must be serializable by TensorFlow: no `from_generator`, `py_function` or other
        Python state.
        """
        validation = frame_from_tf_data(validation_dataset) if validation_dataset is not None else None
        return _reading_options(cls(frame_from_tf_data(dataset), batch_size, batch_per_thread, validation),
                                shuffle, sequential_order, memory_type)

    # ---- what the trainers use ---------------------------------------------------------------
    def training_batch_size(self, given: int | None = None) -> int:
        """The global batch size: `given` (KerasModel.fit's batch_size), else batch_size."""
        size = given if given is not None else self.batch_size
        if size is None or size == UNSET:
            raise ZooValueError("Training needs a global batch size. Give TFDataset batch_size=... "
                                "(or KerasModel.fit(batch_size=...)); batch_per_thread is for inference.")
        return int(size)

    def inference_batch_size(self, given: int | None = None) -> int:
        """The per-task inference batch: `given`, else batch_per_thread, else batch_size, else 32."""
        for size in (given, self.batch_per_thread, self.batch_size):
            if size is not None and size != UNSET:
                return int(size)
        return DEFAULT_BATCH_PER_THREAD


def _placeholder_form_message(shapes, types) -> str:
    """The error for AZ's TF 1 form from_rdd(rdd, names=, shapes=, types=), naming the TF 2 call."""
    example = "features=(tf.float32, [28, 28, 1]), labels=(tf.int32, [])"
    if shapes is not None and types is not None and len(shapes) == len(types) and len(shapes) >= 2:
        specs = [f"({getattr(t, 'name', t)}, {list(s)})" for t, s in zip(types, shapes)]
        example = f"features=[{', '.join(specs[:-1])}], labels={specs[-1]}"
    return ("TFDataset.from_rdd(names=, shapes=, types=) described TF 1 placeholders. On TF 2 each record is "
            "(features, label); describe them as (dtype, shape): TFDataset.from_rdd(rdd, " + example + ", ...).")


def _is_spec(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], (tuple, list))


def _frame_from_records(rdd, feature_shapes: list[tuple], label_shape: tuple | None) -> FrameSource:
    """A DataFrame of flat arrays from an RDD of (features, label) records."""
    from pyspark.sql import SparkSession
    from pyspark.sql.types import ArrayType, DoubleType, FloatType, StructField, StructType

    names = [f"{FEATURE_PREFIX}{i}" for i in range(len(feature_shapes))]
    fields = [StructField(n, ArrayType(FloatType()) if len(s) else DoubleType()) for n, s in zip(names, feature_shapes)]
    if label_shape is not None:
        fields.append(StructField(LABEL_COLUMN, ArrayType(FloatType()) if len(label_shape) else DoubleType()))
    has_label = label_shape is not None
    single = len(feature_shapes) == 1

    def to_row(record):
        x, y = (record[0], record[1]) if has_label else (record, None)
        parts = [x] if single else list(x)
        values = [np.asarray(p, np.float32).reshape(-1).tolist() if np.ndim(p) else float(p) for p in parts]
        if has_label:
            values.append(np.asarray(y, np.float32).reshape(-1).tolist() if np.ndim(y) else float(y))
        return values

    spark = SparkSession.getActiveSession()
    df = spark.createDataFrame(rdd.map(to_row), StructType(fields))
    return FrameSource(df, names, LABEL_COLUMN if has_label else None, [_to_step(s) for s in feature_shapes],
                       _to_step(label_shape) if has_label else None)


def frame_from_tf_data(dataset) -> FrameSource:
    """Serialize a tf.data pipeline; a DataFrame whose partitions each run one shard of it."""
    import tensorflow as tf
    from pyspark.sql import SparkSession

    if not isinstance(dataset, tf.data.Dataset):
        raise ZooTypeError(f"Expected a tf.data.Dataset. Received: {type(dataset).__name__}.")
    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ZooValueError("The tf.data.Dataset is infinite (it ends in .repeat()), so it cannot be split into "
                            "shards. Remove .repeat(): the number of epochs is set by fit(epochs=...) or "
                            "TFOptimizer.optimize(end_trigger=...).")
    if "Batch" in type(dataset).__name__:
        raise ZooValueError("The tf.data.Dataset is batched. Pass the unbatched dataset (one sample per element) "
                            "and give the batch as TFDataset batch_size (training) or batch_per_thread (inference).")
    spec = dataset.element_spec
    has_label = isinstance(spec, tuple) and len(spec) == 2
    feature_spec, label_spec = (spec[0], spec[1]) if has_label else (spec, None)
    feature_specs = list(feature_spec) if isinstance(feature_spec, (tuple, list)) else [feature_spec]
    for s in feature_specs + ([label_spec] if has_label else []):
        if not isinstance(s, tf.TensorSpec) or not s.shape.is_fully_defined() or not (
                s.dtype.is_floating or s.dtype.is_integer or s.dtype.is_bool):
            raise ZooValueError(f"Expected every element of the tf.data.Dataset to be dense numeric tensors of a "
                                f"fixed shape. Received an element spec {spec!r}; map it to fixed-shape tensors "
                                f"first (e.g. pad or reshape).")
    try:
        graph = dataset._as_serialized_graph(
            external_state_policy=tf.data.experimental.ExternalStatePolicy.FAIL).numpy()
    except Exception as exc:  # TensorFlow raises several error types here
        raise ZooValueError(
            f"This tf.data pipeline cannot be sharded across executors: TensorFlow cannot serialize it "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). Pipelines built on Python code "
            f"(from_generator, py_function, numpy_function) only run in the process that made them. Build it "
            f"from tensors or files instead (from_tensor_slices, TFRecordDataset), or load the data into a "
            f"Spark DataFrame and use TFDataset.from_dataframe."
        ) from exc
    spark = SparkSession.getActiveSession()
    if spark is None:
        raise ZooValueError("TFDataset needs an active SparkSession. Call zoo.init_spark() first.")
    shards = spark.sparkContext.defaultParallelism
    feature_shapes = [tuple(s.shape.as_list()) for s in feature_specs]
    label_shape = tuple(label_spec.shape.as_list()) if has_label else None

    def run_shard(index):
        import tensorflow as tf

        variant = tf.raw_ops.DatasetFromGraph(graph_def=graph)
        shard = tf.data.experimental.from_variant(variant, structure=spec).shard(shards, index)
        for element in shard.as_numpy_iterator():
            yield element

    rdd = spark.sparkContext.parallelize(range(shards), shards).flatMap(run_shard)
    return _frame_from_records(rdd, feature_shapes, label_shape)
