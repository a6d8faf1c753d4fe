"""Keras 3 adapter: a keras.Model, its Keras loss and optimizer behind the engine's interface.

Works on the TensorFlow and the torch backends of Keras. Keras is imported lazily (never by
`import zoo`), and a model travels to the executors as a `PortableModel`: the backend's name,
the model in Keras' own `.keras` format and its custom classes, so an executor's fresh Python
worker imports Keras on the backend the model was built on.

One module per job:
    backend        which Keras backend runs (and `use_backend`, Keras 3's backend selection)
    detection      whether an object is a Keras 3 model
    serialization  `.keras` files, PortableModel, weights as .npz
    losses         Keras losses
    optimizers     ShardOptimizer and ReplicatedOptimizer over Keras optimizers
    interop        torch <-> backend tensors (DLPack)
    steps          the TensorFlow and torch step engines, chosen once per Trainable
    trainable      the Trainable
    driver         dry_run, predict and the other driver-side helpers

This package re-exports the names of the adapter contract (see `zoo.engine.adapters`).
"""

from __future__ import annotations

from zoo.engine.adapters.keras.backend import SUPPORTED_BACKENDS, is_keras_object, use_backend
from zoo.engine.adapters.keras.detection import is_model, reject_unsupported
from zoo.engine.adapters.keras.driver import dry_run, is_built, predict, predict_all, trainable_count
from zoo.engine.adapters.keras.losses import loss_from_logits, output_kind, resolve_loss, wants_float_targets
from zoo.engine.adapters.keras.optimizers import (
    ReplicatedOptimizer,
    ShardOptimizer,
    build_optimizer,
    check_optim_method,
    default_optimizer,
)
from zoo.engine.adapters.keras.serialization import (
    KERAS_FILE,
    PortableModel,
    assign_weights,
    copy_model,
    custom_objects_of,
    load_model,
    load_model_file,
    load_state_bytes_into,
    portable,
    save_model,
    save_model_file,
    state_bytes_of,
    unwrap,
)
from zoo.engine.adapters.keras.trainable import Trainable

#: This adapter's framework, as `zoo.engine.adapters.framework_of` names it.
FRAMEWORK = "keras"

__all__ = [
    "FRAMEWORK", "KERAS_FILE", "SUPPORTED_BACKENDS", "PortableModel", "ReplicatedOptimizer", "ShardOptimizer",
    "Trainable", "assign_weights", "build_optimizer", "check_optim_method", "copy_model", "custom_objects_of",
    "default_optimizer", "dry_run", "is_built", "is_keras_object", "is_model", "load_model", "load_model_file",
    "load_state_bytes_into", "loss_from_logits", "output_kind", "portable", "predict", "predict_all",
    "reject_unsupported", "resolve_loss", "save_model", "save_model_file", "state_bytes_of", "trainable_count",
    "unwrap", "use_backend", "wants_float_targets",
]
