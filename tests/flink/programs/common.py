"""Helpers of the Flink test programs: models exported with zoo.inference.export, and results as JSON."""

from __future__ import annotations

import json
import pathlib
import traceback

import numpy as np
import torch


class TwoInOut(torch.nn.Module):
    """(a [B, 4], b [B]) -> (scores [B, 3], total [B])."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, a, b):
        return self.linear(a) * b.unsqueeze(1), a.sum(1) + b


def mlp() -> torch.nn.Module:
    """A 4-8-3 MLP with fixed weights."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()


def export_models(folder: pathlib.Path) -> dict[str, str]:
    """The test models, exported (and checked against torch) by zoo.inference.export."""
    from zoo.inference import export

    folder.mkdir(parents=True, exist_ok=True)
    x = np.zeros((2, 4), np.float32)
    torch.manual_seed(1)
    return {
        "mlp_onnx": export(mlp(), x, folder / "mlp.onnx", format="onnx"),
        "mlp_xml": export(mlp(), x, folder / "mlp.xml", format="openvino"),
        "two_onnx": export(TwoInOut().eval(), [x, np.zeros(2, np.float32)], folder / "two.onnx", format="onnx"),
    }


def error_text(exc: BaseException) -> dict:
    """An exception as JSON: its type, message and (for Java errors) the whole cause chain."""
    return {"type": type(exc).__name__, "message": str(exc), "trace": "".join(traceback.format_exception(exc))}


def write(path: str, data: dict) -> None:
    """Write the program's results."""
    pathlib.Path(path).write_text(json.dumps(data))
