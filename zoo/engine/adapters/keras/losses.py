"""Keras losses: recognising them, reading their settings, and making one callable of them."""

from __future__ import annotations

from zoo.engine.adapters import LOGITS, PROBABILITIES
from zoo.engine.adapters.keras.backend import is_keras_object, root_module
from zoo.errors import ZooTypeError

#: Keras losses that take float 0/1 targets shaped like a single-output model's output.
BINARY_LOSSES = ("BinaryCrossentropy", "BinaryFocalCrossentropy", "binary_crossentropy",
                 "binary_focal_crossentropy")


def _loss_config(criterion) -> dict:
    get_config = getattr(criterion, "get_config", None)
    return get_config() if callable(get_config) else {}


def loss_from_logits(criterion) -> bool:
    """Whether a Keras loss reads the model's output as logits (`from_logits=True`)."""
    return bool(_loss_config(criterion).get("from_logits", False))


def output_kind(criterion) -> str:
    """What a model trained with `criterion` outputs: logits for a `from_logits` loss, else
    probabilities."""
    return LOGITS if loss_from_logits(criterion) else PROBABILITIES


def wants_float_targets(criterion) -> bool:
    """Whether a Keras loss takes float 0/1 targets (binary cross-entropy) instead of indices."""
    name = criterion if isinstance(criterion, str) else getattr(criterion, "__name__", type(criterion).__name__)
    return name in BINARY_LOSSES


def resolve_loss(criterion):
    """A callable (y_true, y_pred) -> scalar from a Keras loss object, a loss name or a function
    returning per-sample losses (reduced by the mean, as Keras does)."""
    import keras

    if isinstance(criterion, str):
        criterion = keras.losses.get(criterion)
    if isinstance(criterion, keras.losses.Loss):
        return criterion
    if criterion is None or not callable(criterion):
        raise ZooTypeError(
            f"Expected `criterion` to be a Keras loss (keras.losses.MeanSquaredError(), 'mse', or a function "
            f"(y_true, y_pred) -> loss). Received: {criterion!r}."
        )
    if is_keras_object(criterion) is False and root_module(type(criterion)) == "torch":
        raise ZooTypeError(f"A Keras model needs a Keras loss, not a torch criterion. Received: {criterion!r}.")

    def reduced(y_true, y_pred):
        return keras.ops.mean(criterion(y_true, y_pred))

    return reduced
