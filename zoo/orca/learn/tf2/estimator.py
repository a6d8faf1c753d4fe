"""`Estimator.from_keras`: Orca's TF2 Estimator, training a compiled Keras 3 model through nnframes
on Zoo's engine."""

from __future__ import annotations

from zoo.engine.adapters import check_framework
from zoo.errors import ZooTypeError, ZooValueError
from zoo.orca.learn.spark_estimator import SparkEstimator
from zoo.tfpark import training

#: fit options of Orca's Ray TF2 Estimator that change training and that Zoo does not run.
UNSUPPORTED_FIT_OPTIONS = ("callbacks", "class_weight", "steps_per_epoch", "validation_steps")


class TF2SparkEstimator(SparkEstimator):
    """Orca's TF2 Estimator on Spark; create it with `Estimator.from_keras`. Metrics are reported
    under Keras' names ("loss", "accuracy", "mae", "auc")."""

    def _metric_name(self, name: str) -> str:
        return training.keras_name(name)

    def fit(self, data, epochs: int = 1, batch_size: int = 32, verbose=1, callbacks=None, validation_data=None,
            class_weight=None, steps_per_epoch=None, validation_steps=None, validation_freq=1, data_config=None,
            feature_cols=None, label_cols=None, checkpoint_trigger=None):
        """Train as `SparkEstimator.fit` does and return Keras' History.history of this fit
        (per-epoch mean "loss", "val_*" metrics with validation_data).

        verbose, validation_freq and data_config are accepted for Orca scripts and change nothing
        (validation runs every epoch); callbacks, class_weight, steps_per_epoch and
        validation_steps are refused.
        """
        given = {"callbacks": callbacks, "class_weight": class_weight, "steps_per_epoch": steps_per_epoch,
                 "validation_steps": validation_steps}
        refused = sorted(name for name in UNSUPPORTED_FIT_OPTIONS if given[name] is not None)
        if refused:
            raise ZooValueError(f"fit options {refused} are not supported on Spark: an epoch is one pass over "
                                f"the data, and Keras callbacks would run on every worker. Drop them.")
        before = len(self.history)
        super().fit(data, epochs=epochs, batch_size=batch_size, feature_cols=feature_cols, label_cols=label_cols,
                    validation_data=validation_data, checkpoint_trigger=checkpoint_trigger)
        return training.keras_history(self.history[before:])


class Estimator:
    """Analytics Zoo Orca's ``zoo.orca.learn.tf2.Estimator``."""

    @staticmethod
    def from_keras(*, model_creator=None, model=None, config: dict | None = None, verbose: bool = False,
                   workers_per_node: int = 1, compile_args_creator=None, backend: str = "tf2",
                   cpu_binding: bool = False, model_dir: str | None = None) -> TF2SparkEstimator:
        """An Estimator that trains a compiled keras.Model on Spark with its own loss, optimizer
        and metrics.

        Args:
            model_creator: ``config -> keras.Model``, compiled (or compiled by
                `compile_args_creator`), as Orca takes it.
            model: the keras.Model itself, instead of a creator.
            config: the dict given to the creators.
            compile_args_creator: ``config -> dict`` of ``model.compile`` arguments.
            backend: "tf2" (Orca's default), "horovod" or "ray": batch_size is each worker's
                batch; "spark": batch_size is the global batch. All run on Zoo's engine.
            model_dir: where checkpoints go (every epoch unless fit's checkpoint_trigger says
                otherwise).
            verbose, workers_per_node, cpu_binding: Orca's Ray options; on Spark every task slot
                is a worker, so they change nothing.
        """
        if (model is None) == (model_creator is None):
            raise ZooValueError("Give exactly one of `model_creator` (config -> compiled keras.Model) and `model`.")
        config = dict(config or {})
        if model is None:
            if not callable(model_creator):
                raise ZooTypeError(f"Expected `model_creator` to be a function config -> keras.Model. "
                                   f"Received: {type(model_creator).__name__}.")
            model = model_creator(config)
        model = check_framework(model, "keras")
        if compile_args_creator is not None:
            model.compile(**compile_args_creator(config))
        loss, optimizer, metrics = training.compiled_parts(model)
        return TF2SparkEstimator(model, loss, optimizer, metrics, model_dir, backend, config=config)
