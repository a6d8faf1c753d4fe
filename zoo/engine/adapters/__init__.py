"""Framework adapters: the only framework-specific code of the engine.

`adapter_for(model)` picks the module. Each adapter module exposes the same names:

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
  `load_state_bytes_into(model, blob)` for the driver side.

Optional, for frameworks whose models do not cloudpickle well (Keras): `portable(model)`, what is
pickled for the executors in place of the model (the adapter's functions accept either), and
`copy_model(model)`; `for_workers` and `copy_model` below fall back to the model itself and to
`copy.deepcopy`.
"""

from __future__ import annotations

from zoo.errors import ZooTypeError


def adapter_for(model):
    """The adapter module for `model` (the one place where the framework is chosen).

    The Keras adapter imports Keras only once it sees a Keras object, so `import zoo` never
    imports TensorFlow or Keras.
    """
    from zoo.engine.adapters import keras as keras_adapter

    if keras_adapter.is_model(model):
        return keras_adapter
    from zoo.engine.adapters import torch as torch_adapter

    if torch_adapter.is_model(model):
        return torch_adapter
    keras_adapter.reject_unsupported(model)
    raise ZooTypeError(
        f"Expected `model` to be a torch.nn.Module or a keras.Model (Keras 3). "
        f"Received: {type(model).__module__}.{type(model).__name__}."
    )


def for_workers(adapter, model):
    """What to pickle for the executors in place of `model` (the adapter's `portable`, if any)."""
    portable = getattr(adapter, "portable", None)
    return portable(model) if portable is not None else model


def copy_model(adapter, model):
    """An independent copy of `model` (the adapter's `copy_model`, else `copy.deepcopy`)."""
    import copy

    copier = getattr(adapter, "copy_model", None)
    return copier(model) if copier is not None else copy.deepcopy(model)
