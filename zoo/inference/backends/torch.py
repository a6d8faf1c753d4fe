"""PyTorch backend: an ``nn.Module`` (eager or TorchScript) or a ``torch.export`` program, run
under ``torch.inference_mode``."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import Any, Sequence

import numpy as np

from zoo.inference.backends.base import Backend, output_name
from zoo.inference.errors import ModelLoadError, UnsupportedModelError, short
from zoo.inference.signature import TensorSpec, specs_from_examples

#: The formats a torch file may hold, as named in messages.
TORCHSCRIPT = "TorchScript"
EXPORTED_PROGRAM = "torch.export ExportedProgram"


def forward_input_names(model: Any) -> list[str] | None:
    """Names of the positional inputs of ``model.forward``, or None if they cannot be read."""
    import torch

    if isinstance(model, torch.export.ExportedProgram):
        return list(model.graph_signature.user_inputs)
    if isinstance(model, torch.jit.ScriptModule):
        try:
            return [a.name for a in model.forward.schema.arguments[1:]]
        except (AttributeError, RuntimeError):
            return None
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params if p.kind in kinds]
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    return names


def input_names(model: Any, count: int) -> list[str]:
    """``count`` input names: the forward argument names when they fit, else ``input_0``..."""
    names = forward_input_names(model)
    if names is None or len(names) < count:
        return [f"input_{i}" for i in range(count)]
    return names[:count]


def _exported_program_specs(program: Any) -> list[TensorSpec] | None:
    import torch

    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    specs = []
    for name in program.graph_signature.user_inputs:
        value = placeholders[name].meta.get("val")
        if not isinstance(value, torch.Tensor):
            return None
        shape = tuple(d if isinstance(d, int) else None for d in value.shape)
        specs.append(TensorSpec(name, shape, np.dtype(str(value.dtype).replace("torch.", ""))))
    return specs


def flatten_outputs(result: Any) -> list[np.ndarray]:
    """A forward's result (tensor, tuple/list/dict of them, nested) as a flat list of ndarrays."""
    import torch

    if isinstance(result, torch.Tensor):
        if result.dtype in (torch.bfloat16, torch.float16):
            result = result.float()
        return [result.detach().cpu().numpy()]
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        out: list[np.ndarray] = []
        for item in result:
            out.extend(flatten_outputs(item))
        return out
    return [np.asarray(result)]


class TorchBackend(Backend):
    """Runs a torch callable in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, module: Any, source: str, inputs: list[TensorSpec] | None, output_count: int | None = None):
        names = [output_name(i) for i in range(output_count or 1)]
        super().__init__(source, inputs, names)
        self._module = module

    def new_request(self):
        import torch

        module = self._module

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            tensors = [torch.from_numpy(a if a.flags.writeable else a.copy()) for a in arrays]
            with torch.inference_mode():
                return flatten_outputs(module(*tensors))

        return run

    def close(self) -> None:
        self._module = None


def from_module(model: Any, example_arrays: list[np.ndarray] | None = None) -> TorchBackend:
    """A backend over an in-memory ``nn.Module``, ``ScriptModule`` or ``ExportedProgram``.

    ``example_arrays`` (batch first) give the input signature; without them the signature is
    read from an ExportedProgram, and is unknown (not checked) for a plain module.
    """
    import torch

    source = f"torch {type(model).__name__}"
    if isinstance(model, torch.export.ExportedProgram):
        inputs = _exported_program_specs(model)
        module = model.module()
    elif isinstance(model, torch.nn.Module):
        module = model.eval()
        inputs = None
    else:
        raise UnsupportedModelError(
            f"Expected a torch.nn.Module, a TorchScript module or a torch.export.ExportedProgram. "
            f"Received: {type(model).__name__}. For a file, pass its path instead."
        )
    if example_arrays is not None:
        inputs = specs_from_examples(example_arrays, input_names(model, len(example_arrays)))
    output_count = None
    if example_arrays is not None:
        output_count = len(TorchBackend(module, source, inputs).new_request()(example_arrays))
    return TorchBackend(module, source, inputs, output_count)


def load_program(path: str) -> Any:
    """Read a TorchScript (``.pt``) or ExportedProgram (``.pt2``) file into memory."""
    import torch

    if not os.path.exists(path):
        fmt = EXPORTED_PROGRAM if path.endswith(".pt2") else TORCHSCRIPT
        raise ModelLoadError(f"Model file not found: {path!r} (format tried: {fmt}). Check the path.")
    errors = []
    order = [EXPORTED_PROGRAM, TORCHSCRIPT] if path.endswith(".pt2") else [TORCHSCRIPT, EXPORTED_PROGRAM]
    for fmt in order:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still read
                if fmt == TORCHSCRIPT:
                    return torch.jit.load(path, map_location="cpu")
                return torch.export.load(path)
        except Exception as exc:  # noqa: BLE001 - each reader fails in its own way; all are reported
            errors.append(f"{fmt}: {short(exc)}")
    raise ModelLoadError(
        f"Could not load {path!r} as a torch model (formats tried: {', '.join(order)}). "
        f"Errors: {'; '.join(errors)}. Save eager modules with torch.jit.save(torch.jit.trace(...)) "
        f"or torch.export.save(torch.export.export(...)), or pass the module itself."
    )
