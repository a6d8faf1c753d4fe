"""Export the Java tests' fixtures: small PyTorch models, inputs, and PyTorch's outputs.

Run by ``zoo/serving_java_api/build.sh`` with the project's Python::

    .venv/bin/python zoo/serving_java_api/tests/make_fixtures.py OUT_DIR

Each model is exported with ``zoo.inference.export`` twice, as ``OUT_DIR/<model>.onnx`` and as
OpenVINO IR ``OUT_DIR/<model>.xml`` (+ ``.bin``), both with a dynamic batch dimension. The
expected outputs are the PyTorch module's own, so the Java tests check the whole path
(export -> OpenVINO -> JNA -> Java) against the source model. ``OUT_DIR/cases.txt`` lists the
cases; ``zoo.inference.Fixtures`` (Java) documents and reads its format. Data files are raw
little-endian arrays.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from torch import nn

from zoo.inference import export

#: Seed of the weights and of the inputs, so fixtures are the same on every run.
DEFAULT_SEED = 7

_TYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32", np.dtype(np.int64): "int64"}


class MLP(nn.Module):
    """4 features -> 3 scores."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """A 1x8x8 image -> 5 scores."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class TwoInput(nn.Module):
    """Two inputs ([N, 3] and [N, 2]) -> two outputs ([N, 4] and [N, 2])."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(5, 4)

    def forward(self, a, b):
        return self.mix(torch.cat([a, b], dim=1)), a.sum(dim=1, keepdim=True) * b


class Embed(nn.Module):
    """int64 token ids [N, 3] -> the mean of their embeddings [N, 4]."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 4)

    def forward(self, ids):
        return self.embedding(ids).mean(dim=1)


class IntScale(nn.Module):
    """int32 counts [N, 3] -> scaled floats [N, 3]."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(3))

    def forward(self, x):
        return x.to(torch.float32) * self.scale + 1.0


def _inputs(rng: np.random.RandomState, model: str, batch: int) -> list[np.ndarray]:
    if model == "mlp":
        return [rng.randn(batch, 4).astype(np.float32)]
    if model == "cnn":
        return [rng.randn(batch, 1, 8, 8).astype(np.float32)]
    if model == "two_input":
        return [rng.randn(batch, 3).astype(np.float32), rng.randn(batch, 2).astype(np.float32)]
    if model == "embed":
        return [rng.randint(0, 10, size=(batch, 3)).astype(np.int64)]
    return [rng.randint(-50, 50, size=(batch, 3)).astype(np.int32)]


#: (model name, module class, batch sizes of its cases); the first batch is the export example.
MODELS = [
    ("mlp", MLP, (2, 1, 5)),
    ("cnn", CNN, (2, 1, 3)),
    ("two_input", TwoInput, (2, 1, 4)),
    ("embed", Embed, (2, 1, 3)),
    ("int_scale", IntScale, (2, 1, 4)),
]


def _write(out_dir: str, name: str, array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    kind = _TYPE_NAMES[array.dtype]
    array.astype(array.dtype.newbyteorder("<"), copy=False).tofile(os.path.join(out_dir, name))
    dims = ",".join(str(d) for d in array.shape) or "-"
    return f"{kind} {dims} {name}"


def _export_both(module: nn.Module, example: list[np.ndarray], out_dir: str, name: str) -> None:
    example_input = example[0] if len(example) == 1 else list(example)
    for fmt, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        path = os.path.join(out_dir, name + suffix)
        export(module, example_input, path, format=fmt)


def make_fixtures(out_dir: str, seed: int = DEFAULT_SEED) -> int:
    """Export every model and write its cases; returns the number of cases written."""
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.RandomState(seed)
    lines = []
    for name, cls, batches in MODELS:
        module = cls().eval()
        _export_both(module, _inputs(rng, name, batches[0]), out_dir, name)
        for batch in batches[1:]:
            arrays = _inputs(rng, name, batch)
            with torch.no_grad():
                outputs = module(*(torch.from_numpy(a) for a in arrays))
            outputs = outputs if isinstance(outputs, tuple) else (outputs,)
            case = f"{name}_b{batch}"
            lines.append(f"case {case} {name}")
            lines += [f"in {_write(out_dir, f'{case}.in{i}.bin', a)}" for i, a in enumerate(arrays)]
            lines += [f"out {_write(out_dir, f'{case}.out{j}.bin', o.numpy())}" for j, o in enumerate(outputs)]
            lines.append("end")
    with open(os.path.join(out_dir, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return sum(1 for line in lines if line.startswith("case "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder to write models, data and cases.txt into")
    args = parser.parse_args(argv)
    count = make_fixtures(args.out_dir)
    print(f"wrote {count} cases to {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
