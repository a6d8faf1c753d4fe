"""NNModel.setBackend: transform gives the torch backend's predictions on every backend.

Uses the session-scoped ``spark`` fixture of tests/conftest.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

nnframes = pytest.importorskip("zoo.nnframes", reason="needs zoo.nnframes (NNModel)")
NNModel = nnframes.NNModel
if not hasattr(NNModel, "setBackend"):
    pytest.skip("NNModel.setBackend is not in zoo.nnframes yet", allow_module_level=True)


class _FlatCNN(torch.nn.Module):
    """A CNN over 1x8x8 images given as flat 64-float rows (the array<float> column)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2)
        )
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.conv(x.reshape(-1, 1, 8, 8)), 1))


def _frame(spark, rows: np.ndarray):
    data = [(i, [float(v) for v in row]) for i, row in enumerate(rows)]
    return spark.createDataFrame(data, "id long, features array<float>").repartition(2)


def _predictions(model, df) -> np.ndarray:
    rows = sorted(model.transform(df).select("id", "prediction").collect(), key=lambda r: r["id"])
    return np.array([r["prediction"] for r in rows], dtype=np.float32)


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_transform_matches_torch_backend(spark, backend):
    torch.manual_seed(0)
    module = _FlatCNN().eval()
    rows = np.random.default_rng(0).standard_normal((37, 64)).astype(np.float32)
    df = _frame(spark, rows)
    model = NNModel(model=module, featuresCol="features", predictionCol="prediction", batchSize=8)
    want = _predictions(model.setBackend("torch"), df)
    with torch.no_grad():
        direct = module(torch.from_numpy(rows)).numpy()
    np.testing.assert_allclose(want, direct, atol=1e-4, rtol=1e-3)
    got = _predictions(model.setBackend(backend), df)
    assert got.shape == want.shape == (37, 3)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)
