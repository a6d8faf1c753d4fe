"""Int8 post-training quantization with NNCF, with the accuracy change reported."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

nncf = pytest.importorskip("nncf", reason="Int8 quantization needs `pip install nncf` (extra `quant`)")

from zoo.inference import InferenceModel, QuantizationReport, quantize  # noqa: E402


def _blobs(n: int, seed: int):
    """Three well separated Gaussian classes in 8 dimensions."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((3, 8)) * 3
    labels = rng.integers(0, 3, n)
    return (centers[labels] + rng.standard_normal((n, 8))).astype(np.float32), labels


@pytest.fixture(scope="module")
def trained_classifier():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    x, y = _blobs(600, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
    return model.eval()


def test_quantize_reports_accuracy_change_and_writes_int8_ir(trained_classifier, tmp_path):
    calibration, _ = _blobs(200, seed=1)
    test_x, test_y = _blobs(400, seed=2)
    path = tmp_path / "int8" / "clf.xml"
    report = quantize(trained_classifier, calibration, path, eval_data=test_x, eval_labels=test_y)
    assert isinstance(report, QuantizationReport)
    assert report.samples == 400
    assert report.fp32_accuracy > 0.9
    assert report.accuracy_change == pytest.approx(report.int8_accuracy - report.fp32_accuracy)
    assert abs(report.accuracy_change) <= 0.03
    assert report.top1_agreement >= 0.95
    assert 0 < report.mean_abs_diff <= report.max_abs_diff
    assert report.relative_diff < 0.2
    assert "change" in str(report)
    assert sorted(os.listdir(path.parent)) == ["clf.bin", "clf.xml"]

    handle = InferenceModel().load_openvino(path)
    assert _has_fake_quantize(path)
    accuracy = float(np.mean(handle.predict(test_x).argmax(1) == test_y))
    assert accuracy == pytest.approx(report.int8_accuracy)


def _has_fake_quantize(path) -> bool:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def test_quantize_checks_its_arguments(trained_classifier, tmp_path):
    x, y = _blobs(10, seed=3)
    with pytest.raises(ValueError, match="end with '.xml'"):
        quantize(trained_classifier, x, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="one label per evaluation sample \\(10\\). Received 3"):
        quantize(trained_classifier, x, tmp_path / "m.xml", eval_labels=y[:3])
