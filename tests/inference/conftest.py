"""Small models built in code for the inference tests: an MLP, a CNN and a two-input net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn


class MLP(nn.Module):
    """4 features -> 3 class scores."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    """1x12x12 images -> 5 class scores (conv, batch norm, pooling)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 5)

    def forward(self, image):
        return self.head(torch.flatten(self.features(image), 1))


class TwoInput(nn.Module):
    """A float vector and an int64 category id -> (score, embedding norm): two inputs, two outputs."""

    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(4, 6)
        self.embed = nn.Embedding(10, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, features, category):
        hidden = torch.relu(self.dense(features) + self.embed(category))
        return self.out(hidden), hidden.norm(dim=1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def mlp(rng):
    torch.manual_seed(0)
    return MLP().eval(), rng.standard_normal((6, 4)).astype(np.float32)


@pytest.fixture
def cnn(rng):
    torch.manual_seed(1)
    model = CNN()
    with torch.no_grad():
        bn = model.features[1]
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 1.5)
    return model.eval(), rng.standard_normal((4, 1, 12, 12)).astype(np.float32)


@pytest.fixture
def two_input(rng):
    torch.manual_seed(2)
    example = [rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 10, size=(5,)).astype(np.int64)]
    return TwoInput().eval(), example


@pytest.fixture(params=["mlp", "cnn", "two_input"])
def any_model(request):
    """Each of the three models with its example input, as (name, module, example)."""
    module, example = request.getfixturevalue(request.param)
    return request.param, module, example


def _torch_outputs(module: nn.Module, example) -> list[np.ndarray]:
    arrays = example if isinstance(example, list) else [example]
    with torch.no_grad():
        out = module(*[torch.from_numpy(a) for a in arrays])
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in out]


def _as_list(result) -> list[np.ndarray]:
    return result if isinstance(result, list) else [result]


@pytest.fixture
def torch_outputs():
    """f(module, example) -> the module's outputs as a list of ndarrays (the reference to match)."""
    return _torch_outputs


@pytest.fixture
def as_list():
    """f(predict result) -> the result as a list of ndarrays."""
    return _as_list
