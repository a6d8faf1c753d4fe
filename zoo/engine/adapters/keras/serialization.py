"""Moving a keras.Model between processes and files: Keras' `.keras` format with the model's
custom classes, the `PortableModel` the executors unpickle, and the weights as an .npz archive."""

from __future__ import annotations

import io
import os
import tempfile

import cloudpickle
import numpy as np

from zoo.engine.adapters.keras.backend import root_module, to_numpy, use_backend
from zoo.errors import ZooValueError


def unwrap(model):
    """The keras.Model inside a PortableModel (or `model` itself)."""
    return model.model if isinstance(model, PortableModel) else model


def custom_objects_of(model) -> dict:
    """The non-Keras classes a model is made of (its own class, custom layers), by the names
    Keras looks them up under when it loads the model."""
    import keras

    found = {}
    for layer in unwrap(model)._flatten_layers(include_self=True, recursive=True):
        for cls in type(layer).__mro__:
            if root_module(cls) in ("keras", "builtins") or not isinstance(cls, type):
                continue
            if issubclass(cls, keras.layers.Layer):
                found[cls.__name__] = cls
                found[keras.saving.get_registered_name(cls)] = cls
    return found


def model_to_bytes(model) -> bytes:
    """`model` in Keras' `.keras` format (architecture and weights), as bytes."""
    with tempfile.TemporaryDirectory(prefix="zoo-keras-") as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def model_from_bytes(blob: bytes, custom_objects: dict | None = None):
    """A keras.Model from what `model_to_bytes` returned."""
    with tempfile.TemporaryDirectory(prefix="zoo-keras-") as folder:
        path = os.path.join(folder, "model.keras")
        with open(path, "wb") as f:
            f.write(blob)
        return load_model_file(path, custom_objects)


def save_model_file(model, path: str) -> None:
    """Save `model` (a keras.Model or PortableModel) to `path` in the `.keras` format."""
    unwrap(model).save(path)


def load_model_file(path: str, custom_objects: dict | None = None):
    """Load a `.keras` file Zoo wrote (without its compile state) given the custom classes it
    needs, through Zoo's one Keras loader as a trusted file (see its safe-mode policy)."""
    from zoo.inference.backends.keras import load_model_file as load_keras_file

    return load_keras_file(path, custom_objects, trusted=True)


class PortableModel:
    """A keras.Model on its way to the executors.

    Pickles as the backend's name, the `.keras` bytes and the custom classes (cloudpickled), and
    unpickles by selecting that backend before Keras is imported, then loading the model.

    Attributes:
        model: the keras.Model.
        backend: the Keras backend it runs on.
    """

    def __init__(self, model):
        import keras

        self.model = model
        self.backend = keras.backend.backend()

    def __getstate__(self):
        return {"backend": self.backend, "archive": model_to_bytes(self.model),
                "custom_objects": cloudpickle.dumps(custom_objects_of(self.model))}

    def __setstate__(self, state):
        use_backend(state["backend"])
        self.backend = state["backend"]
        self.model = model_from_bytes(state["archive"], cloudpickle.loads(state["custom_objects"]))


def portable(model) -> PortableModel:
    """What the engine pickles for the executors in place of `model`."""
    return model if isinstance(model, PortableModel) else PortableModel(model)


def copy_model(model):
    """An independent copy of a keras.Model (architecture and weights)."""
    model = unwrap(model)
    return model_from_bytes(model_to_bytes(model), custom_objects_of(model))


def state_bytes_of(model) -> bytes:
    """Every variable of `model` (in `model.weights` order, keyed by path) as an .npz archive."""
    weights = unwrap(model).weights
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{i:05d}|{v.path}": to_numpy(v.value) for i, v in enumerate(weights)})
    return buffer.getvalue()


def _assign(variables, values) -> None:
    """Assign `values`, (path, array) pairs in `variables`' order, to `variables`."""
    if len(values) != len(variables):
        raise ZooValueError(f"Expected saved weights for {len(variables)} variables. Received {len(values)}: "
                            f"the weights come from another model.")
    for variable, (path, value) in zip(variables, values):
        if tuple(value.shape) != tuple(variable.shape):
            raise ZooValueError(f"Saved weight {path} has shape {list(value.shape)}, but "
                                f"{variable.path} has shape {list(variable.shape)}.")
        variable.assign(value)


def load_state_bytes_into(model, blob: bytes) -> None:
    """Load weights serialized by `state_bytes_of` into `model`."""
    with np.load(io.BytesIO(blob)) as archive:
        values = [(name.split("|", 1)[1], archive[name]) for name in sorted(archive.files)]
    _assign(unwrap(model).weights, values)


def assign_weights(target, source) -> None:
    """Copy every variable of `source` into `target`, a model of the same architecture (no
    serialization: the fitted model's weights go straight into the caller's)."""
    _assign(unwrap(target).weights, [(v.path, to_numpy(v.value)) for v in unwrap(source).weights])


#: The file `save_model` writes: the model in Keras' own format (architecture and weights).
KERAS_FILE = "model.keras"


def save_model(model, folder: str) -> dict:
    """Write `model` to `KERAS_FILE` in `folder`; returns its custom classes, pickled beside it
    (Keras needs them to load it)."""
    save_model_file(model, os.path.join(folder, KERAS_FILE))
    return custom_objects_of(model)


def load_model(folder: str, custom_objects: dict | None):
    """The model `save_model` wrote into `folder`."""
    return load_model_file(os.path.join(folder, KERAS_FILE), custom_objects)
