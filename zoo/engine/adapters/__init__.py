"""Framework adapters: the only framework-specific code of the engine.

Each adapter module exposes the same names: `Trainable` (a model, its criterion and optimizer
factory behind one small interface) and `is_model(obj)`. `adapter_for(model)` picks the module.
"""

from __future__ import annotations

from zoo.errors import ZooTypeError


def adapter_for(model):
    """The adapter module for `model` (the one place where the framework is chosen)."""
    from zoo.engine.adapters import torch as torch_adapter

    if torch_adapter.is_model(model):
        return torch_adapter
    raise ZooTypeError(
        f"Expected `model` to be a torch.nn.Module. Received: {type(model).__module__}.{type(model).__name__}."
    )
