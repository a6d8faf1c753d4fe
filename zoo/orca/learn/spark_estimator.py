"""What the Orca PyTorch and TF2 Estimators share: fit, evaluate, predict, save and load a model
through nnframes on Zoo's engine (an NNEstimator underneath each fit)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from zoo import storage
from zoo.engine import checkpoint as ckpt
from zoo.engine.adapters import adapter_for
from zoo.engine.triggers import EveryEpoch, check_trigger
from zoo.errors import ZooValueError, check_positive_int
from zoo.orca.learn.data import is_pandas_frame, is_spark_frame, to_source
from zoo.tfpark import training

#: Backends whose `batch_size` is the global batch (Orca's Spark/BigDL backends).
GLOBAL_BATCH_BACKENDS = ("spark", "bigdl")
#: Orca's Ray backends: `batch_size` is each worker's batch. Zoo runs them on its Spark engine too,
#: with a global batch of batch_size x workers, so the step size a script was tuned for holds.
PER_WORKER_BATCH_BACKENDS = ("tf2", "ray", "horovod", "torch_distributed")
BACKENDS = GLOBAL_BATCH_BACKENDS + PER_WORKER_BATCH_BACKENDS
PREDICTION_COL = "prediction"

logger = logging.getLogger(__name__)


def check_backend(backend: str) -> str:
    """`backend` when Zoo runs it; otherwise an error listing the backends."""
    if backend not in BACKENDS:
        raise ZooValueError(f"Expected `backend` in {BACKENDS} (all train on Zoo's Spark engine). "
                            f"Received: backend={backend!r}.")
    return backend


def _label_cols(label_cols, labels_cols):
    """`label_cols`, or Orca 0.9's `labels_cols` (not both)."""
    if label_cols is not None and labels_cols is not None:
        raise ZooValueError(f"Give `label_cols` or Orca 0.9's `labels_cols`, not both. Received: label_cols="
                            f"{label_cols!r}, labels_cols={labels_cols!r}.")
    return label_cols if label_cols is not None else labels_cols


class SparkEstimator:
    """Trains `model` with `loss` and `optimizer` on Spark through nnframes' NNEstimator.

    Subclasses (the PyTorch and TF2 Estimators) choose how labels are read (`_label_step`) and
    the names metrics are reported under (`_metric_name`).

    Attributes:
        model: the model; each fit continues from its weights and writes the trained ones back.
        history: the engine's history of every fit so far (per-step losses, validation results).
    """

    def __init__(self, model, loss, optimizer, metrics, model_dir, backend, config=None):
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else ([metrics] if metrics else [])
        self.model_dir = model_dir
        self.backend = check_backend(backend)
        self.config = dict(config or {})
        self.history: list[dict] = []

    # ---- hooks -----------------------------------------------------------------------------------
    def _label_step(self, source):
        """The label Preprocessing for `source` (None: nnframes' default for the column)."""
        return source.label_step

    def _metric_name(self, name: str) -> str:
        """The name a metric is reported under."""
        return name

    # ---- helpers ---------------------------------------------------------------------------------
    def _methods(self, metrics=None):
        return training.to_validation_methods(self.metrics if metrics is None else metrics, self.model, self.loss)

    def _source(self, data, feature_cols, label_cols, role, needs_label=True, batch_size=32):
        if callable(data) and not (is_spark_frame(data) or is_pandas_frame(data)):
            data = data(self.config, batch_size)  # Orca's data creator (config, batch_size) -> DataLoader
        source = to_source(data, feature_cols, label_cols, role=role, needs_label=needs_label)
        return dataclasses.replace(source, label_step=self._label_step(source)) if needs_label else source

    def _global_batch(self, batch_size: int, spark) -> int:
        if self.backend in GLOBAL_BATCH_BACKENDS:
            return batch_size
        from zoo.engine.launcher import available_slots

        return batch_size * available_slots(spark)

    def _checkpoint_trigger(self, checkpoint_trigger):
        if checkpoint_trigger is None:
            return EveryEpoch() if self.model_dir is not None else None
        if self.model_dir is None:
            # As in Orca: without a model_dir the trigger has nowhere to write, and training goes on.
            logger.warning("checkpoint_trigger=%r is ignored: no model_dir was given to the Estimator, so no "
                           "checkpoints are written. Give model_dir= to keep them.", checkpoint_trigger)
            return None
        return check_trigger("checkpoint_trigger", checkpoint_trigger)

    def _load_state(self, blob: bytes) -> None:
        adapter_for(self.model).load_state_bytes_into(self.model, blob)

    # ---- public API ------------------------------------------------------------------------------
    def fit(self, data, epochs: int = 1, batch_size: int = 32, feature_cols=None, label_cols=None,
            validation_data=None, checkpoint_trigger=None, validation_metrics=None, validation_methods=None,
            labels_cols=None):
        """Train for `epochs` epochs, continuing from the model's current weights; returns self.

        Args:
            data: a Spark DataFrame, a pandas DataFrame or a dict {"x": array(s), "y": array}.
            epochs: passes over the data.
            batch_size: the global batch for backend "spark"/"bigdl"; each worker's batch for
                Orca's Ray backends ("tf2", "horovod", "torch_distributed").
            feature_cols: the DataFrame columns of the model inputs (one per input).
            label_cols: the DataFrame label column (a name or a one-element list).
            validation_data: data in the same form, validated with the metrics after each epoch.
            checkpoint_trigger: when to checkpoint to model_dir (default: every epoch when
                model_dir is set); a trigger from `zoo.orca.learn.trigger`.
            validation_metrics: metrics for validation_data instead of the Estimator's
                (`validation_methods` is Orca 0.9's name for it).
            labels_cols: Orca 0.9's name for `label_cols`.
        """
        from zoo.nnframes import NNEstimator

        check_positive_int("epochs", epochs)
        check_positive_int("batch_size", batch_size)
        label_cols = _label_cols(label_cols, labels_cols)
        trigger = self._checkpoint_trigger(checkpoint_trigger)
        source = self._source(data, feature_cols, label_cols, "data", batch_size=batch_size)
        estimator = NNEstimator(model=self.model, criterion=self.loss, feature_preprocessing=source.feature_steps,
                                label_preprocessing=source.label_step, featuresCol=source.feature_cols,
                                labelCol=source.label_col, batchSize=self._global_batch(batch_size, source.df.sparkSession),
                                maxEpoch=epochs, optimMethod=self.optimizer)
        if validation_data is not None:
            validation = self._source(validation_data, feature_cols, label_cols, "validation_data",
                                      batch_size=batch_size)
            if validation.feature_cols != source.feature_cols:
                raise ZooValueError("Expected `validation_data` in the same form as `data` (both DataFrames or "
                                    "both numpy dicts with as many inputs).")
            estimator.setValidation(EveryEpoch(), validation.df,
                                    self._methods(validation_metrics or validation_methods), batch_size)
        if trigger is not None:
            estimator.setCheckpoint(self.model_dir, trigger)
        fitted = estimator.fit(source.df)
        adapter_for(self.model).assign_weights(self.model, fitted.model)
        self.history.extend(fitted.history)
        return self

    def evaluate(self, data, batch_size: int = 32, feature_cols=None, label_cols=None,
                 validation_metrics=None, labels_cols=None) -> dict[str, float]:
        """The loss and the metrics (`validation_metrics`, default the Estimator's) over all of
        `data`, exact: merged across tasks from sufficient statistics (`labels_cols`: Orca
        0.9's name for `label_cols`)."""
        check_positive_int("batch_size", batch_size)
        label_cols = _label_cols(label_cols, labels_cols)
        source = self._source(data, feature_cols, label_cols, "data", batch_size=batch_size)
        results = training.evaluate_source(self.model, self.loss, source, self._methods(validation_metrics),
                                           batch_size)
        return {self._metric_name(name): value for name, value in results.items()}

    def predict(self, data, batch_size: int = 32, feature_cols=None):
        """Predictions: a Spark or pandas DataFrame in gives the same kind back with a
        `prediction` column (the flat model output); a dict {"x": ...} gives a numpy array
        with the model's output shape."""
        check_positive_int("batch_size", batch_size)
        source = self._source(data, feature_cols, None, "data", needs_label=False, batch_size=batch_size)
        result = training.nn_model(self.model, source, batch_size, PREDICTION_COL).transform(source.df)
        if is_spark_frame(data):
            return result
        if is_pandas_frame(data):
            return result.toPandas()
        flat = np.stack(result.select(PREDICTION_COL).toPandas()[PREDICTION_COL].to_numpy())
        return flat.reshape((len(flat),) + training.output_shape(self.model, source))

    def get_model(self):
        """The model with the trained weights."""
        return self.model

    def save(self, model_path: str) -> str:
        """Save the model (architecture and weights, nnframes' NNModel layout) to `model_path`,
        replacing what is there; returns the path."""
        from zoo.nnframes import NNModel

        NNModel(model=self.model).write().overwrite().save(model_path)
        return model_path

    def load(self, model_path: str):
        """Load the weights `save` wrote at `model_path` into the model; returns self."""
        from zoo.nnframes import NNModel

        loaded = NNModel.load(model_path).model
        adapter_for(self.model).assign_weights(self.model, loaded)
        return self

    def load_orca_checkpoint(self, path: str, version=None):
        """Load the weights of a checkpoint under `path` (a model_dir): version `version` (its
        iteration, as the checkpoint directory's name gives it), or the latest; returns self."""
        if version is None:
            directory = ckpt.latest_checkpoint(path)
            if directory is None:
                raise ZooValueError(f"No checkpoint under {path!r}. Fit with model_dir={path!r} first.")
        else:
            name = f"{ckpt.PREFIX}{int(version):09d}"
            available = ckpt.checkpoint_names(path)
            if name not in available:
                raise ZooValueError(f"No checkpoint version {version} under {path!r}. Available versions: "
                                    f"{[int(n[len(ckpt.PREFIX):]) for n in available]}.")
            directory = storage.join(path, name)
        _, model_state, _ = ckpt.load_checkpoint(directory)
        self._load_state(model_state)
        return self

    def load_latest_orca_checkpoint(self, path: str):
        """Load the latest checkpoint under `path`; returns self."""
        return self.load_orca_checkpoint(path)
