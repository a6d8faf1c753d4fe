"""The Keras adapter's driver side: checking a model on a few samples, and predicting with it."""

from __future__ import annotations

import numpy as np

from zoo.engine.adapters import flat_outputs
from zoo.engine.adapters.keras.backend import to_numpy
from zoo.engine.adapters.keras.losses import resolve_loss
from zoo.engine.adapters.keras.serialization import unwrap
from zoo.engine.adapters.keras.steps import first_output, model_input
from zoo.errors import ZooValueError


def _check_inputs(model, inputs: list[np.ndarray]) -> None:
    """Compare the arrays' per-sample shapes with the model's declared inputs, if it has any."""
    try:
        declared = model.inputs
    except (AttributeError, ValueError):
        return
    if not declared:
        return
    expected = [tuple(d for d in t.shape[1:]) for t in declared]
    received = [tuple(x.shape[1:]) for x in inputs]
    fits = len(expected) == len(received) and all(
        len(e) == len(r) and all(a is None or a == b for a, b in zip(e, r)) for e, r in zip(expected, received))
    if not fits:
        raise ZooValueError(
            f"The Keras model expects {len(expected)} input(s) with per-sample shapes "
            f"{[list(e) for e in expected]}, but the data gives {len(received)} input(s) with per-sample shapes "
            f"{[list(r) for r in received]}. Give one feature column per model input, in the model's input "
            f"order, with a preprocessing (e.g. SeqToTensor(shape)) that yields those shapes."
        )


def dry_run(model, criterion, inputs: list[np.ndarray], target: np.ndarray | None) -> np.ndarray:
    """Forward a few samples (and the loss on them, given a target) without touching the
    model's state."""
    model = unwrap(model)
    _check_inputs(model, inputs)
    output = model(model_input(list(inputs)), training=False)
    if target is not None:
        float(to_numpy(resolve_loss(criterion)(target, output)))
    return to_numpy(first_output(output)).astype(np.float32)


def is_built(model) -> bool:
    """Whether `model` has its weights (a Keras model without an input shape builds on its first call)."""
    return bool(unwrap(model).built)


def trainable_count(model) -> int:
    """Elements in the trainable variables of `model` (built: `dry_run` builds it)."""
    return sum(int(np.prod(v.shape)) for v in unwrap(model).trainable_variables)


def predict(model, inputs: list[np.ndarray]) -> np.ndarray:
    """Outputs of `model` in inference mode for one batch of numpy inputs."""
    output = unwrap(model).predict_on_batch(model_input(list(inputs)))
    return np.asarray(first_output(output), dtype=np.float32)


def predict_all(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Every output of `model` (lists and dicts flattened in order) in inference mode for one
    batch of numpy inputs."""
    return [np.asarray(to_numpy(t)) for t in flat_outputs(unwrap(model).predict_on_batch(model_input(list(inputs))))]
