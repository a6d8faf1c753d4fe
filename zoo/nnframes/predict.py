"""Distributed inference over a DataFrame: mapInArrow, the model cached per Python worker.

The model is pickled once and broadcast; each Python worker unpickles it the first time it
sees it and keeps it (Python workers are reused between tasks), so a model is loaded once per
worker, not once per task or batch. Arrow batches are cut into `batch_size` rows for the model.
"""

from __future__ import annotations

import collections
import threading

import cloudpickle
import numpy as np
import pyarrow as pa

#: Models kept per Python worker, most recently used last.
_MODEL_CACHE: "collections.OrderedDict[str, object]" = collections.OrderedDict()
_CACHE_LOCK = threading.Lock()
MAX_CACHED_MODELS = 4


def cached_runner(key: str, broadcast):
    """The unpickled model runner for `key`, loaded from `broadcast` once per Python worker."""
    with _CACHE_LOCK:
        if key in _MODEL_CACHE:
            _MODEL_CACHE.move_to_end(key)
            return _MODEL_CACHE[key]
    payload = cloudpickle.loads(broadcast.value)
    with _CACHE_LOCK:
        _MODEL_CACHE[key] = payload
        while len(_MODEL_CACHE) > MAX_CACHED_MODELS:
            _MODEL_CACHE.popitem(last=False)
    return payload


def to_arrow_column(values: np.ndarray) -> pa.Array:
    """A numpy column as Arrow: 1-D as a primitive array, 2-D as a list array per row."""
    if values.ndim == 1:
        return pa.array(values)
    rows, width = values.shape[0], int(np.prod(values.shape[1:]))
    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)))


def predict_task(broadcast, cache_key: str, input_columns: list[str], batch_size: int, build_samples, postprocess):
    """The mapInArrow function: run the broadcast model runner on every batch and append the
    columns `postprocess` makes of its output. Only the runner (the model) is cached per worker;
    the preprocessing and postprocessing are small and travel with each task, so changing a
    param such as the threshold takes effect at once."""

    def task(batches):
        from zoo.engine.arrow_data import column_to_numpy

        runner = cached_runner(cache_key, broadcast)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            arrays = [column_to_numpy(batch.column(name), name) for name in input_columns]
            inputs, _ = build_samples(arrays)
            outputs = np.concatenate([
                runner([x[start:start + batch_size] for x in inputs])
                for start in range(0, batch.num_rows, batch_size)
            ])
            for name, values in postprocess(outputs).items():
                batch = batch.append_column(name, to_arrow_column(values))
            yield batch

    return task
