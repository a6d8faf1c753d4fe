"""KerasModel: fit, evaluate and predict a compiled Keras 3 model on a Spark cluster."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from zoo import storage
from zoo.engine.adapters import check_framework
from zoo.engine.triggers import EveryEpoch, MaxEpoch
from zoo.errors import ZooTypeError, ZooValueError
from zoo.tfpark import training
from zoo.tfpark.tf_dataset import TFDataset


def _is_dataframe(x) -> bool:
    from pyspark.sql import DataFrame

    return isinstance(x, DataFrame)


class KerasModel:
    """A compiled keras.Model trained with its own loss and optimizer across Spark executors
    (Analytics Zoo's tfpark.KerasModel).

    Args:
        model: a keras.Model compiled with `model.compile(optimizer, loss, metrics)`.
        model_dir: where distributed `fit` writes a checkpoint every epoch (a path or URL; see
            `TFOptimizer.load_checkpoint` to resume); None: no checkpoints.
        optimizer: the optimizer distributed `fit` uses instead of the compiled one (a Keras
            optimizer, its name, or a torch.optim class).

    `fit`, `evaluate` and `predict` take `x` as a TFDataset, numpy arrays (with `y`) or a Spark
    DataFrame (with `feature_cols` / `labels_cols`). A TFDataset or a DataFrame always runs on the
    cluster; numpy arrays run as plain Keras in this process unless `distributed=True` (the
    default False, as Analytics Zoo documents it).
    """

    def __init__(self, model, model_dir: str | None = None, optimizer=None):
        self.model = check_framework(model, "keras")
        self.model_dir = model_dir
        self.optimizer = optimizer
        self.fit_stats: dict[str, float] = {}

    @property
    def metrics_names(self) -> list[str]:
        """The names `evaluate` reports: "loss", then the compiled metrics (Keras' names)."""
        loss, _, metrics = training.compiled_parts(self.model)
        return [training.keras_name(m.name) for m in training.to_validation_methods(metrics, self.model, loss)]

    def get_weights(self) -> list[np.ndarray]:
        """The model's weights, as keras.Model.get_weights returns them."""
        return self.model.get_weights()

    def set_weights(self, weights) -> None:
        """Set the model's weights (a list as `get_weights` returns)."""
        self.model.set_weights(weights)

    def save_weights(self, filepath: str, overwrite: bool = True, save_format=None) -> None:
        """Save the weights to `filepath` (a path or URL, any file name) in Keras' ``.weights.h5``
        format, atomically. `save_format` may be None or "h5"."""
        if save_format not in (None, "h5"):
            raise ZooValueError(f"Keras 3 saves weights in HDF5 only. Received save_format={save_format!r}; give "
                                f"save_format='h5' (or None), or use save_model(path) for a whole model.")
        if not overwrite and storage.exists(filepath):
            raise FileExistsError(f"{filepath!r} exists. Pass overwrite=True to replace it.")
        with storage.staged_files(filepath) as (staged,):
            keras_file = staged + ".weights.h5"  # Keras 3 insists on this suffix
            self.model.save_weights(keras_file)
            os.replace(keras_file, staged)

    def load_weights(self, filepath: str, by_name: bool = False) -> None:
        """Load weights `save_weights` wrote (a path or URL) into the model."""
        if by_name:
            raise ZooValueError("load_weights(by_name=True) is not supported: Keras 3 loads weights by the model's "
                                "structure. Build the same architecture, or restore a whole model with "
                                "KerasModel.load_model(path).")
        local = storage.fetch(filepath)
        with tempfile.TemporaryDirectory() as folder:
            keras_file = os.path.join(folder, "model.weights.h5")
            os.symlink(os.path.abspath(local), keras_file)
            self.model.load_weights(keras_file)

    def _runs_distributed(self, x, distributed: bool) -> bool:
        return bool(distributed) or isinstance(x, TFDataset) or _is_dataframe(x)

    def _dataset(self, x, y, batch_size, batch_per_thread, validation_data, feature_cols, labels_cols):
        if isinstance(x, TFDataset):
            if y is not None or validation_data is not None:
                raise ZooValueError("With a TFDataset `x`, give labels and validation data inside the TFDataset "
                                    "(from_ndarrays((x, y), val_tensors=...)), not as `y` / `validation_data`.")
            return x
        if _is_dataframe(x):
            if feature_cols is None:
                raise ZooValueError("With a DataFrame `x`, name its columns: feature_cols=[...] (one per model "
                                    "input) and labels_cols='label' for training.")
            if validation_data is not None and not _is_dataframe(validation_data):
                raise ZooTypeError("With a DataFrame `x`, `validation_data` must be a DataFrame too.")
            return TFDataset.from_dataframe(x, feature_cols, labels_cols, batch_size or -1,
                                            batch_per_thread or -1, validation_df=validation_data)
        if isinstance(x, (np.ndarray, list, tuple)):
            tensors = (tuple(x) if isinstance(x, list) else x, y) if y is not None else (
                list(x) if isinstance(x, (list, tuple)) else x)
            return TFDataset.from_ndarrays(tensors, batch_size or -1, batch_per_thread or -1,
                                           val_tensors=validation_data)
        raise ZooTypeError(f"Expected `x` to be a TFDataset, numpy arrays or a Spark DataFrame. "
                           f"Received: {type(x).__name__}.")

    def fit(self, x, y=None, batch_size=None, epochs=1, validation_data=None, distributed=False,
            feature_cols=None, labels_cols=None, show_progress=False):
        """Train for `epochs` epochs with the compiled loss and optimizer; the weights of
        `self.model` are updated in place. Returns a dict like Keras' History.history (per-epoch
        mean training loss, val_* metrics when validation data is given); `fit_stats` then holds
        the distributed fit's duration_s, startup_s and steady-state samples_per_second."""
        if not self._runs_distributed(x, distributed):
            history = self.model.fit(x, y, batch_size=batch_size, epochs=epochs, validation_data=validation_data,
                                     verbose=0)
            return history.history
        loss, optimizer, metrics = training.compiled_parts(self.model)
        dataset = self._dataset(x, y, batch_size, None, validation_data, feature_cols, labels_cols)
        checkpoint = {"path": self.model_dir, "trigger": EveryEpoch()} if self.model_dir else None
        fitted = training.train(self.model, loss, self.optimizer or optimizer, dataset,
                                dataset.training_batch_size(batch_size), MaxEpoch(epochs), metrics,
                                checkpoint=checkpoint, show_progress=show_progress)
        self.fit_stats = {"duration_s": fitted.fit_duration_s, "startup_s": fitted.fit_startup_s,
                          "samples_per_second": fitted.fit_samples_per_second}
        return training.keras_history(fitted.history)

    def evaluate(self, x, y=None, batch_per_thread=None, distributed=False, feature_cols=None, labels_cols=None):
        """Loss and compiled metrics over all the data: a dict {"loss": ..., metric: ...}."""
        loss, _, metrics = training.compiled_parts(self.model)
        if not self._runs_distributed(x, distributed):
            values = self.model.evaluate(x, y, batch_size=batch_per_thread, verbose=0, return_dict=True)
            return dict(values)
        dataset = self._dataset(x, y, None, batch_per_thread, None, feature_cols, labels_cols)
        return training.evaluate(self.model, loss, dataset, metrics, dataset.inference_batch_size(batch_per_thread))

    def predict(self, x, batch_per_thread=None, distributed=False, feature_cols=None):
        """Predictions: a numpy array for numpy or TFDataset `x` (in the input's order), a
        DataFrame with a `prediction` column for a DataFrame `x`."""
        if not self._runs_distributed(x, distributed):
            return self.model.predict(x, batch_size=batch_per_thread, verbose=0)
        dataset = self._dataset(x, None, None, batch_per_thread, None, feature_cols, None)
        size = dataset.inference_batch_size(batch_per_thread)
        if _is_dataframe(x):
            return training.predict_frame(self.model, dataset.source, size)
        shape = training.output_shape(self.model, dataset.source)
        rows = training.predict_frame(self.model, dataset.source, size).select("prediction").collect()
        return np.asarray([r["prediction"] for r in rows], dtype=np.float32).reshape((len(rows),) + shape)

    def save_model(self, path: str) -> None:
        """Save the model in Keras' `.keras` format to `path` (a path or URL), atomically."""
        with storage.staged_files(path) as (staged,):
            self.model.save(staged)

    @staticmethod
    def load_model(path: str, custom_objects=None) -> "KerasModel":
        """A KerasModel from a `.keras` file (a path or URL) saved by `save_model`, with its compile
        state, in Keras' safe mode (`zoo.inference.backends.keras.load_model_file`)."""
        from zoo.inference.backends.keras import load_model_file

        return KerasModel(load_model_file(storage.fetch(path), custom_objects, compile=True))
