"""Which Keras backend runs, and the few helpers every module of the Keras adapter needs.

Keras is imported lazily, never by `import zoo`: the functions here import it on their first call.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from zoo.errors import ZooValueError

#: Keras backends the adapter trains on.
SUPPORTED_BACKENDS = ("tensorflow", "torch")


def root_module(cls) -> str:
    """The top-level package a class (or function) is defined in."""
    return (cls.__module__ or "").split(".")[0]


def is_keras_object(obj) -> bool:
    """Whether `obj` is an instance of a Keras 3 class, checked without importing Keras."""
    return any(root_module(cls) == "keras" for cls in type(obj).__mro__)


def backend_name() -> str:
    """The backend Keras runs on in this process, checked to be one the adapter trains on."""
    import keras

    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise ZooValueError(f"Zoo trains Keras models on the {SUPPORTED_BACKENDS} backends. Received the "
                            f"`{name}` backend: set KERAS_BACKEND to one of those.")
    return name


def use_backend(name: str) -> None:
    """Make sure Keras runs on backend `name` in this process (before or after its import)."""
    if name not in SUPPORTED_BACKENDS:
        raise ZooValueError(f"Expected a Keras backend in {SUPPORTED_BACKENDS}. Received: {name!r}.")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = name
        return
    import keras

    current = keras.backend.backend()
    if current != name:
        raise ZooValueError(
            f"This Python process already runs Keras on the `{current}` backend, but the model was built on "
            f"the `{name}` backend; Keras fixes its backend when it is first imported. Use one backend per "
            f"application: set KERAS_BACKEND={name} for the driver and spark.executorEnv.KERAS_BACKEND={name} "
            f"(or set spark.python.worker.reuse=false so every task starts a fresh Python worker)."
        )


def compiled(function, jit_compile: bool = False):
    """`function` as a tf.function on the TensorFlow backend (unchanged on torch); with
    `jit_compile`, XLA fuses its element-wise ops into one pass over memory."""
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True, jit_compile=jit_compile)
    return function


def to_numpy(value) -> np.ndarray:
    """A Keras variable's value or a backend tensor as a numpy array."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value))
