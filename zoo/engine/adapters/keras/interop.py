"""Tensors between torch (the engine's buffers) and the Keras backend, without copies where the
backend can read torch's memory in place (DLPack on TensorFlow, the same tensor on torch)."""

from __future__ import annotations

import numpy as np
import torch
import torch.utils.dlpack

#: TensorFlow's CPU kernels assume this alignment (EIGEN_MAX_ALIGN_BYTES) of every buffer.
TF_ALIGNMENT_BYTES = 64


def torch_tensor(value: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A torch CPU tensor or numpy array as a torch tensor (no copy): the torch backend's tensor."""
    return value if torch.is_tensor(value) else torch.from_numpy(np.asarray(value))


def tf_tensor(value: torch.Tensor | np.ndarray):
    """A torch CPU tensor or numpy array as a TensorFlow tensor."""
    import tensorflow as tf

    return tf.convert_to_tensor(value.numpy() if torch.is_tensor(value) else value)


def tf_view(tensor: torch.Tensor):
    """A TensorFlow tensor over a torch CPU tensor's memory (DLPack, no copy) when TensorFlow can
    use it in place: contiguous and aligned as its kernels require (a hard crash otherwise);
    else a copy. TensorFlow never writes into memory it does not own, so the view is read-only."""
    import tensorflow as tf

    if tensor.is_contiguous() and tensor.data_ptr() % TF_ALIGNMENT_BYTES == 0:
        return tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(tensor))
    return tf.convert_to_tensor(tensor.numpy())


def torch_view(tensor) -> torch.Tensor:
    """A torch tensor over a TensorFlow CPU tensor's memory (DLPack, no copy)."""
    import tensorflow as tf

    return torch.from_dlpack(tf.experimental.dlpack.to_dlpack(tensor))


def as_torch(value) -> torch.Tensor:
    """A backend tensor as a torch CPU tensor."""
    if torch.is_tensor(value):
        return value.detach().cpu()
    return torch.from_numpy(np.array(value))
