"""Keras 3 adapter: a keras.Model, its Keras loss and optimizer behind the engine's interface.

Works on the TensorFlow and the torch backends of Keras. Keras is imported lazily (never by
`import zoo`), and a model travels to the executors as a `PortableModel`: the backend's name,
the model in Keras' own `.keras` format and its custom classes, so an executor's fresh Python
worker imports Keras on the backend the model was built on.

Training is stateless: the engine's flat fp32 torch buffer holds the trainable weights, and
each step runs `model.stateless_call` on views of it (TensorFlow: a `tf.function` with a
GradientTape reading the buffer in place through DLPack; torch: autograd), and each variable's
gradient is copied into its place in the engine's flat gradient buffer. Non-trainable float state
(BatchNormalization moving statistics) lives in torch tensors the engine averages across
workers. The Keras optimizer updates one `keras.Variable` of a worker's shard length.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile

import cloudpickle
import numpy as np
import torch
import torch.utils.dlpack

from zoo.errors import ZooTypeError, ZooValueError

logger = logging.getLogger(__name__)

#: Keras backends the adapter trains on.
SUPPORTED_BACKENDS = ("tensorflow", "torch")
#: Keras optimizers whose update of an element depends only on that element's gradient and state:
#: they can run on a shard of the flat parameter vector and give the same result as on the whole.
ELEMENTWISE_OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam",
                          "Ftrl", "Lion")
#: torch.optim classes (NNEstimator's `optimMethod` default is torch.optim.SGD) -> Keras optimizers.
TORCH_TO_KERAS_OPTIMIZERS = {"SGD": "SGD", "Adam": "Adam", "AdamW": "AdamW", "RMSprop": "RMSprop",
                             "Adagrad": "Adagrad", "Adadelta": "Adadelta", "Adamax": "Adamax", "NAdam": "Nadam"}
#: Keras losses that take float 0/1 targets shaped like a single-output model's output.
BINARY_LOSSES = ("BinaryCrossentropy", "BinaryFocalCrossentropy", "binary_crossentropy",
                 "binary_focal_crossentropy")
#: TensorFlow's CPU kernels assume this alignment (EIGEN_MAX_ALIGN_BYTES) of every buffer.
TF_ALIGNMENT_BYTES = 64
#: The name of the shard variable (Keras names optimizer slots after it).
SHARD_VARIABLE = "zoo_shard"


def _root_module(cls) -> str:
    return (cls.__module__ or "").split(".")[0]


def is_keras_object(obj) -> bool:
    """Whether `obj` is an instance of a Keras 3 class, checked without importing Keras."""
    return any(_root_module(cls) == "keras" for cls in type(obj).__mro__)


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
    roots = {_root_module(cls) for cls in type(obj).__mro__}
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


def check_model(obj):
    """`obj` as a keras.Model, or a ZooTypeError naming what was received and what to do."""
    if is_model(obj):
        return unwrap(obj)
    reject_unsupported(obj)
    raise ZooTypeError(
        f"Expected a keras.Model (Keras 3). Received: {type(obj).__module__}.{type(obj).__name__}."
    )


def unwrap(model):
    """The keras.Model inside a PortableModel (or `model` itself)."""
    return model.model if isinstance(model, PortableModel) else model


# ---- backend and serialization ---------------------------------------------------------------
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


def custom_objects_of(model) -> dict:
    """The non-Keras classes a model is made of (its own class, custom layers), by the names
    Keras looks them up under when it loads the model."""
    import keras

    found = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for cls in type(layer).__mro__:
            if _root_module(cls) in ("keras", "builtins") or not isinstance(cls, type):
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
    """Load a `.keras` file (without its compile state) given the custom classes it needs."""
    import keras

    try:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=False, safe_mode=False)
    except TypeError as exc:
        raise ZooTypeError(
            f"Keras could not rebuild the model from {os.path.basename(path)}: {exc}. A subclassed model or "
            f"custom layer needs get_config() returning its constructor arguments (and "
            f"@keras.saving.register_keras_serializable() when loaded in another program)."
        ) from exc


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


# ---- losses and optimizers ----------------------------------------------------------------
def is_loss(criterion) -> bool:
    """Whether `criterion` names or is a Keras loss (a custom callable is not recognizable)."""
    return isinstance(criterion, str) or is_keras_object(criterion) or (
        callable(criterion) and _root_module(criterion) == "keras")


def _loss_config(criterion) -> dict:
    get_config = getattr(criterion, "get_config", None)
    return get_config() if callable(get_config) else {}


def loss_from_logits(criterion) -> bool:
    """Whether a Keras loss reads the model's output as logits (`from_logits=True`)."""
    return bool(_loss_config(criterion).get("from_logits", False))


def loss_wants_float_targets(criterion) -> bool:
    """Whether a Keras loss takes float 0/1 targets (binary cross-entropy) instead of indices."""
    name = criterion if isinstance(criterion, str) else getattr(criterion, "__name__", type(criterion).__name__)
    return name in BINARY_LOSSES


def resolve_loss(criterion):
    """A callable (y_true, y_pred) -> scalar from a Keras loss object, a loss name or a function
    returning per-sample losses (reduced by the mean, as Keras does)."""
    import keras

    if isinstance(criterion, str):
        criterion = keras.losses.get(criterion)
    if isinstance(criterion, keras.losses.Loss):
        return criterion
    if criterion is None or not callable(criterion):
        raise ZooTypeError(
            f"Expected `criterion` to be a Keras loss (keras.losses.MeanSquaredError(), 'mse', or a function "
            f"(y_true, y_pred) -> loss). Received: {criterion!r}."
        )
    if is_keras_object(criterion) is False and _root_module(type(criterion)) == "torch":
        raise ZooTypeError(f"A Keras model needs a Keras loss, not a torch criterion. Received: {criterion!r}.")

    def reduced(y_true, y_pred):
        return keras.ops.mean(criterion(y_true, y_pred))

    return reduced


def build_optimizer(optim_method, learning_rate: float):
    """A fresh Keras optimizer from a Keras optimizer (its configuration is copied), a Keras or
    torch.optim optimizer class or name (given `learning_rate`), or a zero-argument factory."""
    import keras

    if optim_method is None:
        return keras.optimizers.SGD(learning_rate=learning_rate)
    if isinstance(optim_method, keras.optimizers.Optimizer):
        return type(optim_method).from_config(optim_method.get_config())
    if isinstance(optim_method, str):
        return type(keras.optimizers.get(optim_method)).from_config({"learning_rate": learning_rate})
    if isinstance(optim_method, type):
        if issubclass(optim_method, keras.optimizers.Optimizer):
            return optim_method(learning_rate=learning_rate)
        if _root_module(optim_method) == "torch" and optim_method.__name__ in TORCH_TO_KERAS_OPTIMIZERS:
            return getattr(keras.optimizers, TORCH_TO_KERAS_OPTIMIZERS[optim_method.__name__])(
                learning_rate=learning_rate)
    if callable(optim_method) and not isinstance(optim_method, type):
        optimizer = optim_method()
        if isinstance(optimizer, keras.optimizers.Optimizer):
            return optimizer
        raise ZooTypeError(f"Expected `optimMethod` to return a keras.optimizers.Optimizer. "
                           f"Received: {type(optimizer).__name__}.")
    raise ZooTypeError(
        f"Expected `optimMethod` for a Keras model to be a keras.optimizers.Optimizer (instance or class), its "
        f"name ('adam'), a torch.optim class in {sorted(TORCH_TO_KERAS_OPTIMIZERS)} or a zero-argument factory. "
        f"Received: {optim_method!r}."
    )


def is_elementwise(optimizer) -> bool:
    """Whether `optimizer` can update a shard of the flat parameters on its own."""
    return (type(optimizer).__name__ in ELEMENTWISE_OPTIMIZERS and _root_module(type(optimizer)) == "keras"
            and optimizer.clipnorm is None and optimizer.global_clipnorm is None and not optimizer.use_ema
            and not getattr(optimizer, "_exclude_from_weight_decay", None)
            and not getattr(optimizer, "_exclude_from_weight_decay_pattern", None))


def _to_numpy(value) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value))


def _optimizer_state(optimizer) -> dict:
    """torch.optim-style state: arrays as tensors, scalars as Python numbers."""
    state = {}
    for i, variable in enumerate(optimizer.variables):
        key = variable.name if variable.name not in state else f"{variable.name}:{i}"
        value = _to_numpy(variable.value)
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
        variable.assign(value.astype(_to_numpy(variable.value).dtype).reshape(tuple(variable.shape)))


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
        self._apply = _compiled(self._update, jit_compile=True)

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
        view = _tf_view if _backend() == "tensorflow" else (lambda part: part)
        parts = [view(part) for part in grad_parts]
        try:
            self._apply(parts)
        except Exception as exc:  # XLA compiles before running, so nothing was updated yet
            if not self._jit:
                raise
            logger.warning("XLA cannot compile the %s update (%s); running it without XLA",
                           type(self.optimizer).__name__, exc)
            self._jit, self._apply = False, _compiled(self._update)
            self._apply(parts)
        return _as_torch(self.variable.value)

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


def _backend() -> str:
    import keras

    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise ZooValueError(f"Zoo trains Keras models on the {SUPPORTED_BACKENDS} backends. Received the "
                            f"`{name}` backend: set KERAS_BACKEND to one of those.")
    return name


def _compiled(function, jit_compile: bool = False):
    """`function` as a tf.function on the TensorFlow backend (unchanged on torch); with
    `jit_compile`, XLA fuses its element-wise ops into one pass over memory."""
    if _backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True, jit_compile=jit_compile)
    return function


def _backend_tensor(value: torch.Tensor | np.ndarray):
    """A torch CPU tensor or numpy array as the backend's tensor (no copy on torch)."""
    if _backend() == "torch":
        return value if torch.is_tensor(value) else torch.from_numpy(np.asarray(value))
    import tensorflow as tf

    return tf.convert_to_tensor(value.numpy() if torch.is_tensor(value) else value)


def _tf_view(tensor: torch.Tensor):
    """A TensorFlow tensor over a torch CPU tensor's memory (DLPack, no copy) when TensorFlow can
    use it in place: contiguous and aligned as its kernels require (a hard crash otherwise);
    else a copy. TensorFlow never writes into memory it does not own, so the view is read-only."""
    import tensorflow as tf

    if tensor.is_contiguous() and tensor.data_ptr() % TF_ALIGNMENT_BYTES == 0:
        return tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(tensor))
    return tf.convert_to_tensor(tensor.numpy())


def _torch_view(tensor) -> torch.Tensor:
    """A torch tensor over a TensorFlow CPU tensor's memory (DLPack, no copy)."""
    import tensorflow as tf

    return torch.from_dlpack(tf.experimental.dlpack.to_dlpack(tensor))


def _as_torch(value) -> torch.Tensor:
    """A backend tensor as a torch CPU tensor."""
    if torch.is_tensor(value):
        return value.detach().cpu()
    return torch.from_numpy(np.array(value))


def _model_input(inputs):
    return inputs[0] if len(inputs) == 1 else list(inputs)


def _first_output(output):
    while isinstance(output, (tuple, list)):
        output = output[0]
    if isinstance(output, dict):
        output = next(iter(output.values()))
    return output


# ---- training ---------------------------------------------------------------------------------
def _mode(model, training: bool) -> dict:
    """The `training` keyword, for models whose call() takes one (stateless_call passes it on)."""
    return {"training": training} if getattr(model, "_call_has_training_arg", True) else {}


class _TensorFlowSteps:
    """Gradient and inference steps compiled with tf.function."""

    def __init__(self, model, loss, sizes, shapes):
        import tensorflow as tf

        train_mode, infer_mode = _mode(model, True), _mode(model, False)
        self.sizes = sizes

        def unflatten(flat):
            return [tf.reshape(part, shape) for part, shape in zip(tf.split(flat, sizes), shapes)]

        def train(flat, state, x, y, weight):
            weights = unflatten(flat)
            with tf.GradientTape() as tape:
                tape.watch(weights)
                output, new_state, losses = model.stateless_call(weights, state, x, return_losses=True,
                                                                 **train_mode)
                value = tf.cast(loss(y, output), tf.float32)
                if losses:
                    value += tf.add_n([tf.cast(extra, tf.float32) for extra in losses])
                scaled = value * weight
            # One gradient per variable (not the flat one, which TensorFlow would assemble with a
            # concat): the caller copies each straight into its place in the flat buffer.
            grads = tape.gradient(scaled, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return value, [tf.convert_to_tensor(g) for g in grads], new_state

        def infer(flat, state, x, y):
            output, _ = model.stateless_call(unflatten(flat), state, x, **infer_mode)
            return _first_output(output), loss(y, output)

        self._train = tf.function(train, reduce_retracing=True)
        self._infer = tf.function(infer, reduce_retracing=True)

    def train(self, flat: torch.Tensor, grads_out: torch.Tensor, state, x, y, weight: float):
        import tensorflow as tf

        value, grads, new_state = self._train(_tf_view(flat), state, x, y, tf.constant(weight, tf.float32))
        for out, grad in zip(torch.split(grads_out, self.sizes), grads):
            out.copy_(_torch_view(grad).reshape(-1))
        return float(value), new_state

    def infer(self, flat: torch.Tensor, state, x, y):
        import tensorflow as tf

        output, value = self._infer(_tf_view(flat), state, x, y)
        return output.numpy(), float(value)


class _TorchSteps:
    """Gradient and inference steps with torch autograd (Keras' torch backend)."""

    def __init__(self, model, loss, sizes, shapes):
        self.model, self.loss, self.sizes, self.shapes = model, loss, sizes, shapes

    def _unflatten(self, flat):
        return [part.view(shape) for part, shape in zip(torch.split(flat, self.sizes), self.shapes)]

    def train(self, flat: torch.Tensor, grads_out: torch.Tensor, state, x, y, weight: float):
        leaf = flat.detach().requires_grad_(True)
        output, new_state, losses = self.model.stateless_call(self._unflatten(leaf), state, x, return_losses=True,
                                                              **_mode(self.model, True))
        value = self.loss(y, output).float()
        for extra in losses:
            value = value + extra.float()
        (value * weight).backward()
        grads_out.copy_(leaf.grad)
        return float(value.detach()), [s.detach() for s in new_state]

    def infer(self, flat: torch.Tensor, state, x, y):
        with torch.no_grad():
            output, _ = self.model.stateless_call(self._unflatten(flat), state, x, **_mode(self.model, False))
            return _as_torch(_first_output(output)).float().numpy(), float(self.loss(y, output))


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
        self._float_state = [torch.from_numpy(_to_numpy(self.state_variables[i].value).astype(np.float32).copy())
                             for i in self._float_index]
        self._other_state = {i: v.value for i, v in enumerate(self.state_variables) if i not in self._float_index}
        steps = _TensorFlowSteps if _backend() == "tensorflow" else _TorchSteps
        self._steps = steps(self.model, self.loss, self.sizes, self.shapes)
        self._params = torch.from_numpy(self._read_variables())
        self._grads = torch.zeros(self.num_params)

    @property
    def num_params(self) -> int:
        """Elements in the trainable variables."""
        return sum(self.sizes)

    def _read_variables(self) -> np.ndarray:
        if not self.trainable:
            return np.zeros(0, np.float32)
        return np.concatenate([_to_numpy(v.value).astype(np.float32).reshape(-1) for v in self.trainable])

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
        return [_backend_tensor(floats[i]) if i in floats else self._other_state[i]
                for i in range(len(self.state_variables))]

    def _store_state(self, values) -> None:
        floats = dict(zip(self._float_index, self._float_state))
        for i, value in enumerate(values):
            if i in floats:
                floats[i].copy_(_as_torch(value).reshape(floats[i].shape))
            else:
                self._other_state[i] = value

    def _xy(self, inputs, target):
        x = _model_input([_backend_tensor(t) for t in inputs])
        return x, None if target is None else _backend_tensor(target)

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
        grads = [_backend_tensor(g.reshape(s).clone()) for g, s in zip(torch.split(self._grads, self.sizes),
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


# ---- driver side ------------------------------------------------------------------------------
def _check_inputs(model, inputs: list[np.ndarray]) -> None:
    """Compare the arrays' per-sample shapes with the model's declared inputs, if it has any."""
    try:
        declared = model.inputs
    except (AttributeError, ValueError):
        return
    if not declared:
        return
    expected = [tuple(d for d in t.shape[1:]) for t in declared]
    received = [tuple(x.shape[1:]) for x in inputs]
    fits = len(expected) == len(received) and all(
        len(e) == len(r) and all(a is None or a == b for a, b in zip(e, r)) for e, r in zip(expected, received))
    if not fits:
        raise ZooValueError(
            f"The Keras model expects {len(expected)} input(s) with per-sample shapes "
            f"{[list(e) for e in expected]}, but the data gives {len(received)} input(s) with per-sample shapes "
            f"{[list(r) for r in received]}. Give one feature column per model input, in the model's input "
            f"order, with a preprocessing (e.g. SeqToTensor(shape)) that yields those shapes."
        )


def dry_run(model, criterion, inputs: list[np.ndarray], target: np.ndarray | None) -> np.ndarray:
    """Forward a few samples (and the loss on them, given a target) without touching the
    model's state."""
    model = unwrap(model)
    _check_inputs(model, inputs)
    output = model(_model_input(list(inputs)), training=False)
    if target is not None:
        float(_to_numpy(resolve_loss(criterion)(target, output)))
    return _to_numpy(_first_output(output)).astype(np.float32)


def is_built(model) -> bool:
    """Whether `model` has its weights (a Keras model without an input shape builds on its first call)."""
    return bool(unwrap(model).built)


def trainable_count(model) -> int:
    """Elements in the trainable variables of `model` (built: `dry_run` builds it)."""
    return sum(int(np.prod(v.shape)) for v in unwrap(model).trainable_variables)


def predict(model, inputs: list[np.ndarray]) -> np.ndarray:
    """Outputs of `model` in inference mode for one batch of numpy inputs."""
    output = unwrap(model).predict_on_batch(_model_input(list(inputs)))
    return np.asarray(_first_output(output), dtype=np.float32)


def state_bytes_of(model) -> bytes:
    """Every variable of `model` (in `model.weights` order, keyed by path) as an .npz archive."""
    weights = unwrap(model).weights
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{i:05d}|{v.path}": _to_numpy(v.value) for i, v in enumerate(weights)})
    return buffer.getvalue()


def load_state_bytes_into(model, blob: bytes) -> None:
    """Load weights serialized by `state_bytes_of` into `model`."""
    weights = unwrap(model).weights
    with np.load(io.BytesIO(blob)) as archive:
        names = sorted(archive.files)
        if len(names) != len(weights):
            raise ZooValueError(f"Expected saved weights for {len(weights)} variables. Received {len(names)}: "
                                f"the weights come from another model.")
        for variable, name in zip(weights, names):
            value = archive[name]
            if tuple(value.shape) != tuple(variable.shape):
                raise ZooValueError(f"Saved weight {name.split('|', 1)[1]} has shape {list(value.shape)}, but "
                                    f"{variable.path} has shape {list(variable.shape)}.")
            variable.assign(value)
