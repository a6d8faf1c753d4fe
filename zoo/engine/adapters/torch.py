"""PyTorch adapter: a torch.nn.Module, its criterion and optimizer behind the engine's interface."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch

from zoo.engine.adapters import LOG_PROBABILITIES, LOGITS, PROBABILITIES, flat_outputs
from zoo.errors import ZooTypeError

#: This adapter's framework, as `zoo.engine.adapters.framework_of` names it.
FRAMEWORK = "torch"
#: The file `save_model` writes: the model's state_dict in safetensors (language-neutral).
WEIGHTS_FILE = "weights.safetensors"
#: Optimizers whose update of an element depends only on that element's gradient and state:
#: they can run on a shard of the flat parameter vector and give the same result as on the whole.
ELEMENTWISE_OPTIMIZERS = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adagrad,
    torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam, torch.optim.Adadelta, torch.optim.Rprop,
)


def is_model(obj) -> bool:
    """Whether this adapter trains `obj`."""
    return isinstance(obj, torch.nn.Module)


def is_program(obj) -> bool:
    """Whether `obj` is a torch.export.ExportedProgram (inference only: it does not train)."""
    return isinstance(obj, torch.export.ExportedProgram)


def output_kind(criterion) -> str:
    """What a model trained with `criterion` outputs: logits for CrossEntropyLoss and
    BCEWithLogitsLoss, log-probabilities for NLLLoss, else probabilities."""
    if isinstance(criterion, (torch.nn.CrossEntropyLoss, torch.nn.BCEWithLogitsLoss)):
        return LOGITS
    if isinstance(criterion, torch.nn.NLLLoss):
        return LOG_PROBABILITIES
    return PROBABILITIES


def wants_float_targets(criterion) -> bool:
    """Binary cross-entropy losses take float 0/1 targets shaped like the output, not indices."""
    return isinstance(criterion, (torch.nn.BCELoss, torch.nn.BCEWithLogitsLoss))


def default_optimizer():
    """The `optimMethod` of a fit that names none: torch.optim.SGD."""
    return torch.optim.SGD


def build_optimizer(optim_method, params, learning_rate: float) -> torch.optim.Optimizer:
    """An optimizer over `params` from a torch.optim.Optimizer class (given `lr`) or a factory."""
    if isinstance(optim_method, type) and issubclass(optim_method, torch.optim.Optimizer):
        return optim_method(params, lr=learning_rate)
    optimizer = optim_method(params)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"Expected `optimMethod` to return a torch.optim.Optimizer. Received: {type(optimizer).__name__}."
        )
    return optimizer


def check_optim_method(optim_method, learning_rate: float) -> None:
    """Refuse on the driver an `optimMethod` a torch model cannot use (a Keras optimizer, or
    something that is neither an optimizer class nor a factory), naming the fix."""
    if optim_method is None or (isinstance(optim_method, type) and issubclass(optim_method, torch.optim.Optimizer)):
        return
    kind = optim_method if isinstance(optim_method, type) else type(optim_method)
    if kind.__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow"):
        raise ZooTypeError(
            f"A torch model needs a torch optimizer, not {kind.__module__}.{kind.__name__}. Give optimMethod a "
            f"torch.optim.Optimizer class (e.g. torch.optim.{kind.__name__} with learningRate={learning_rate}) or "
            f"a factory params -> optimizer, or leave it unset for torch.optim.SGD.")
    if not callable(optim_method):
        raise ZooTypeError(f"Expected `optimMethod` to be a torch.optim.Optimizer class or a factory params -> "
                           f"optimizer. Received: {optim_method!r}.")


def is_elementwise(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer` can update a shard of the flat parameters on its own."""
    return type(optimizer) in ELEMENTWISE_OPTIMIZERS and len(optimizer.param_groups) == 1


class ShardOptimizer:
    """The user's optimizer over one worker's shard of the flat parameters.

    Only element-wise optimizers (see `elementwise`) give the same update on a shard as on the
    whole vector; the loop falls back to `ReplicatedOptimizer` for the others.
    """

    def __init__(self, optim_method, learning_rate: float, values: torch.Tensor):
        self.param = torch.nn.Parameter(values.detach().clone())
        self.optimizer = build_optimizer(optim_method, [self.param], learning_rate)

    @property
    def elementwise(self) -> bool:
        """Whether this optimizer can run on a shard."""
        return is_elementwise(self.optimizer)

    def step(self, grad_parts: torch.Tensor) -> torch.Tensor:
        """Apply the shard's gradient, the sum over the first axis of `grad_parts` (one row per
        worker, or a single row already summed); return the updated shard values (a tensor to send)."""
        self.param.grad = grad_parts[0] if len(grad_parts) == 1 else grad_parts.sum(dim=0)
        self.optimizer.step()
        return self.param.data

    def set_values(self, values: torch.Tensor) -> None:
        """Overwrite the shard's values (after loading a checkpoint)."""
        self.param.data.copy_(values)

    def state_dict(self) -> dict:
        """torch.optim state: per-element tensors have the shard's length."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Load what `state_dict` returned."""
        self.optimizer.load_state_dict(state)


class ReplicatedOptimizer:
    """The user's optimizer over all of the model's parameters, run identically on every worker."""

    def __init__(self, optim_method, learning_rate: float, trainable: "Trainable"):
        self.optimizer = build_optimizer(optim_method, trainable.trainable, learning_rate)

    def step(self, closure) -> float:
        """One optimizer step; `closure` computes the globally reduced gradient and returns the loss."""
        return float(self.optimizer.step(lambda: torch.tensor(closure())))

    def state_dict(self) -> dict:
        """torch.optim state."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Load what `state_dict` returned."""
        self.optimizer.load_state_dict(state)


class Trainable:
    """A torch model with its criterion, as the training loop sees it.

    Args:
        model: the torch.nn.Module (a private copy; it will be modified in place).
        criterion: a torch loss module or a callable (output, target) -> scalar tensor.
    """

    def __init__(self, model: torch.nn.Module, criterion):
        self.model = model
        self.criterion = criterion
        self.trainable = [p for p in model.parameters() if p.requires_grad]

    @property
    def num_params(self) -> int:
        """Elements in the trainable parameters."""
        return sum(p.numel() for p in self.trainable)

    def bind_flat(self, flat_params: torch.Tensor, flat_grads: torch.Tensor) -> None:
        """Make each trainable parameter and its gradient a view into the flat buffers."""
        offset = 0
        with torch.no_grad():
            for p in self.trainable:
                n = p.numel()
                flat_params[offset:offset + n].copy_(p.detach().reshape(-1))
                p.data = flat_params[offset:offset + n].view_as(p)
                p.grad = flat_grads[offset:offset + n].view_as(p)
                offset += n

    def float_buffers(self) -> list[torch.Tensor]:
        """Floating-point buffers (BatchNorm running statistics) to keep equal across workers."""
        return [b for b in self.model.buffers() if b.is_floating_point()]

    def train_step(self, inputs: list[torch.Tensor], target: torch.Tensor, weight: float, profile=None) -> float:
        """Forward and backward on one local batch; gradients, scaled by `weight`, add to the
        flat gradient buffer. Returns the unscaled batch loss. Laps `forward` on `profile` (a
        `zoo.engine.profile.StepProfile`) between the two."""
        self.model.train()
        output = self.model(*inputs)
        loss = self.criterion(output, target)
        if profile is not None:
            profile.lap("forward")
        (loss * weight).backward()
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, inputs: list[torch.Tensor], target: torch.Tensor) -> tuple[np.ndarray, float]:
        """Outputs of one batch in eval mode and the criterion summed over the batch."""
        self.model.eval()
        output = self.model(*inputs)
        loss = float(self.criterion(output, target)) * len(target)
        return _first_output(output).float().numpy(), loss

    def state_bytes(self) -> bytes:
        """The model's state_dict, serialized."""
        return state_bytes_of(self.model)

    def load_state_bytes(self, blob: bytes) -> None:
        """Load weights saved by `state_bytes` (keeps the flat-buffer views intact)."""
        state = torch.load(io.BytesIO(blob), weights_only=True)
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                value.copy_(state[name])


def _read_only_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing `array`'s memory, for inputs the model only reads. Arrays that come from
    Arrow are read-only; torch would warn about each one, but nothing here writes to them."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _first_output(output):
    """The tensor a metric looks at when a model returns a tuple or list."""
    return output[0] if isinstance(output, (tuple, list)) else output


def dry_run(model: torch.nn.Module, criterion, inputs: list[np.ndarray], target: np.ndarray | None) -> np.ndarray:
    """Forward a few samples (and the criterion on them, given a target) without touching the
    model's state."""
    tensors = [_read_only_tensor(x) for x in inputs]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(*tensors)
            if target is not None:
                criterion(output, _read_only_tensor(target))
    finally:
        model.train(was_training)
    return _first_output(output).float().numpy()


def is_built(model: torch.nn.Module) -> bool:
    """Whether every parameter of `model` exists (a lazy module's appear on its first forward)."""
    return not any(torch.nn.parameter.is_lazy(p) for p in model.parameters())


def trainable_count(model: torch.nn.Module) -> int:
    """Elements in the parameters of `model` that require a gradient."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _outputs(model: torch.nn.Module, inputs: list[np.ndarray]):
    with torch.inference_mode():
        return model(*[_read_only_tensor(x) for x in inputs])


def predict(model: torch.nn.Module, inputs: list[np.ndarray]) -> np.ndarray:
    """Outputs of `model` in eval mode for one batch of numpy inputs."""
    return _first_output(_outputs(model, inputs)).float().numpy()


def predict_all(model: torch.nn.Module, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Every output of `model` (tuples, lists and dicts flattened in order) for one batch of numpy
    inputs; floating-point outputs as float32."""
    return [(t.float() if t.is_floating_point() else t).numpy() for t in flat_outputs(_outputs(model, inputs))]


def state_bytes_of(model: torch.nn.Module) -> bytes:
    """`model`'s state_dict serialized as `Trainable.state_bytes` does."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def load_state_bytes_into(model: torch.nn.Module, blob: bytes) -> None:
    """Load weights serialized by `state_bytes_of` into `model`."""
    model.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))


def assign_weights(target: torch.nn.Module, source: torch.nn.Module) -> None:
    """Copy `source`'s state_dict into `target`, a model of the same architecture (no
    serialization: the fitted model's weights go straight into the caller's)."""
    target.load_state_dict(source.state_dict())


def save_model(model: torch.nn.Module, folder: str) -> torch.nn.Module:
    """Write `model`'s weights to `WEIGHTS_FILE` in `folder`; returns the model, pickled beside
    them for its architecture."""
    from safetensors.torch import save_model as save_safetensors

    save_safetensors(model, os.path.join(folder, WEIGHTS_FILE))
    return model


def load_model(folder: str, pickled: torch.nn.Module) -> torch.nn.Module:
    """The model `save_model` wrote: the pickled one with the weights of `folder` loaded."""
    from safetensors.torch import load_model as load_safetensors

    load_safetensors(pickled, os.path.join(folder, WEIGHTS_FILE))
    return pickled
