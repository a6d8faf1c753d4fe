"""Training inside Flink operators (zoo/flink/training.py) on Zoo's engine.

One Flink client process (programs/training_cases.py) runs three fits on a real mini-cluster with
two worker subtasks: a bounded fit, the same fit with worker 1 failing once (Flink restarts the
group, which resumes from Zoo's checkpoint), and a stream-mode fit on an unbounded source that
emits model versions. The bounded fits are compared with the single-process reference fed the
same global batches (tests/engine/test_training.py::reference_training).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from tests.engine.test_training import reference_training
from tests.flink.conftest import run_program

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cases(flink_python, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flink-training")
    return run_program(flink_python, "training_cases", folder, str(folder), timeout=500)


def _reference(rows) -> torch.nn.Module:
    """The single-process reference: worker r of 2 holds rows r, r+2, ... (the fit's routing of
    a parallelism-1 input), the same net, SGD with momentum, batch 7, 2 epochs, no shuffling."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    parts = [[tuple(row) for row in rows[r::2]] for r in range(2)]
    return reference_training(parts, net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), 7, 2)


def _assert_weights(got: list, reference: torch.nn.Module) -> None:
    for g, want in zip(got, reference.parameters()):
        np.testing.assert_allclose(np.asarray(g), want.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_two_flink_workers_equal_the_single_process_reference(cases):
    fit = cases["equivalence"]
    _assert_weights(fit["weights"], _reference(cases["rows"]))
    steps = [h["iteration"] for h in fit["history"] if h["event"] == "step"]
    assert steps == list(range(1, 2 * math.ceil(37 / 7) + 1))
    assert fit["rows"] == 37, "the result counts one epoch's samples over both workers"
    assert fit["topology"] == "1 host(s) x 2 worker(s): shared memory"


def test_a_failed_worker_restarts_the_group_which_resumes_from_the_checkpoint(cases):
    fit = cases["failover"]
    assert fit["failed"], "the injected failure did not happen"
    starts = [h["iteration"] for h in fit["history"] if h["event"] == "start"]
    assert starts == [0, 4], "the restarted group resumes from the checkpoint of iteration 4"
    _assert_weights(fit["weights"], _reference(cases["rows"]))


def test_stream_mode_emits_model_versions_as_records_and_files(cases):
    versions = cases["stream"]["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    iterations = [v["iteration"] for v in versions]
    assert iterations == sorted(iterations) and iterations[0] > 0
    for v in versions:
        assert v["files"] == ["meta.json", "model.pt"]
        with open(os.path.join(v["path"], "meta.json")) as f:
            meta = json.load(f)
        assert (meta["version"], meta["iteration"]) == (v["version"], v["iteration"])
        assert v["metrics"]["samples"] >= 64 and math.isfinite(v["metrics"]["loss"])
        state = torch.load(os.path.join(v["path"], "model.pt"), weights_only=True)
        np.testing.assert_allclose(state["0.weight"].numpy(), np.asarray(v["weights"][0]), rtol=0, atol=0)
    # The model learns from the stream (a noiseless linear target): on fixed held-out rows, the
    # last version beats the untrained net. (Each version's own loss is that of its round's few
    # batches, too noisy to order versions by.)
    assert _held_out_mse(versions[-1]["weights"]) < 0.5 * _held_out_mse(_initial_weights())


def _initial_weights() -> list:
    """The stream fit's starting weights (the program's make_net: Linear(3, 8), Tanh, Linear(8, 1), seed 3)."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return [p.detach().numpy().tolist() for p in net.parameters()]


def _held_out_mse(weights: list) -> float:
    """Mean squared error of the 3-8-1 net with `weights` on 1000 rows of the stream's target."""
    x = np.random.default_rng(12345).normal(size=(1000, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3
    w1, b1, w2, b2 = (np.asarray(w) for w in weights)
    predicted = np.tanh(x @ w1.T + b1) @ w2.T + b2
    return float(np.mean((predicted[:, 0] - y) ** 2))
