"""Keras 3 backend: a ``keras.Model`` (or a ``.keras`` / ``.h5`` file) run with ``predict_on_batch``."""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import numpy as np

from zoo.inference.backends.base import Backend, output_name
from zoo.inference.errors import ModelLoadError, UnsupportedModelError, short
from zoo.inference.signature import TensorSpec

FORMAT = "Keras"
#: What to install when Keras is missing.
INSTALL_HINT = "pip install keras tensorflow-cpu"


def import_keras():
    """Import keras, or raise an ImportError that says what to install."""
    try:
        import keras
    except ImportError as exc:
        raise ImportError(f"Keras models need Keras 3 and a backend: {INSTALL_HINT}") from exc
    return keras


def input_specs(model: Any) -> list[TensorSpec] | None:
    """The model's declared inputs, or None when it was never built on symbolic inputs."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    specs = []
    for i, tensor in enumerate(inputs):
        name = getattr(tensor, "name", None) or f"input_{i}"
        shape = tuple(None if d is None else int(d) for d in tensor.shape)
        dtype = np.dtype(str(tensor.dtype)) if getattr(tensor, "dtype", None) else None
        specs.append(TensorSpec(name, shape, dtype))
    return specs


def output_count(model: Any) -> int:
    """How many outputs the model returns (1 when it cannot tell)."""
    try:
        return max(1, len(model.outputs))
    except (AttributeError, ValueError, TypeError):
        return 1


class KerasBackend(Backend):
    """All requests share the model; the first call (which traces it) runs alone."""

    name = "keras"

    def __init__(self, model: Any, source: str):
        super().__init__(source, input_specs(model), [output_name(i) for i in range(output_count(model))])
        self._model = model
        self._first_call = threading.Lock()
        self._traced = False

    def new_request(self):
        model = self._model

        def run(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
            data = arrays[0] if len(arrays) == 1 else list(arrays)
            if not self._traced:
                with self._first_call:
                    result = model.predict_on_batch(data)
                    self._traced = True
            else:
                result = model.predict_on_batch(data)
            if isinstance(result, dict):
                result = list(result.values())
            if isinstance(result, (list, tuple)):
                return [np.asarray(r) for r in result]
            return [np.asarray(result)]

        return run

    def close(self) -> None:
        self._model = None


def load_model_file(path: str | os.PathLike, custom_objects: dict | None = None, *, trusted: bool = False,
                    compile: bool = False) -> Any:
    """A ``keras.Model`` from a ``.keras`` / ``.h5`` file: Zoo's one Keras loader.

    Safe mode, the one policy: Keras' ``safe_mode`` (which refuses to run the Python bytecode a
    ``Lambda`` layer carries) stays on for a file a user hands to Zoo (``InferenceModel.load_keras``
    and ``load``, ``KerasModel.load_model``). Only ``trusted=True`` turns it off, and Zoo passes that
    only for files it wrote itself and reads back beside a cloudpickle it unpickles anyway (a model
    on its way to the executors, a saved NNModel directory): there safe mode would add no safety
    and would only break models with ``Lambda`` layers.

    Args:
        path: the file.
        custom_objects: the custom classes the model is made of, by the names Keras looks up.
        trusted: the file was written by Zoo beside a pickle (see above); turns safe mode off.
        compile: restore the compile state (optimizer, loss) too, for a model that trains on.

    Raises:
        ModelLoadError: the file is missing, or Keras cannot read or rebuild the model; names the
            path and, for a model Keras cannot rebuild, what the custom classes need.
        ImportError: Keras is not installed (says what to install).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"Model file not found: {path!r} (format tried: {FORMAT}). Check the path.")
    keras = import_keras()
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=not trusted)
    except TypeError as exc:
        raise ModelLoadError(
            f"Keras could not rebuild the model in {path!r}: {short(exc)}. A subclassed model or custom layer "
            f"needs get_config() returning its constructor arguments (and "
            f"@keras.saving.register_keras_serializable() when loaded in another program)."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - Keras and h5py raise many error classes
        raise ModelLoadError(
            f"Could not load {path!r} as a {FORMAT} model: {short(exc)}. "
            f"Expected a file written by model.save('model.keras')."
        ) from exc


def load(model: Any) -> KerasBackend:
    """A backend over a ``keras.Model`` or a saved ``.keras`` / ``.h5`` file (read by
    `load_model_file`, in safe mode).

    Raises:
        ModelLoadError: the file is missing or Keras cannot read it; names the path.
        ImportError: Keras is not installed (says what to install).
    """
    if not isinstance(model, (str, os.PathLike)):
        from zoo.engine.adapters import framework_of

        if framework_of(model) != "keras":
            raise UnsupportedModelError(f"Expected a keras.Model or a path to a .keras/.h5 file. Received: {type(model).__name__}.")
        return KerasBackend(model, f"keras {type(model).__name__}")
    path = os.fspath(model)
    return KerasBackend(load_model_file(path), path)
