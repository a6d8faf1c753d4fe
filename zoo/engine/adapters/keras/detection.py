"""Whether an object is a Keras 3 model, and what to say about the TensorFlow objects that are not."""

from __future__ import annotations

from zoo.engine.adapters.keras.backend import is_keras_object, root_module
from zoo.engine.adapters.keras.serialization import PortableModel
from zoo.errors import ZooTypeError


def is_model(obj) -> bool:
    """Whether this adapter trains `obj` (a keras.Model, or one wrapped in a PortableModel)."""
    if isinstance(obj, PortableModel):
        return True
    if not is_keras_object(obj):
        return False
    import keras

    return isinstance(obj, keras.Model)


def reject_unsupported(obj) -> None:
    """Raise a ZooTypeError saying what to do instead for TF1 graphs, sessions, tf.Modules and
    Keras 2 (tf_keras) models; do nothing for other objects."""
    roots = {root_module(cls) for cls in type(obj).__mro__}
    name = f"{type(obj).__module__}.{type(obj).__name__}"
    if "tf_keras" in roots:
        raise ZooTypeError(
            f"Received a Keras 2 (tf_keras) model ({name}). Zoo trains Keras 3 models: rebuild it with "
            f"`import keras` (Keras 3), e.g. keras.Sequential([...]) or the functional API."
        )
    if "tensorflow" in roots:
        import tensorflow as tf

        if isinstance(obj, (tf.Graph, tf.compat.v1.Session)) or (tf.is_tensor(obj) and not tf.executing_eagerly()):
            raise ZooTypeError(
                f"Received a TensorFlow 1 graph object ({name}). TF1 graphs and sessions are not supported on "
                f"TensorFlow 2: express the model as a keras.Model (Sequential, functional or subclassed) and "
                f"the loss as a Keras loss, then use KerasModel or TFOptimizer.from_keras / from_loss."
            )
        raise ZooTypeError(
            f"Received a TensorFlow object ({name}) that is not a keras.Model. Wrap the computation in a "
            f"keras.Model (a subclassed model can hold any tf.Module) and train that."
        )
