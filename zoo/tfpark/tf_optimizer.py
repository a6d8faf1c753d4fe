"""TFOptimizer: distributed training of a Keras model with its loss (or a custom one), with
checkpoints and resume, as Analytics Zoo's tfpark.TFOptimizer on TensorFlow 2. ``model_dir`` is a
path or URL (see `zoo.storage`)."""

from __future__ import annotations

import uuid

from zoo import storage
from zoo.engine import checkpoint as ckpt
from zoo.engine.adapters import adapter_for, check_framework
from zoo.engine.triggers import EveryEpoch, MaxEpoch, check_trigger
from zoo.errors import ZooTypeError, ZooValueError
from zoo.tfpark import training
from zoo.tfpark.tf_dataset import TFDataset


class TFOptimizer:
    """Trains `model` with `loss` and `optim_method` on a TFDataset; build it with `from_keras`
    or `from_loss`.

    Attributes:
        model: the keras.Model (its weights are updated by `optimize`).
        history: the engine's history of the last `optimize`.
    """

    def __init__(self, model, loss, optim_method, dataset: TFDataset, metrics=None, model_dir: str | None = None):
        if not isinstance(dataset, TFDataset):
            raise ZooTypeError(f"Expected `dataset` to be a zoo.tfpark.TFDataset. Received: {type(dataset).__name__}.")
        self.model = check_framework(model, "keras")
        self.loss = loss
        self.optim_method = optim_method
        self.dataset = dataset
        self.metrics = metrics
        self.model_dir = model_dir
        self.history: list[dict] = []
        self._resume_from: str | None = None

    @classmethod
    def from_keras(cls, keras_model, dataset: TFDataset, optimizer=None, metrics=None,
                   model_dir: str | None = None) -> "TFOptimizer":
        """Train a compiled keras.Model with its compiled loss; `optimizer` (default: the compiled
        one) and `metrics` (default: the compiled ones, reported on the validation data)."""
        loss, compiled_optimizer, compiled_metrics = training.compiled_parts(check_framework(keras_model, "keras"))
        return cls(keras_model, loss, optimizer or compiled_optimizer, dataset,
                   compiled_metrics if metrics is None else metrics, model_dir)

    @classmethod
    def from_loss(cls, loss_fn, optim_method, *, model, dataset: TFDataset, metrics=None,
                  model_dir: str | None = None) -> "TFOptimizer":
        """Train `model` (need not be compiled) with a custom loss `loss_fn(y_true, y_pred)`
        (per-sample values are averaged, as Keras does) and a Keras optimizer."""
        if not callable(loss_fn):
            raise ZooTypeError(f"Expected `loss_fn` to be a callable (y_true, y_pred) -> loss. Received: {loss_fn!r}.")
        return cls(model, loss_fn, optim_method, dataset, metrics, model_dir)

    def load_checkpoint(self, path: str, version: int) -> None:
        """Load the weights of checkpoint `version` (its iteration) under `path` (a path or URL) into
        the model; the next `optimize` continues from it (optimizer state and position included)."""
        name = f"{ckpt.PREFIX}{int(version):09d}"
        available = ckpt.checkpoint_names(path)
        if name not in available:
            raise ZooValueError(f"No checkpoint version {version} under {path!r}. Available versions: "
                                f"{[int(n[len(ckpt.PREFIX):]) for n in available]}.")
        directory = storage.join(storage.resolve(path), name)
        _, model_state, _ = ckpt.load_checkpoint(directory)
        adapter_for(self.model).load_state_bytes_into(self.model, model_state)
        self._resume_from = directory

    def _checkpoint_config(self, trigger) -> tuple[dict | None, str | None]:
        """(NNEstimator.setCheckpoint kwargs, staging dir to move back into model_dir)."""
        target = self.model_dir
        if self._resume_from is None:
            return ({"path": target, "trigger": trigger} if target else None), None
        target = storage.resolve(target) if target else storage.parent(self._resume_from)
        if ckpt.latest_checkpoint(target) == self._resume_from:
            return {"path": target, "trigger": trigger, "resume": True}, None
        # Resume from an older version: the engine resumes from the latest checkpoint of a
        # directory, so stage the requested one alone in a hidden directory beside the others.
        staging = storage.join(target, f".resume-{uuid.uuid4().hex}")
        _copy_checkpoint(self._resume_from, storage.join(staging, storage.basename(self._resume_from)))
        return {"path": staging, "trigger": trigger, "resume": True}, staging

    def optimize(self, end_trigger=None, checkpoint_trigger=None, show_progress: bool = False) -> None:
        """Train until `end_trigger` (default MaxEpoch(1)); with a model_dir, checkpoint there
        whenever `checkpoint_trigger` (default EveryEpoch()) fires."""
        end_trigger = check_trigger("end_trigger", end_trigger or MaxEpoch(1))
        checkpoint_trigger = check_trigger("checkpoint_trigger", checkpoint_trigger or EveryEpoch())
        checkpoint, staging = self._checkpoint_config(checkpoint_trigger)
        try:
            self.history = training.train(self.model, self.loss, self.optim_method, self.dataset,
                                          self.dataset.training_batch_size(), end_trigger, self.metrics,
                                          checkpoint=checkpoint, show_progress=show_progress).history
            if staging is not None:
                target = storage.parent(staging)
                for name in ckpt.checkpoint_names(staging):
                    if name != storage.basename(self._resume_from):
                        _copy_checkpoint(storage.join(staging, name), storage.join(target, name))
        finally:
            if staging is not None:
                storage.remove(staging)
        self._resume_from = None


def _copy_checkpoint(source: str, target: str) -> None:
    """Copy one checkpoint directory, committed atomically (meta.json last) at `target`."""
    with storage.staged(target, marker=ckpt.META_FILE) as folder:
        storage.download(source, folder)
