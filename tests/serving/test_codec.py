"""The wire format: every value kind round-trips, corrupt payloads fail with a clear error."""

import base64
import pathlib

import numpy as np
import pytest

from zoo.serving import codec
from zoo.serving.codec import Image, SparseTensor
from zoo.serving.errors import InputError


def test_round_trip_of_every_kind():
    rng = np.random.default_rng(0)
    value = {
        "f32": rng.random((2, 3)).astype(np.float32),
        "i64": np.arange(5, dtype=np.int64),
        "bool": np.array([True, False]),
        "sparse": SparseTensor([[0, 1], [2, 0]], [1.5, -2.0], (3, 2)),
        "text": "héllo",
        "image": Image(b"\x89PNG fake bytes"),
        "nested": [1, 2.5, None, {"k": "v"}],
    }
    back = codec.decode(codec.encode(value))
    for key in ("f32", "i64", "bool"):
        assert back[key].dtype == value[key].dtype
        np.testing.assert_array_equal(back[key], value[key])
    np.testing.assert_array_equal(back["sparse"].to_dense(), value["sparse"].to_dense())
    assert back["text"] == "héllo" and back["image"] == value["image"] and back["nested"] == value["nested"]


def test_sparse_to_dense_and_validation():
    sparse = SparseTensor([[0, 0], [1, 2]], [3.0, 4.0], (2, 3))
    np.testing.assert_array_equal(sparse.to_dense(), [[3, 0, 0], [0, 0, 4]])
    with pytest.raises(InputError, match="outside the dense shape"):
        SparseTensor([[0, 5]], [1.0], (2, 3))
    with pytest.raises(InputError, match="nnz"):
        SparseTensor([[0, 1]], [1.0, 2.0], (2, 3))


@pytest.mark.parametrize("payload", [b"garbage", b"ZS\x01\xff\xff\xff\x7f{", codec.encode({"a": 1})[:-1] + b"]x"])
def test_corrupt_payload_raises_input_error(payload):
    with pytest.raises(InputError):
        codec.decode(payload)


def test_client_values_normalise(tmp_path):
    path = tmp_path / "img.bin"
    path.write_bytes(b"abc")
    assert codec.as_input("x", pathlib.Path(path)) == Image(b"abc")
    assert codec.as_input("x", b"abc") == Image(b"abc")
    assert Image.from_base64(base64.b64encode(b"abc").decode()) == Image(b"abc")
    assert codec.as_input("x", [1.0, 2.0]).shape == (2,)
    with pytest.raises(InputError, match="Input 'x' has type object"):
        codec.as_input("x", object())
    with pytest.raises(InputError, match="dtype"):
        codec.as_input("x", np.array(["a", "b"], dtype=object))
    with pytest.raises(InputError, match="base64"):
        Image.from_base64("not base64 !!")


def test_json_forms():
    assert codec.value_from_json("x", [[1, 2]]).dtype == np.float32
    typed = codec.value_from_json("x", {"data": [1, 2, 3, 4], "dtype": "int64", "shape": [2, 2]})
    assert typed.dtype == np.int64 and typed.shape == (2, 2)
    sparse = codec.value_from_json("x", {"indices": [[1]], "values": [5], "shape": [3]})
    np.testing.assert_array_equal(sparse.to_dense(), [0, 5, 0])
    assert codec.value_from_json("x", {"b64": base64.b64encode(b"img").decode()}) == Image(b"img")
    assert codec.instance_from_json([1, 2], "input").keys() == {"input"}
    assert codec.instance_from_json({"a": [1], "b": "s"}, "input").keys() == {"a", "b"}
    with pytest.raises(InputError, match="unsupported JSON form"):
        codec.value_from_json("x", {"unknown": 1})
    assert codec.to_json({"a": np.arange(3), "b": np.float32(2.5)}) == {"a": [0, 1, 2], "b": 2.5}
