"""Distributed inference over a DataFrame: mapInArrow, the model cached per Python worker.

The model runner (an `InferenceRunner`: the model run through `zoo.inference.InferenceModel`) is
pickled once and broadcast; each Python worker unpickles it the first time it sees it and keeps it
(Python workers are reused between tasks), so a model is loaded once per worker, not once per task
or batch. Arrow batches are cut into `batch_size` rows for the model.
"""

from __future__ import annotations

import collections
import threading

import cloudpickle
import numpy as np
import pyarrow as pa

from zoo.engine.adapters import adapter_for, for_workers, from_workers

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


def model_framework(model) -> str:
    """``"torch"`` or ``"keras"``: the framework of `model`, as its engine adapter (the one place
    the framework is chosen) names it; raises the adapter's error for any other object."""
    return adapter_for(model).FRAMEWORK


class InferenceRunner:
    """Runs a torch or Keras model on numpy batches through `zoo.inference.InferenceModel`, on any
    of the framework's backends (what transform calls).

    Made on the driver, where the framework/backend pairing and the options were checked
    (`zoo.inference.config.backend_config`); the model travels in the form its adapter pickles
    for the executors. There the runner loads its InferenceModel on the first batch, which a
    conversion (OpenVINO, ONNX Runtime) traces and is checked on, and keeps it: with
    `cached_runner` that is one load per Python worker.
    """

    def __init__(self, model, framework: str, backend: str, options: dict):
        self.model = for_workers(adapter_for(model), model)
        self.framework = framework
        self.backend = backend
        self.options = dict(options)
        self._handle = None

    def __call__(self, inputs: list[np.ndarray]) -> np.ndarray:
        if self._handle is None:
            from zoo.inference import InferenceModel

            model = from_workers(adapter_for(self.model), self.model)
            self._handle = InferenceModel.from_framework(self.framework, model, list(inputs), self.backend,
                                                         **self.options)
        output = self._handle.predict(list(inputs))
        # NNModel predicts from the model's first output (a list holds one array per output).
        return np.asarray(output[0] if isinstance(output, list) else output, dtype=np.float32)

    def __getstate__(self):
        return {**self.__dict__, "_handle": None}


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
