"""What KerasModel, TFOptimizer and TFPredictor share: train, evaluate and predict a Keras model
on a TFDataset through nnframes and the engine."""

from __future__ import annotations

import numpy as np

from zoo.engine.adapters import LOGITS, adapter_for
from zoo.engine.evaluation import evaluate_frame
from zoo.engine.metrics import AUC, MAE, Loss, Top1Accuracy, ValidationMethod
from zoo.engine.triggers import EveryEpoch
from zoo.errors import ZooValueError
from zoo.tfpark.tf_dataset import FrameSource, TFDataset

#: Keras metric names and the engine's exact, mergeable metric each maps to.
KERAS_METRICS = {
    "loss": Loss, "accuracy": Top1Accuracy, "acc": Top1Accuracy, "sparse_categorical_accuracy": Top1Accuracy,
    "categorical_accuracy": Top1Accuracy, "binary_accuracy": Top1Accuracy, "mae": MAE,
    "mean_absolute_error": MAE, "auc": AUC, "top1accuracy": Top1Accuracy,
}
#: The names Keras reports the engine's metrics under (in History.history and evaluate).
KERAS_NAMES = {"Loss": "loss", "Top1Accuracy": "accuracy", "MAE": "mae", "AUC": "auc"}


def keras_name(metric_name: str) -> str:
    """The name a Keras user knows a metric by (``Top1Accuracy`` -> ``accuracy``)."""
    return KERAS_NAMES.get(metric_name, metric_name)


def to_validation_methods(metrics, model, loss) -> list[ValidationMethod]:
    """The engine's metrics for Keras metric names (Loss always first). Accuracy of a single
    output reads it as a logit (threshold 0) when `model` trained with `loss` outputs logits."""
    methods: list[ValidationMethod] = [Loss()]
    logits = adapter_for(model).output_kind(loss) == LOGITS
    for metric in metrics or []:
        if isinstance(metric, ValidationMethod):
            methods.append(metric)
            continue
        if isinstance(metric, type) and issubclass(metric, ValidationMethod):
            methods.append(metric())
            continue
        name = metric if isinstance(metric, str) else getattr(metric, "name", type(metric).__name__)
        key = str(name).lower()
        if key not in KERAS_METRICS:
            raise ZooValueError(f"Unsupported metric {metric!r} for distributed training. Supported Keras "
                                f"metric names: {sorted(KERAS_METRICS)}, or a zoo.engine ValidationMethod.")
        cls = KERAS_METRICS[key]
        if cls is Loss:
            continue
        if cls is Top1Accuracy:
            methods.append(Top1Accuracy(threshold=0.0 if logits else 0.5))
        else:
            methods.append(cls())
    return methods


def compiled_parts(model):
    """(loss, optimizer, metric names) a compiled keras.Model was compiled with."""
    loss = getattr(model, "loss", None)
    if not getattr(model, "compiled", False) or loss is None:
        raise ZooValueError("The Keras model is not compiled with a loss. Call model.compile(optimizer=..., "
                            "loss=..., metrics=[...]) first, or use TFOptimizer.from_loss for a custom loss.")
    config = model.get_compile_config() or {}
    metrics = config.get("metrics") or []
    names = [m if isinstance(m, str) else (m.get("config", {}).get("name") if isinstance(m, dict) else m)
             for m in metrics]
    return loss, model.optimizer, names


def _estimator(model, loss, optimizer, source: FrameSource, batch_size: int, end_trigger, validation,
               metrics, checkpoint, show_progress, num_workers, shuffle, caching_sample=True):
    from zoo.nnframes import NNEstimator

    estimator = NNEstimator(model=model, criterion=loss, feature_preprocessing=source.feature_steps,
                            label_preprocessing=source.label_step, featuresCol=source.feature_cols,
                            labelCol=source.label_col, batchSize=batch_size, endWhen=end_trigger,
                            optimMethod=optimizer, numWorkers=num_workers, shuffle=shuffle,
                            cachingSample=caching_sample)
    estimator.setShowProgress(show_progress)
    if validation is not None:
        estimator.setValidation(EveryEpoch(), validation.df, to_validation_methods(metrics, model, loss))
    if checkpoint is not None:
        estimator.setCheckpoint(**checkpoint)
    return estimator


def train(model, loss, optimizer, dataset: TFDataset, batch_size: int, end_trigger, metrics=None,
          checkpoint: dict | None = None, show_progress: bool = False, num_workers: int | None = None):
    """Train `model` on `dataset` across the cluster and write the trained weights back into it.

    Returns the fitted NNModel: its `history` (per-step losses, validation results) and timings
    (`fit_duration_s`, `fit_startup_s`, `fit_samples_per_second`).
    """
    source = dataset.source
    if source.label_col is None:
        raise ZooValueError("Training needs labels: the TFDataset has features only. Build it with labels "
                            "(from_ndarrays((x, y)), from_dataframe(..., labels_cols=...)).")
    estimator = _estimator(model, loss, optimizer, source, batch_size, end_trigger, dataset.validation,
                           metrics, checkpoint, show_progress, num_workers, dataset.shuffle,
                           dataset.caching_sample)
    fitted = estimator.fit(source.df)
    adapter_for(model).assign_weights(model, fitted.model)
    return fitted


def keras_history(history: list[dict]) -> dict[str, list[float]]:
    """The engine's history as Keras' History.history: per-epoch mean loss and validation metrics."""
    per_epoch: dict[int, list[float]] = {}
    for event in history:
        if event["event"] == "step":
            per_epoch.setdefault(event["epoch"], []).append(event["loss"])
    result = {"loss": [float(np.mean(per_epoch[e])) for e in sorted(per_epoch)]}
    for event in history:
        if event["event"] == "validation":
            for name, value in event["metrics"].items():
                result.setdefault(f"val_{keras_name(name)}", []).append(value)
    return result


def nn_model(model, source: FrameSource, batch_per_thread: int, prediction_col: str = "prediction"):
    """An NNModel that adds `prediction_col` (flat array<float>) to the source's DataFrame."""
    from zoo.nnframes import NNModel

    return NNModel(model=model, feature_preprocessing=source.feature_steps, featuresCol=source.feature_cols,
                   batchSize=batch_per_thread, predictionCol=prediction_col)


def output_shape(model, source: FrameSource) -> tuple:
    """The per-sample shape of the model's (first) output, from one row run on the driver."""
    from zoo.engine.arrow_data import read_columns
    from zoo.nnframes.preprocessing import SampleBuilder, SeqToTensor

    arrays = read_columns(source.df.select(*source.feature_cols).limit(1).toArrow().to_batches(),
                          source.feature_cols)
    steps = source.feature_steps or [SeqToTensor()] * len(source.feature_cols)
    inputs, _ = SampleBuilder(steps, None)([arrays[c] for c in source.feature_cols])
    return tuple(np.asarray(adapter_for(model).predict(model, inputs)).shape[1:])


def predict_frame(model, source: FrameSource, batch_per_thread: int):
    """The source's DataFrame with a `prediction` column (flat array<float>)."""
    return nn_model(model, source, batch_per_thread).transform(source.df)


def evaluate_source(model, loss, source: FrameSource, methods: list[ValidationMethod],
                    batch_size: int) -> dict[str, float]:
    """`methods` of `model` over a FrameSource with labels, keyed by the engine's metric names,
    computed where the data lives (see `zoo.engine.evaluation.evaluate_frame`)."""
    from zoo.nnframes.columns import default_preprocessing
    from zoo.nnframes.nn_estimator import plan_columns

    if source.label_col is None:
        raise ZooValueError("Evaluation needs labels: the data has features only.")
    columns = plan_columns(source.df, source.feature_cols, source.label_col, source.feature_steps,
                           lambda kind: source.label_step or default_preprocessing(kind))
    return evaluate_frame(columns.select(source.df), columns.feature_cols, columns.label_col, model, loss,
                          columns.build(), methods, batch_size)


def evaluate(model, loss, dataset: TFDataset, metrics, batch_per_thread: int) -> dict[str, float]:
    """Loss and `metrics` of `model` over the whole dataset, keyed by Keras' metric names."""
    results = evaluate_source(model, loss, dataset.source, to_validation_methods(metrics, model, loss),
                              batch_per_thread)
    return {keras_name(name): value for name, value in results.items()}
