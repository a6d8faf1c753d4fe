"""Framework adapters: the only framework-specific code of the engine, and the one place where
a model's framework is detected.

`framework_of(model)` names the framework (`"keras"`, `"torch"` or None), `adapter_for(model)`
picks the module that trains it, and `check_framework(model, framework)` guards the APIs made for
one framework; nothing outside this package branches on the framework. Each adapter module
exposes the same names:

- `is_model(obj) -> bool`: whether this adapter trains `obj`.
- `Trainable(model, criterion)`: the model as the loop sees it, with
  `num_params`, `bind_flat(flat_params, flat_grads)` (adopt the engine's flat fp32 torch buffers:
  the weights must be read from `flat_params` at every step and the gradients written into
  `flat_grads`), `train_step(inputs, target, weight, profile=None) -> loss` (inputs/target are
  torch CPU tensors; gradients of `loss * weight` go into `flat_grads`; laps `forward` on the
  `StepProfile` given, after the forward pass where the framework separates it), `evaluate(inputs, target) ->
  (numpy output, summed loss)`, `float_buffers()` (non-trainable float state to average across
  workers, e.g. BatchNorm statistics), `state_bytes()` / `load_state_bytes(blob)`.
- `ShardOptimizer(optim_method, learning_rate, shard_values)`: the user's optimizer over one
  flat shard, with `elementwise`, `step(grad) -> new values`, `set_values`, `state_dict` and
  `load_state_dict` (torch.optim's format: {"state": {0: {name: tensor of shard length or
  scalar}}, "param_groups": [...]}, so checkpoints can re-shard it).
- `ReplicatedOptimizer(optim_method, learning_rate, trainable)`: the full optimizer on every
  worker, with `step(closure) -> loss` (the closure computes the reduced gradient into the flat
  buffer and returns the loss), `state_dict`, `load_state_dict`.
- `dry_run(model, criterion, inputs, target) -> numpy output`, `predict(model, inputs) -> numpy`,
  `is_built(model) -> bool` (whether its weights exist: a lazy or unbuilt model gets them from
  `dry_run`), `trainable_count(model) -> int` (elements the optimizer would update), `state_bytes_of(model)`,
  `load_state_bytes_into(model, blob)` and `assign_weights(target, source)` (a fitted model's
  weights into the caller's model of the same architecture) for the driver side.

- `FRAMEWORK`: the framework's name, as `framework_of` returns it (`"torch"`, `"keras"`).
- `output_kind(criterion) -> str`: what the model's output is, judged from the loss it is trained
  with: `LOGITS`, `LOG_PROBABILITIES` or `PROBABILITIES` (NNClassifier reads its output so).
- `wants_float_targets(criterion) -> bool`: whether the loss takes float 0/1 targets shaped like
  the output (binary cross-entropy) instead of class indices.
- `default_optimizer()`: the `optimMethod` a fit uses when none is given (the framework's SGD).
- `check_optim_method(optim_method, learning_rate)`: refuse, on the driver, an `optimMethod` this
  framework cannot use (another framework's optimizer), naming the fix.
- `predict_all(model, inputs) -> list of numpy`: every output of one batch in inference mode
  (`predict` returns the first).
- `save_model(model, folder) -> picklable` writes the model's own files into `folder` and returns
  what is pickled beside them in place of the model; `load_model(folder, pickled) -> model`
  rebuilds it (nnframes' Spark ML persistence).

Optional, for frameworks whose models do not cloudpickle well (Keras): `portable(model)`, what is
pickled for the executors in place of the model (the adapter's functions accept either),
`unwrap(shipped)`, the framework's model inside it, and `copy_model(model)`; `for_workers`,
`from_workers` and `copy_model` below fall back to the model itself and to `copy.deepcopy`.
"""

from __future__ import annotations

import importlib

from zoo.errors import ZooTypeError

#: How a classifier's raw output reads as probabilities (an adapter's `output_kind`).
LOGITS, LOG_PROBABILITIES, PROBABILITIES = "logits", "log_probabilities", "probabilities"
#: The frameworks with an adapter, in the order they are tried (Keras first: a Keras 3 model on
#: the torch backend is also a torch.nn.Module).
FRAMEWORKS = ("keras", "torch")
#: What a model of each framework is, for error messages.
MODEL_TYPES = {"keras": "keras.Model (Keras 3)", "torch": "torch.nn.Module"}


def flat_outputs(output) -> list:
    """A model's outputs as a flat list: tuples, lists and dicts (by their order) flattened."""
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for part in output for t in flat_outputs(part)]
    return [output]


def adapter_named(framework: str):
    """The adapter module of `framework` (one of `FRAMEWORKS`)."""
    if framework not in FRAMEWORKS:
        raise ZooTypeError(f"Expected a framework in {FRAMEWORKS}. Received: {framework!r}.")
    return importlib.import_module(f"zoo.engine.adapters.{framework}")


def _trained_framework(model) -> str | None:
    """The framework whose adapter trains `model`, or None."""
    for framework in FRAMEWORKS:
        if adapter_named(framework).is_model(model):
            return framework
    return None


def framework_of(model) -> str | None:
    """The framework `model` belongs to, `"keras"` or `"torch"` (a torch.export.ExportedProgram
    counts as torch, for inference), or None for anything else: the one framework detection.

    The Keras adapter imports Keras only once it sees a Keras object, so `import zoo` never
    imports TensorFlow or Keras. Keras 2 (tf_keras) models are not Keras models here: Zoo trains
    and runs Keras 3 (`adapter_for` says how to rebuild one).
    """
    framework = _trained_framework(model)
    if framework is None and adapter_named("torch").is_program(model):
        return "torch"
    return framework


def adapter_for(model):
    """The adapter module that trains `model` (a torch.nn.Module or a keras.Model).

    Raises:
        ZooTypeError: `model` is neither; names what to do instead for TensorFlow 1 graphs,
            tf.Modules and Keras 2 models.
    """
    framework = _trained_framework(model)
    if framework is not None:
        return adapter_named(framework)
    adapter_named("keras").reject_unsupported(model)
    raise ZooTypeError(
        f"Expected `model` to be a torch.nn.Module or a keras.Model (Keras 3). "
        f"Received: {type(model).__module__}.{type(model).__name__}."
    )


def check_framework(model, framework: str):
    """`model`, checked to be a model of `framework`, for the APIs made for one framework
    (tfpark and Orca's tf2 Estimator take Keras models).

    Raises:
        ZooTypeError: `model` is not one; names what was received (and what to do instead for
            TensorFlow 1 graphs, tf.Modules and Keras 2 models).
    """
    found = _trained_framework(model)
    if found != framework:
        if found is None:
            adapter_named("keras").reject_unsupported(model)
        raise ZooTypeError(f"Expected a {MODEL_TYPES[framework]}. Received: "
                           f"{type(model).__module__}.{type(model).__name__}.")
    return model


def for_workers(adapter, model):
    """What to pickle for the executors in place of `model` (the adapter's `portable`, if any)."""
    portable = getattr(adapter, "portable", None)
    return portable(model) if portable is not None else model


def from_workers(adapter, shipped):
    """The framework's own model inside what `for_workers` made (the adapter's `unwrap`, if any)."""
    unwrap = getattr(adapter, "unwrap", None)
    return unwrap(shipped) if unwrap is not None else shipped


def copy_model(adapter, model):
    """An independent copy of `model` (the adapter's `copy_model`, else `copy.deepcopy`)."""
    import copy

    copier = getattr(adapter, "copy_model", None)
    return copier(model) if copier is not None else copy.deepcopy(model)
