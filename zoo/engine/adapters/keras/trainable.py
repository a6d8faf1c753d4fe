"""The Keras Trainable: a keras.Model and its loss as the engine's training loop sees it.

Training is stateless: the engine's flat fp32 torch buffer holds the trainable weights, and each
step runs `model.stateless_call` on views of it (see `steps`), and each variable's gradient is
copied into its place in the engine's flat gradient buffer. Non-trainable float state
(BatchNormalization moving statistics) lives in torch tensors the engine averages across workers.
"""

from __future__ import annotations

import numpy as np
import torch

from zoo.engine.adapters.keras.backend import to_numpy
from zoo.engine.adapters.keras.interop import as_torch
from zoo.engine.adapters.keras.losses import resolve_loss
from zoo.engine.adapters.keras.serialization import load_state_bytes_into, state_bytes_of, unwrap
from zoo.engine.adapters.keras.steps import model_input, steps_for
from zoo.errors import ZooValueError


class Trainable:
    """A keras.Model with its loss, as the training loop sees it.

    Args:
        model: a keras.Model or PortableModel (a private copy; its variables are overwritten).
        criterion: a Keras loss, loss name or function (y_true, y_pred) -> loss.
    """

    def __init__(self, model, criterion):
        self.model = unwrap(model)
        if not self.model.built:
            raise ZooValueError("The Keras model has no weights yet. Build it first: call it on a batch, or "
                                "model.build(input_shape), or give it a keras.Input.")
        self.loss = resolve_loss(criterion)
        self.trainable = list(self.model.trainable_variables)
        self.shapes = [tuple(int(d) for d in v.shape) for v in self.trainable]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.state_variables = list(self.model.non_trainable_variables)
        self._float_index = [i for i, v in enumerate(self.state_variables) if "float" in str(v.dtype)]
        self._float_state = [torch.from_numpy(to_numpy(self.state_variables[i].value).astype(np.float32).copy())
                             for i in self._float_index]
        self._other_state = {i: v.value for i, v in enumerate(self.state_variables) if i not in self._float_index}
        # The step engine is chosen here, once: it also makes the backend's tensors for every step.
        self._steps = steps_for(self.model, self.loss, self.sizes, self.shapes)
        self._params = torch.from_numpy(self._read_variables())
        self._grads = torch.zeros(self.num_params)

    @property
    def num_params(self) -> int:
        """Elements in the trainable variables."""
        return sum(self.sizes)

    def _read_variables(self) -> np.ndarray:
        if not self.trainable:
            return np.zeros(0, np.float32)
        return np.concatenate([to_numpy(v.value).astype(np.float32).reshape(-1) for v in self.trainable])

    def bind_flat(self, flat_params: torch.Tensor, flat_grads: torch.Tensor) -> None:
        """Adopt the engine's flat buffers: the weights are read from `flat_params` every step."""
        flat_params[: self.num_params].copy_(self._params)
        self._params = flat_params[: self.num_params]
        self._grads = flat_grads[: self.num_params]

    def float_buffers(self) -> list[torch.Tensor]:
        """Non-trainable float variables (BatchNormalization moving statistics), averaged by the engine."""
        return self._float_state

    def _state_values(self) -> list:
        floats = dict(zip(self._float_index, self._float_state))
        return [self._steps.tensor(floats[i]) if i in floats else self._other_state[i]
                for i in range(len(self.state_variables))]

    def _store_state(self, values) -> None:
        floats = dict(zip(self._float_index, self._float_state))
        for i, value in enumerate(values):
            if i in floats:
                floats[i].copy_(as_torch(value).reshape(floats[i].shape))
            else:
                self._other_state[i] = value

    def _xy(self, inputs, target):
        x = model_input([self._steps.tensor(t) for t in inputs])
        return x, None if target is None else self._steps.tensor(target)

    def train_step(self, inputs: list[torch.Tensor], target: torch.Tensor, weight: float, profile=None) -> float:
        """Forward and backward on one local batch; the gradient of `loss * weight` goes into the
        flat gradient buffer. Returns the unscaled batch loss. Forward and backward are one
        compiled call, so both are lapped as `forward` on `profile` (a `StepProfile`)."""
        x, y = self._xy(inputs, target)
        loss, new_state = self._steps.train(self._params, self._grads, self._state_values(), x, y, weight)
        self._store_state(new_state)
        if profile is not None:
            profile.lap("forward")
        return loss

    def evaluate(self, inputs: list[torch.Tensor], target: torch.Tensor) -> tuple[np.ndarray, float]:
        """Outputs of one batch in inference mode and the loss summed over the batch."""
        x, y = self._xy(inputs, target)
        output, loss = self._steps.infer(self._params, self._state_values(), x, y)
        return output, loss * len(target)

    def sync_to_model(self) -> None:
        """Write the flat weights and the state into the keras.Model's variables."""
        for variable, value in zip(self.trainable, torch.split(self._params, self.sizes)):
            variable.assign(value.reshape(tuple(variable.shape)).numpy())
        for variable, value in zip(self.state_variables, self._state_values()):
            variable.assign(value)

    def apply_optimizer(self, optimizer) -> None:
        """Apply `optimizer` to the model's variables with the flat gradient (replicated mode)."""
        self.sync_to_model()
        grads = [self._steps.tensor(g.reshape(s).clone()) for g, s in zip(torch.split(self._grads, self.sizes),
                                                                        self.shapes)]
        optimizer.apply(grads, self.trainable)
        self._params.copy_(torch.from_numpy(self._read_variables()))

    def state_bytes(self) -> bytes:
        """The model's weights (trainable and state), serialized."""
        self.sync_to_model()
        return state_bytes_of(self.model)

    def load_state_bytes(self, blob: bytes) -> None:
        """Load weights saved by `state_bytes` into the model and the flat buffer."""
        load_state_bytes_into(self.model, blob)
        self._params.copy_(torch.from_numpy(self._read_variables()))
        self._store_state([v.value for v in self.state_variables])
