"""The two step engines: one training and one inference step of a keras.Model on views of the
engine's flat weight buffer, compiled with tf.function on TensorFlow, with autograd on torch.

`steps_for` picks the engine for the backend Keras runs on, once, when the Trainable is built;
the engine also makes the backend's tensors, so no step asks again which backend runs."""

from __future__ import annotations

import torch

from zoo.engine.adapters.keras.backend import backend_name
from zoo.engine.adapters.keras.interop import as_torch, tf_tensor, tf_view, torch_tensor, torch_view


def model_input(inputs):
    """A model's call argument: the one input, or the list of them."""
    return inputs[0] if len(inputs) == 1 else list(inputs)


def first_output(output):
    """The tensor a metric looks at when a model returns a tuple, list or dict."""
    while isinstance(output, (tuple, list)):
        output = output[0]
    if isinstance(output, dict):
        output = next(iter(output.values()))
    return output


def _mode(model, training: bool) -> dict:
    """The `training` keyword, for models whose call() takes one (stateless_call passes it on)."""
    return {"training": training} if getattr(model, "_call_has_training_arg", True) else {}


class TensorFlowSteps:
    """Gradient and inference steps compiled with tf.function."""

    #: A torch CPU tensor or numpy array as this backend's tensor.
    tensor = staticmethod(tf_tensor)

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
            return first_output(output), loss(y, output)

        self._train = tf.function(train, reduce_retracing=True)
        self._infer = tf.function(infer, reduce_retracing=True)

    def train(self, flat: torch.Tensor, grads_out: torch.Tensor, state, x, y, weight: float):
        """One forward and backward pass; each variable's gradient goes into its place in `grads_out`.
        Returns (unscaled loss, new non-trainable state)."""
        import tensorflow as tf

        value, grads, new_state = self._train(tf_view(flat), state, x, y, tf.constant(weight, tf.float32))
        for out, grad in zip(torch.split(grads_out, self.sizes), grads):
            out.copy_(torch_view(grad).reshape(-1))
        return float(value), new_state

    def infer(self, flat: torch.Tensor, state, x, y):
        """(first output as numpy, mean loss) in inference mode."""
        output, value = self._infer(tf_view(flat), state, x, y)
        return output.numpy(), float(value)


class TorchSteps:
    """Gradient and inference steps with torch autograd (Keras' torch backend)."""

    #: A torch CPU tensor or numpy array as this backend's tensor (no copy).
    tensor = staticmethod(torch_tensor)

    def __init__(self, model, loss, sizes, shapes):
        self.model, self.loss, self.sizes, self.shapes = model, loss, sizes, shapes

    def _unflatten(self, flat):
        return [part.view(shape) for part, shape in zip(torch.split(flat, self.sizes), self.shapes)]

    def train(self, flat: torch.Tensor, grads_out: torch.Tensor, state, x, y, weight: float):
        """One forward and backward pass; the gradient goes into `grads_out`. Returns (unscaled
        loss, new non-trainable state)."""
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
        """(first output as numpy, mean loss) in inference mode."""
        with torch.no_grad():
            output, _ = self.model.stateless_call(self._unflatten(flat), state, x, **_mode(self.model, False))
            return as_torch(first_output(output)).float().numpy(), float(self.loss(y, output))


def steps_for(model, loss, sizes, shapes):
    """The step engine for the backend Keras runs on in this process."""
    engine = TensorFlowSteps if backend_name() == "tensorflow" else TorchSteps
    return engine(model, loss, sizes, shapes)
