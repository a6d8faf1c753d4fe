"""End to end through the Python client: each input kind reaches the model and the answer matches
the torch module run directly."""

import base64
import io
import time

import numpy as np
import pytest

from zoo.serving import Image, InputQueue, OutputQueue, PredictionError, SparseTensor
from zoo.serving.errors import ResultTimeoutError

from .conftest import make_config


def png_bytes(seed: int, size=(12, 10)) -> bytes:
    from PIL import Image as PILImage

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def expected_image_tensor(data: bytes) -> np.ndarray:
    from PIL import Image as PILImage

    picture = PILImage.open(io.BytesIO(data)).convert("RGB").resize((8, 8), PILImage.BILINEAR)
    return (np.asarray(picture, dtype=np.float32) / 255.0).transpose(2, 0, 1)


@pytest.fixture
def cnn_queue(redis_server, models, start_workers):
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 8,
                                             "image": {"resize": [8, 8]}}])
    start_workers(config)
    with InputQueue(redis_server.url, "cnn") as inputs, OutputQueue(redis_server.url, "cnn") as outputs:
        yield inputs, outputs, reference


def test_ndarray_sync_and_async(cnn_queue):
    inputs, outputs, reference = cnn_queue
    x = np.random.default_rng(1).random((5, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(inputs.predict(x[0], timeout=10), reference(x[:1])[0], rtol=1e-5, atol=1e-5)
    for i in range(1, 5):
        inputs.enqueue(f"req-{i}", input=x[i])
    got = {f"req-{i}": outputs.query(f"req-{i}", timeout=10) for i in range(1, 5)}
    np.testing.assert_allclose(np.stack([got[f"req-{i}"] for i in range(1, 5)]), reference(x[1:]), rtol=1e-5, atol=1e-5)
    # query leaves the result readable; dequeue takes every one of them
    assert outputs.query("req-1") is not None
    taken = outputs.dequeue()
    assert set(taken) == {"req-1", "req-2", "req-3", "req-4"}
    assert outputs.query("req-1") is None and outputs.dequeue() == {}


def test_sparse_tensor(cnn_queue):
    inputs, _, reference = cnn_queue
    sparse = SparseTensor([[0, 1, 2], [2, 7, 7], [1, 0, 3]], [0.5, -1.0, 2.0], (3, 8, 8))
    np.testing.assert_allclose(inputs.predict(sparse, timeout=10), reference(sparse.to_dense()[None])[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["bytes", "path", "base64"])
def test_image_bytes_path_and_base64(cnn_queue, tmp_path, form):
    inputs, _, reference = cnn_queue
    data = png_bytes(seed=3)
    value = {"bytes": data, "path": tmp_path / "x.png", "base64": Image.from_base64(base64.b64encode(data))}[form]
    (tmp_path / "x.png").write_bytes(data)
    np.testing.assert_allclose(inputs.predict({"input": value}, timeout=10),
                               reference(expected_image_tensor(data)[None])[0], rtol=1e-5, atol=1e-5)


def test_strings(redis_server, models, start_workers):
    path, _ = models["bytes"]
    config = make_config(redis_server.url, [{"name": "bytes", "path": path, "string_max_length": 16}])
    start_workers(config)
    inputs = InputQueue(redis_server.url, "bytes")
    for text in ("zoo", "héllo wörld"):
        encoded = text.encode("utf-8")
        np.testing.assert_allclose(inputs.predict(text, timeout=10), [sum(encoded), len(encoded)])
    with pytest.raises(PredictionError, match="string_max_length"):
        inputs.predict("x" * 17, timeout=10)


def test_named_inputs_and_top_n(redis_server, models, start_workers):
    two_path, two = models["two"]
    cnn_path, cnn = models["cnn"]
    config = make_config(redis_server.url, [{"name": "two", "path": two_path},
                                            {"name": "cnn", "path": cnn_path, "top_n": 3}])
    start_workers(config, "two")
    start_workers(config, "cnn")
    a, b = np.arange(4, dtype=np.float32), np.ones(4, dtype=np.float32)
    np.testing.assert_allclose(InputQueue(redis_server.url, "two").predict({"a": a, "b": b}, timeout=10), a * 2 + b)
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    scores = cnn(x)[0]
    best = InputQueue(redis_server.url, "cnn").predict(x[0], timeout=10)
    assert [index for index, _ in best] == list(np.argsort(-scores)[:3])
    np.testing.assert_allclose([score for _, score in best], np.sort(scores)[::-1][:3], rtol=1e-5)


def test_predict_times_out_without_workers(redis_client, redis_server):
    start = time.monotonic()
    with pytest.raises(ResultTimeoutError, match="OutputQueue.query"):
        InputQueue(redis_server.url, "nobody").predict(np.zeros(2, np.float32), timeout=0.3)
    assert time.monotonic() - start >= 0.3
