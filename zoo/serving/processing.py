"""What workers do to a request before and after the model: check and decode inputs, and top-N
outputs.

`check_input` refuses, without decoding anything, an input too large to decode safely: an image
over ``image.max_pixels`` (read from its header), an image for a model with no ``image:``
section, a tensor (a sparse tensor's dense shape too) over ``max_input_elements``. The HTTP
frontend runs it before queueing, the workers before decoding. `to_model_inputs` turns the decoded
values of one request into numpy arrays (sparse tensors densified, images decoded and resized,
strings encoded when configured); `top_n` turns one output row into its best ``[index, score]``
pairs. All raise `InputError` naming the input and the fix.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from zoo.serving.codec import Image, SparseTensor
from zoo.serving.config import ImageConfig, ModelConfig
from zoo.serving.errors import InputError


def _unreadable(name: str, exc: Exception) -> InputError:
    return InputError(f"Input {name!r} is not a readable image ({exc}). Send JPEG/PNG bytes, a path or base64.")


def check_image(name: str, image: Image, model: ModelConfig) -> None:
    """Refuse an image for a model that takes none, or one larger than ``image.max_pixels``,
    from its header alone (Pillow reads the size without decoding the pixels)."""
    from PIL import Image as PILImage, UnidentifiedImageError

    if model.image is None:
        raise InputError(
            f"Input {name!r} is an image, but model {model.name!r} takes no images: config.yaml has no `image:` "
            f"section for it. Send a tensor, or add an `image:` section (resize, layout) to the model."
        )
    try:
        with PILImage.open(io.BytesIO(image.data)) as opened:
            width, height = opened.size
    except (UnidentifiedImageError, OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise _unreadable(name, exc) from None
    if width * height > model.image.max_pixels:
        raise InputError(
            f"Input {name!r} is a {width}x{height} image ({width * height:,} pixels); model {model.name!r} takes at "
            f"most {model.image.max_pixels:,} (image.max_pixels). Send a smaller image, or raise image.max_pixels."
        )


def check_input(name: str, value: Any, model: ModelConfig) -> None:
    """Refuse an input of one request that is too large to decode safely, before decoding it."""
    if isinstance(value, Image):
        check_image(name, value, model)
        return
    if isinstance(value, (np.ndarray, SparseTensor)):
        shape = value.shape
        elements = int(np.prod(shape, dtype=np.float64))
        if elements > model.max_input_elements:
            kind = "a sparse tensor of dense shape" if isinstance(value, SparseTensor) else "a tensor of shape"
            raise InputError(
                f"Input {name!r} is {kind} {list(shape)} ({elements:,} elements); model {model.name!r} takes at most "
                f"{model.max_input_elements:,} (max_input_elements). Send a smaller input, or raise max_input_elements."
            )


def decode_image(name: str, image: Image, config: ImageConfig | None) -> np.ndarray:
    """Decode an encoded image into a float32 tensor as ``config`` says (CHW, scaled by 1/255 by
    default). Call `check_image` first: this decodes whatever size the header announces."""
    from PIL import Image as PILImage, UnidentifiedImageError

    config = config or ImageConfig()
    try:
        with PILImage.open(io.BytesIO(image.data)) as opened:
            picture = opened.convert(config.mode)
            if config.resize is not None:
                height, width = config.resize
                picture = picture.resize((width, height), PILImage.BILINEAR)
            array = np.asarray(picture, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise _unreadable(name, exc) from None
    if array.ndim == 2:
        array = array[:, :, None]
    array = array * np.float32(config.scale)
    if config.mean is not None:
        array = array - np.asarray(config.mean, dtype=np.float32)
    if config.std is not None:
        array = array / np.asarray(config.std, dtype=np.float32)
    if config.layout == "CHW":
        array = np.ascontiguousarray(array.transpose(2, 0, 1))
    return array


def encode_string(name: str, text: str, max_length: int | None) -> np.ndarray:
    """A string as a numpy str scalar, or as uint8 UTF-8 codes zero-padded to ``max_length``."""
    if max_length is None:
        return np.asarray(text)
    data = text.encode("utf-8")
    if len(data) > max_length:
        raise InputError(
            f"Input {name!r} is {len(data)} bytes in UTF-8; the model takes at most {max_length} "
            f"(string_max_length). Send a shorter string or raise string_max_length in config.yaml."
        )
    codes = np.zeros(max_length, dtype=np.uint8)
    codes[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    return codes


def to_model_inputs(inputs: Any, model: ModelConfig) -> dict[str, np.ndarray]:
    """The decoded inputs of one request as ``{name: ndarray}`` without a batch dimension."""
    if not isinstance(inputs, dict) or not inputs:
        raise InputError(f"Expected a request to hold named inputs. Received {type(inputs).__name__}.")
    arrays: dict[str, np.ndarray] = {}
    for name, value in inputs.items():
        check_input(name, value, model)
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif isinstance(value, SparseTensor):
            arrays[name] = value.to_dense()
        elif isinstance(value, Image):
            arrays[name] = decode_image(name, value, model.image)
        elif isinstance(value, str):
            arrays[name] = encode_string(name, value, model.string_max_length)
        else:
            raise InputError(
                f"Input {name!r} has type {type(value).__name__}; expected a tensor, a sparse tensor, "
                f"a string or an image."
            )
    return arrays


def top_n(output: Any, n: int) -> list[list[Any]]:
    """The ``n`` largest entries of one output row as ``[[index, score], ...]``, highest first."""
    if not isinstance(output, np.ndarray):
        raise InputError(
            f"top_n needs a model with one tensor output; this model returned {type(output).__name__}. "
            f"Remove top_n from config.yaml for multi-output models."
        )
    flat = output.reshape(-1)
    n = min(n, flat.size)
    best = np.argpartition(-flat, n - 1)[:n] if n < flat.size else np.arange(flat.size)
    best = best[np.argsort(-flat[best], kind="stable")]
    return [[int(i), float(flat[i])] for i in best]
