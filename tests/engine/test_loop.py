"""WorkerLoop on real gloo process groups, without Spark: two ranks train one model in lock step
and must land on the weights of one process doing the same global steps, whatever the transport,
the optimizer's kind (sharded or replicated) and however unevenly the samples are split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.process_group import run_ranks
from zoo.engine import MaxEpoch
from zoo.engine.adapters import torch as torch_adapter
from zoo.engine.config import TrainingConfig
from zoo.engine.loop import LocalData, StepPlan, WorkerLoop, step_sizes
from zoo.engine.shared_memory import supported
from zoo.engine.topology import GLOO, SHARED_MEMORY, Topology

FEATURES = 5
BATCH = 8
EPOCHS = 3
LEARNING_RATE = 0.05


def _samples(count: int, seed: int, poison: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, FEATURES)).astype(np.float32)
    y = (x @ np.arange(1, FEATURES + 1, dtype=np.float32))[:, None] + 0.5
    if poison:
        x[-1, 0] = np.inf
    return x, y.astype(np.float32)


def _model() -> torch.nn.Module:
    torch.manual_seed(3)
    return torch.nn.Linear(FEATURES, 1)


def _lbfgs(params) -> torch.optim.Optimizer:
    return torch.optim.LBFGS(params, lr=LEARNING_RATE, max_iter=1)


def _optimizer(kind: str):
    # SGD is elementwise (each rank steps its shard); LBFGS is not (every rank steps the whole model).
    return torch.optim.SGD if kind == "sgd" else _lbfgs


def _train(rank, world, counts, transport, kind, poison_rank=None):
    """Train on this rank's samples; `transport` is what the loop must pick ("auto" picks shared
    memory for ranks of one host)."""
    x, y = _samples(counts[rank], seed=rank, poison=rank == poison_rank)
    config = TrainingConfig(batch_size=BATCH, end_trigger=MaxEpoch(EPOCHS), optim_method=_optimizer(kind),
                            learning_rate=LEARNING_RATE, num_workers=world, transport=GLOO if transport == GLOO else "auto",
                            shuffle=False,
                            show_progress=False)
    trainable = torch_adapter.Trainable(_model(), torch.nn.MSELoss())
    loop = WorkerLoop(torch_adapter, trainable, config, LocalData([x], y), None, Topology(rank, ("h",) * world))
    loop.run()
    return loop.transport, loop.sharded, loop.iteration, loop.epoch, trainable.model.weight.detach().numpy().copy()


def _reference(counts, kind) -> np.ndarray:
    """One process doing the same global steps: step s trains on every rank's rows of step s."""
    data = [_samples(c, seed=r) for r, c in enumerate(counts)]
    steps = -(-sum(counts) // BATCH)
    bounds = [np.concatenate([[0], np.cumsum(step_sizes(c, steps))]) for c in counts]
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE) if kind == "sgd" else _lbfgs(model.parameters())
    for _ in range(EPOCHS):
        for s in range(steps):
            x = torch.from_numpy(np.concatenate([d[0][b[s]:b[s + 1]] for d, b in zip(data, bounds)]))
            y = torch.from_numpy(np.concatenate([d[1][b[s]:b[s + 1]] for d, b in zip(data, bounds)]))

            def closure():
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                return loss

            optimizer.step(closure)
    return model.weight.detach().numpy()


def test_step_sizes_split_a_worker_s_samples_evenly_over_the_steps():
    assert step_sizes(10, 4).tolist() == [3, 3, 2, 2]
    assert step_sizes(2, 4).tolist() == [1, 1, 0, 0]
    assert step_sizes(0, 3).tolist() == [0, 0, 0]


def test_a_step_plan_needs_samples_somewhere():
    with pytest.raises(ValueError, match="no rows on any worker"):
        StepPlan.agree(0, 0, BATCH)


TRANSPORTS = [GLOO] + ([SHARED_MEMORY] if supported() else [])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", ["sgd", "lbfgs"])
def test_two_ranks_land_on_the_weights_of_one_process_doing_the_same_global_steps(transport, kind):
    # Uneven on purpose: rank 1 has no rows in some steps, and each rank's loss weight differs.
    counts = (19, 4)
    results = run_ranks(_train, 2, counts, transport, kind)
    steps = -(-sum(counts) // BATCH)
    for used, sharded, iteration, epoch, weights in results:
        assert (used, sharded) == (transport, kind == "sgd")
        assert (iteration, epoch) == (EPOCHS * steps, EPOCHS)
        np.testing.assert_allclose(weights, _reference(counts, kind), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(results[0][4], results[1][4])


def test_a_non_finite_loss_on_one_rank_stops_every_rank_at_the_same_step():
    outcome = run_ranks(_train, 2, (8, 8), GLOO, "sgd", 1, failing=True)
    # The poisoned row is rank 1's last: the last of its steps in the first epoch (2 global steps of 8).
    assert [kind for kind, _ in outcome] == ["NonFiniteLossError", "NonFiniteLossError"]
    assert all("iteration 2" in message for _, message in outcome), outcome
