"""The wire format of Cluster Serving: request inputs and results as bytes, and as JSON over HTTP.

A payload is ``MAGIC | u32 header length | JSON header | raw buffers``. The header is a tree of
plain JSON values in which each array, sparse tensor and image points at a raw buffer, so dense
tensors travel without text conversion and decode with `numpy.frombuffer`.

Value kinds a request input may hold:

- dense tensor: a `numpy.ndarray` of a numeric or bool dtype;
- sparse tensor: `SparseTensor(indices, values, shape)` (COO, ``indices`` of shape ``[nnz, ndim]``);
- string: `str`;
- image: `Image` (encoded bytes: JPEG, PNG, ...), or plain ``bytes``, or a `pathlib.Path` to an
  image file; `Image.from_base64` takes base64 text. Images are decoded by the workers.
"""

from __future__ import annotations

import base64
import json
import math
import pathlib
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.dtypes import lossless_cast
from zoo.serving.errors import InputError

MAGIC = b"ZS\x01"
_HEADER_LEN = struct.Struct("<I")


@dataclass(frozen=True)
class SparseTensor:
    """A sparse tensor in COO form.

    Args:
        indices: integer array of shape ``[nnz, ndim]``, one row of coordinates per value.
        values: array of shape ``[nnz]`` (a Python list of floats becomes float32).
        shape: the dense shape.
    """

    indices: np.ndarray
    values: np.ndarray
    shape: tuple[int, ...]

    def __post_init__(self):
        indices = np.asarray(self.indices, dtype=np.int64)
        values = _list_to_array(self.values)
        shape = tuple(int(d) for d in self.shape)
        if indices.ndim == 1 and len(shape) == 1:
            indices = indices.reshape(-1, 1)
        if indices.ndim != 2 or indices.shape[1] != len(shape):
            raise InputError(
                f"Expected sparse `indices` of shape [nnz, ndim={len(shape)}]. Received shape "
                f"{list(indices.shape)} for dense shape {list(shape)}. Pass one row of "
                f"coordinates per value."
            )
        if values.ndim != 1 or values.shape[0] != indices.shape[0]:
            raise InputError(
                f"Expected sparse `values` of shape [nnz={indices.shape[0]}]. Received shape "
                f"{list(values.shape)}."
            )
        if indices.size and ((indices < 0).any() or (indices >= np.asarray(shape)).any()):
            raise InputError(
                f"Sparse `indices` fall outside the dense shape {list(shape)}. Received index "
                f"range [{int(indices.min())}, {int(indices.max())}]."
            )
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "shape", shape)

    def to_dense(self) -> np.ndarray:
        """The dense array (zeros where no value is given; repeated coordinates are summed)."""
        dense = np.zeros(self.shape, dtype=self.values.dtype)
        np.add.at(dense, tuple(self.indices.T), self.values)
        return dense


@dataclass(frozen=True)
class Image:
    """An encoded image (JPEG, PNG, ... any format Pillow reads), decoded by the serving workers.

    Args:
        data: the encoded bytes of the image file.
    """

    data: bytes

    @classmethod
    def from_path(cls, path: str | pathlib.Path) -> "Image":
        """Read the encoded image at ``path`` (on the client's file system)."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise InputError(f"Image file {str(path)!r} does not exist. Pass the path of an image file.")
        return cls(path.read_bytes())

    @classmethod
    def from_base64(cls, text: str | bytes) -> "Image":
        """Decode base64 text (standard alphabet, with or without padding) into an image."""
        if isinstance(text, str):
            text = text.encode("ascii", errors="strict")
        text = text + b"=" * (-len(text) % 4)
        try:
            return cls(base64.b64decode(text, validate=True))
        except ValueError as exc:
            raise InputError(f"Image text is not valid base64 ({exc}). Pass base64-encoded image bytes.") from None


def as_input(name: str, value: Any) -> Any:
    """Normalise one request input of the Python client to a value kind the codec carries."""
    if isinstance(value, (np.ndarray, SparseTensor, Image, str)):
        if isinstance(value, np.ndarray):
            _check_array(name, value)
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Image(bytes(value))
    if isinstance(value, pathlib.Path):
        return Image.from_path(value)
    if isinstance(value, np.generic) or isinstance(value, (int, float, bool)):
        return np.asarray(value)
    if isinstance(value, (list, tuple)):
        array = _list_to_array(value)
        _check_array(name, array)
        return array
    raise InputError(
        f"Input {name!r} has type {type(value).__name__}, which Cluster Serving cannot carry. "
        f"Expected a numpy array, a SparseTensor, a str, or an image (Image, bytes or pathlib.Path)."
    )


def _list_to_array(value: Any) -> np.ndarray:
    """An array from a list; Python floats become float32 (what models take), not float64."""
    if isinstance(value, np.ndarray):
        return value
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _check_array(name: str, array: np.ndarray) -> None:
    if array.dtype.kind not in "biufc":
        raise InputError(
            f"Input {name!r} is an array of dtype {array.dtype}; expected a numeric or bool dtype. "
            f"Send strings as str values, one per input."
        )


def encode(value: Any) -> bytes:
    """Serialise a tree of arrays, sparse tensors, images, strings, numbers, lists and dicts."""
    buffers: list[bytes] = []
    tree = _to_tree(value, buffers)
    header = json.dumps({"v": tree, "b": [len(b) for b in buffers]}, separators=(",", ":")).encode()
    return b"".join([MAGIC, _HEADER_LEN.pack(len(header)), header, *buffers])


def decode(payload: bytes) -> Any:
    """Inverse of `encode`. Raises `InputError` when ``payload`` is not a Cluster Serving payload."""
    if not isinstance(payload, (bytes, bytearray, memoryview)) or bytes(payload[:3]) != MAGIC:
        raise InputError(
            "Payload is not in the Cluster Serving format (bad magic bytes). Enqueue requests "
            "through zoo.serving.InputQueue or the HTTP frontend."
        )
    view = memoryview(payload)
    try:
        (length,) = _HEADER_LEN.unpack_from(view, 3)
        start = 3 + _HEADER_LEN.size
        header = json.loads(bytes(view[start : start + length]))
        offset = start + length
        buffers = []
        for size in header["b"]:
            buffers.append(view[offset : offset + size])
            offset += size
        if offset != len(view):
            raise ValueError(f"{len(view) - offset} trailing bytes")
        return _from_tree(header["v"], buffers)
    except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise InputError(f"Payload is corrupt and cannot be decoded ({type(exc).__name__}: {exc}).") from None


def _to_tree(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, np.ndarray):
        _check_array("value", value)
        array = np.ascontiguousarray(value)
        buffers.append(array.tobytes())
        return {"$nd": [len(buffers) - 1, array.dtype.str, list(array.shape)]}
    if isinstance(value, SparseTensor):
        return {"$sp": [_to_tree(value.indices, buffers), _to_tree(value.values, buffers), list(value.shape)]}
    if isinstance(value, Image):
        buffers.append(bytes(value.data))
        return {"$img": len(buffers) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_tree(v, buffers) for v in value]
    if isinstance(value, dict):
        return {"$map": {str(k): _to_tree(v, buffers) for k, v in value.items()}}
    raise InputError(f"Cannot encode a value of type {type(value).__name__}.")


def _from_tree(tree: Any, buffers: list) -> Any:
    if isinstance(tree, list):
        return [_from_tree(v, buffers) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "$nd" in tree:
        index, dtype, shape = tree["$nd"]
        dtype = np.dtype(dtype)
        if dtype.kind not in "biufc":
            raise ValueError(f"dtype {dtype} is not numeric")
        return np.frombuffer(buffers[index], dtype=dtype).reshape(shape)
    if "$sp" in tree:
        indices, values, shape = tree["$sp"]
        return SparseTensor(_from_tree(indices, buffers), _from_tree(values, buffers), tuple(shape))
    if "$img" in tree:
        return Image(bytes(buffers[tree["$img"]]))
    if "$map" in tree:
        return {k: _from_tree(v, buffers) for k, v in tree["$map"].items()}
    raise ValueError(f"unknown node {sorted(tree)}")


# ---- JSON (HTTP) -------------------------------------------------------------------------------

_TYPED_FORMS = ({"b64"}, {"indices", "values", "shape"}, {"data"}, {"data", "dtype"}, {"data", "shape"},
                {"data", "dtype", "shape"})


def _is_typed_value(obj: dict) -> bool:
    return set(obj) in _TYPED_FORMS


def _exact_array(name: str, data: Any, dtype: np.dtype) -> np.ndarray:
    """``data`` (JSON numbers) as an array of ``dtype``, refused when a value would change."""
    array, problem = lossless_cast(np.asarray(data), dtype)
    if problem is not None:
        raise InputError(
            f"Input {name!r} cannot be sent as {dtype.name}: {problem}. Send values that {dtype.name} holds "
            f"exactly, or declare a dtype that does, e.g. {{\"data\": [...], \"dtype\": \"float64\"}}."
        )
    return array


def value_from_json(name: str, obj: Any) -> Any:
    """Turn one JSON input into a value kind of the codec.

    Numbers are converted by `zoo.dtypes.lossless_cast`: a value the dtype cannot hold exactly
    (16777217 as float32, 1.5 as int64) is refused, never changed; floats may round.

    - nested lists of numbers (or a number): a float32 tensor;
    - ``{"data": [...], "dtype": "int64", "shape": [...]}``: a tensor of that dtype (and shape);
    - ``{"indices": [[...]], "values": [...], "shape": [...]}``: a sparse tensor;
    - a string: a string;
    - ``{"b64": "..."}``: an encoded image in base64.
    """
    try:
        if isinstance(obj, str):
            return obj
        if isinstance(obj, bool) or obj is None:
            raise InputError(f"Input {name!r} is {obj!r}; expected a number, a list, a string or an object.")
        if isinstance(obj, (int, float, list)):
            return _exact_array(name, obj, np.dtype(np.float32))
        if isinstance(obj, dict) and _is_typed_value(obj):
            if "b64" in obj:
                if not isinstance(obj["b64"], str):
                    raise InputError(f"Input {name!r}: `b64` must be a base64 string.")
                return Image.from_base64(obj["b64"])
            if "indices" in obj:
                return SparseTensor(obj["indices"], np.asarray(obj["values"], dtype=np.float32), tuple(obj["shape"]))
            dtype = np.dtype(obj.get("dtype", "float32"))
            if dtype.kind not in "biufc":
                raise InputError(f"Input {name!r} declares dtype {dtype}; expected a numeric or bool dtype.")
            array = _exact_array(name, obj["data"], dtype)
            if "shape" in obj:
                array = array.reshape(obj["shape"])
            return array
    except InputError:
        raise
    except (ValueError, TypeError) as exc:
        raise InputError(f"Input {name!r} cannot be read ({exc}).") from None
    raise InputError(
        f"Input {name!r} has an unsupported JSON form {type(obj).__name__}"
        f"{' with keys ' + str(sorted(obj)) if isinstance(obj, dict) else ''}. Expected nested "
        f"number lists, a string, {{'b64': ...}}, {{'indices', 'values', 'shape'}} or "
        f"{{'data', 'dtype', 'shape'}}."
    )


def instance_from_json(instance: Any, default_name: str) -> dict[str, Any]:
    """One element of ``"instances"``: a mapping of input names to values, or one unnamed value."""
    if isinstance(instance, dict) and instance and not _is_typed_value(instance):
        return {str(k): value_from_json(str(k), v) for k, v in instance.items()}
    return {default_name: value_from_json(default_name, instance)}


def to_json(value: Any) -> Any:
    """A result (arrays, numbers, strings, lists, dicts) as strict JSON values: NaN and
    ±Infinity, which JSON cannot carry, become ``null`` (`count_non_finite` counts them)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            plain = value.astype(object)
            plain[~np.isfinite(value)] = None
            return plain.tolist()
        return value.tolist()
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, SparseTensor):
        return {"indices": value.indices.tolist(), "values": value.values.tolist(), "shape": list(value.shape)}
    if isinstance(value, Image):
        return {"b64": base64.b64encode(value.data).decode("ascii")}
    return value


def count_non_finite(value: Any) -> int:
    """How many NaN and ±Infinity numbers a result holds (the values `to_json` sends as null)."""
    if isinstance(value, np.ndarray):
        return int(value.size - np.isfinite(value).sum()) if value.dtype.kind == "f" else 0
    if isinstance(value, (float, np.floating)):
        return 0 if math.isfinite(value) else 1
    if isinstance(value, (list, tuple)):
        return sum(count_non_finite(v) for v in value)
    if isinstance(value, dict):
        return sum(count_non_finite(v) for v in value.values())
    if isinstance(value, SparseTensor):
        return count_non_finite(value.values)
    return 0
