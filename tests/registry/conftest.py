"""Fixtures of the registry tests: one real MLflow sqlite registry for the session (creating its
tables takes seconds), a fresh model name per test, and small torch NNModels."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

pytest.importorskip("mlflow", reason="The registry tests need MLflow: pip install 'spark-zoo[registry]'")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory):
    """A sqlite tracking URI in a temporary folder (artifacts in mlartifacts beside it)."""
    return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def registry(tracking_uri):
    from zoo.registry import ModelRegistry

    return ModelRegistry(tracking_uri)


@pytest.fixture
def name():
    """A model name no other test uses."""
    return f"model-{uuid.uuid4().hex[:10]}"


def linear_net(seed: int = 0, features: int = 3):
    """A small torch regression net on `features` inputs (tanh keeps outputs input-dependent)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(features, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).eval()


def torch_outputs(net, x: np.ndarray) -> np.ndarray:
    """What `net` computes on `x`, for comparisons."""
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()
