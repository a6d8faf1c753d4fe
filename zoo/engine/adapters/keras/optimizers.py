"""Keras optimizers behind the engine's two optimizer roles: `ShardOptimizer` over one worker's
shard of the flat parameters, `ReplicatedOptimizer` over the whole model on every worker, with
their state in torch.optim's layout so checkpoints can re-shard it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from zoo.engine.adapters.keras.backend import backend_name, compiled, root_module, to_numpy
from zoo.engine.adapters.keras.interop import as_torch, tf_view
from zoo.errors import ZooTypeError, ZooValueError

if TYPE_CHECKING:
    from zoo.engine.adapters.keras.trainable import Trainable

logger = logging.getLogger(__name__)

#: Keras optimizers whose update of an element depends only on that element's gradient and state:
#: they can run on a shard of the flat parameter vector and give the same result as on the whole.
ELEMENTWISE_OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam",
                          "Ftrl", "Lion")
#: The name of the shard variable (Keras names optimizer slots after it).
SHARD_VARIABLE = "zoo_shard"


def default_optimizer():
    """The `optimMethod` of a fit that names none: keras.optimizers.SGD."""
    import keras

    return keras.optimizers.SGD


def build_optimizer(optim_method, learning_rate: float):
    """A fresh Keras optimizer from a Keras optimizer (its configuration is copied), a Keras
    optimizer class or name (given `learning_rate`), or a zero-argument factory; None is
    `default_optimizer()`."""
    import keras

    if optim_method is None:
        optim_method = default_optimizer()
    if isinstance(optim_method, keras.optimizers.Optimizer):
        return type(optim_method).from_config(optim_method.get_config())
    if isinstance(optim_method, str):
        return type(keras.optimizers.get(optim_method)).from_config({"learning_rate": learning_rate})
    if isinstance(optim_method, type):
        if issubclass(optim_method, keras.optimizers.Optimizer):
            return optim_method(learning_rate=learning_rate)
        if root_module(optim_method) == "torch":
            raise ZooTypeError(
                f"A Keras model needs a Keras optimizer, not torch.optim.{optim_method.__name__}. Give "
                f"optimMethod a Keras optimizer, e.g. keras.optimizers.{optim_method.__name__}("
                f"learning_rate={learning_rate}), or leave it unset for keras.optimizers.SGD.")
    if callable(optim_method) and not isinstance(optim_method, type):
        optimizer = optim_method()
        if isinstance(optimizer, keras.optimizers.Optimizer):
            return optimizer
        raise ZooTypeError(f"Expected `optimMethod` to return a keras.optimizers.Optimizer. "
                           f"Received: {type(optimizer).__name__}.")
    raise ZooTypeError(
        f"Expected `optimMethod` for a Keras model to be a keras.optimizers.Optimizer (instance or class), its "
        f"name ('adam') or a zero-argument factory. "
        f"Received: {optim_method!r}."
    )


def check_optim_method(optim_method, learning_rate: float) -> None:
    """Refuse on the driver an `optimMethod` a Keras model cannot use, by building it once there
    (a Keras optimizer is cheap to make; the workers make their own)."""
    build_optimizer(optim_method, learning_rate)


def is_elementwise(optimizer) -> bool:
    """Whether `optimizer` can update a shard of the flat parameters on its own."""
    return (type(optimizer).__name__ in ELEMENTWISE_OPTIMIZERS and root_module(type(optimizer)) == "keras"
            and optimizer.clipnorm is None and optimizer.global_clipnorm is None and not optimizer.use_ema
            and not getattr(optimizer, "_exclude_from_weight_decay", None)
            and not getattr(optimizer, "_exclude_from_weight_decay_pattern", None))


def _optimizer_state(optimizer) -> dict:
    """torch.optim-style state: arrays as tensors, scalars as Python numbers."""
    state = {}
    for i, variable in enumerate(optimizer.variables):
        key = variable.name if variable.name not in state else f"{variable.name}:{i}"
        value = to_numpy(variable.value)
        state[key] = value.item() if value.ndim == 0 else torch.from_numpy(value.copy())
    return {"state": {0: state} if state else {},
            "param_groups": [{"params": [0], "optimizer": type(optimizer).__name__}]}


def _load_optimizer_state(optimizer, saved: dict) -> None:
    values = saved["state"].get(0, {})
    for i, variable in enumerate(optimizer.variables):
        key = variable.name if variable.name in values else f"{variable.name}:{i}"
        if key not in values:
            raise ZooValueError(f"The checkpoint's optimizer state has no `{variable.name}`; it was saved by "
                                f"another optimizer ({saved['param_groups'][0].get('optimizer')}).")
        value = values[key]
        value = value.numpy() if torch.is_tensor(value) else np.asarray(value)
        variable.assign(value.astype(to_numpy(variable.value).dtype).reshape(tuple(variable.shape)))


class ShardOptimizer:
    """The user's Keras optimizer over one worker's shard of the flat parameters (one
    keras.Variable of shard length); only element-wise optimizers give the same update on a
    shard as on the whole model (see `elementwise`)."""

    def __init__(self, optim_method, learning_rate: float, values: torch.Tensor):
        import keras

        self.optimizer = build_optimizer(optim_method, learning_rate)
        self.variable = keras.Variable(values.detach().numpy().copy(), dtype="float32", name=SHARD_VARIABLE)
        self.optimizer.build([self.variable])
        # An optimizer update is a chain of element-wise passes over the shard: XLA fuses them
        # (twice as fast on a 0.7M-element shard), as Keras' own fit does.
        self._jit = True
        self._apply = compiled(self._update, jit_compile=True)
        # On TensorFlow the rows are read in place (DLPack); on torch they are the backend's tensors.
        self._view = tf_view if backend_name() == "tensorflow" else (lambda part: part)

    def _update(self, grad_parts):
        import keras

        grad = grad_parts[0]
        for part in grad_parts[1:]:
            grad = keras.ops.add(grad, part)
        self.optimizer.apply([grad], [self.variable])

    @property
    def elementwise(self) -> bool:
        """Whether this optimizer can run on a shard."""
        return is_elementwise(self.optimizer)

    def step(self, grad_parts: torch.Tensor) -> torch.Tensor:
        """Apply the shard's gradient, the sum over the first axis of `grad_parts` (one row per
        worker, or a single row already summed); return the updated shard values.

        On TensorFlow the rows are read in place and summed inside the compiled update, in the
        same pass over memory as the optimizer's arithmetic."""
        parts = [self._view(part) for part in grad_parts]
        try:
            self._apply(parts)
        except Exception as exc:  # XLA compiles before running, so nothing was updated yet
            if not self._jit:
                raise
            logger.warning("XLA cannot compile the %s update (%s); running it without XLA",
                           type(self.optimizer).__name__, exc)
            self._jit, self._apply = False, compiled(self._update)
            self._apply(parts)
        return as_torch(self.variable.value)

    def set_values(self, values: torch.Tensor) -> None:
        """Overwrite the shard's values (after loading a checkpoint)."""
        self.variable.assign(values.detach().numpy())

    def state_dict(self) -> dict:
        """Optimizer state in torch.optim's layout: slot tensors have the shard's length."""
        return _optimizer_state(self.optimizer)

    def load_state_dict(self, state: dict) -> None:
        """Load what `state_dict` returned (re-sharded by the engine)."""
        _load_optimizer_state(self.optimizer, state)


class ReplicatedOptimizer:
    """The user's Keras optimizer over all of the model's variables, run identically on every
    worker (for optimizers that need whole tensors: Lamb, clipnorm, global_clipnorm, EMA)."""

    def __init__(self, optim_method, learning_rate: float, trainable: "Trainable"):
        self.trainable = trainable
        self.optimizer = build_optimizer(optim_method, learning_rate)
        self.optimizer.build(trainable.trainable)

    def step(self, closure) -> float:
        """`closure` leaves the reduced gradient in the flat buffer; apply it to every variable."""
        loss = closure()
        self.trainable.apply_optimizer(self.optimizer)
        return float(loss)

    def state_dict(self) -> dict:
        """Optimizer state in torch.optim's layout."""
        return _optimizer_state(self.optimizer)

    def load_state_dict(self, state: dict) -> None:
        """Load what `state_dict` returned."""
        _load_optimizer_state(self.optimizer, state)
