"""The distributed engine on real Spark (local[2]): equivalence, uneven data, failures, checkpoints."""

import math
import os
import time

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays, rows_in_partitions
from zoo.engine import AUC, MAE, EveryEpoch, Loss, MaxEpoch, MaxIteration, MinLoss, SeveralIteration, Top1Accuracy
from zoo.engine.loop import step_sizes
from zoo.engine.profile import PHASES
from zoo.engine.shared_memory import DEFAULT_WAIT_TIMEOUT_S
from zoo.errors import WorkerError
from zoo.nnframes import NNClassifier, NNEstimator

SCHEMA = "features array<double>, label double"


def regression_partitions(sizes, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for size in sizes:
        x = rng.normal(size=(size, 3))
        y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=size)
        parts.append([(row.tolist(), float(t)) for row, t in zip(x, y)])
    return parts


def make_net(seed=3):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def reference_training(parts, net, optimizer, batch_size, epochs, clip_norm=None):
    """Single-process PyTorch fed the same global batches the engine builds from the partitions."""
    data = [(torch.tensor([r[0] for r in p], dtype=torch.float32).reshape(-1, 3),
             torch.tensor([[r[1]] for r in p], dtype=torch.float32).reshape(-1, 1)) for p in parts]
    total = sum(len(p) for p in parts)
    steps = math.ceil(total / batch_size)
    sizes = [np.concatenate([[0], np.cumsum(step_sizes(len(p), steps))]) for p in parts]
    loss_fn = torch.nn.MSELoss()
    for _ in range(epochs):
        for s in range(steps):
            x = torch.cat([d[0][o[s]:o[s + 1]] for d, o in zip(data, sizes)])
            y = torch.cat([d[1][o[s]:o[s + 1]] for d, o in zip(data, sizes)])

            def closure():
                optimizer.zero_grad()
                loss = loss_fn(net(x), y)
                loss.backward()
                if clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
                return loss

            optimizer.step(closure)
    return net


OPTIMIZERS = {
    "sgd_momentum_sharded": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), None),
    "adam_sharded": (lambda p: torch.optim.Adam(p, lr=0.01), None),
    "adamw_l2_clipping": (lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), 0.5),
    "lbfgs_replicated": (lambda p: torch.optim.LBFGS(p, lr=0.1, max_iter=3), None),
}


@pytest.mark.parametrize("name, transport", [(name, "auto") for name in OPTIMIZERS]
                         + [("sgd_momentum_sharded", "gloo"), ("adamw_l2_clipping", "gloo"), ("lbfgs_replicated", "gloo")])
def test_two_workers_equal_single_process_reference(spark, name, transport):
    """'auto' uses shared memory here (both workers on this host); 'gloo' goes over TCP."""
    factory, clip = OPTIMIZERS[name]
    # Uneven partitions and a global batch (7) not divisible by the 2 workers.
    parts = regression_partitions([23, 14])
    df = rows_in_partitions(spark, parts, SCHEMA)
    est = NNEstimator(model=make_net(), criterion=torch.nn.MSELoss(), batchSize=7, maxEpoch=2,
                      optimMethod=factory, numWorkers=2, shuffle=False, transport=transport).setShowProgress(False)
    if clip is not None:
        est.setGradientClippingByL2Norm(clip)
    model = est.fit(df)
    reference = make_net()
    reference_training(parts, reference, factory(reference.parameters()), 7, 2, clip)
    for got, want in zip(model.model.parameters(), reference.parameters()):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-5)
    losses = [h for h in model.history if h["event"] == "step"]
    assert [h["iteration"] for h in losses] == list(range(1, 2 * math.ceil(37 / 7) + 1))


def test_the_topology_is_logged_once_per_fit_and_kept_on_the_model(spark, caplog):
    parts = regression_partitions([20, 20])
    df = rows_in_partitions(spark, parts, SCHEMA)
    with caplog.at_level("INFO", logger="zoo.engine.progress"):
        model = NNEstimator(model=make_net(), criterion=torch.nn.MSELoss(), batchSize=8, maxEpoch=2,
                            numWorkers=2).setShowProgress(False).fit(df)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Zoo fit topology:")]
    assert logged == ["Zoo fit topology: 1 host(s) x 2 worker(s): shared memory"]
    assert model.fit_topology == "1 host(s) x 2 worker(s): shared memory"
    fields = set(PHASES) | {"other", "step_ms", "steps"}
    assert len(model.fit_profile) == 2 and all(set(p) == fields for p in model.fit_profile)


def test_profile_true_prints_each_workers_breakdown_and_writes_it_to_tensorboard(spark, tmp_path, capsys):
    parts = regression_partitions([40, 40])
    df = rows_in_partitions(spark, parts, SCHEMA)
    est = NNEstimator(model=make_net(), criterion=torch.nn.MSELoss(), batchSize=8, maxEpoch=2, numWorkers=2,
                      profile=True).setShowProgress(False).setTensorBoard(str(tmp_path), "app")
    model = est.fit(df)
    printed = capsys.readouterr().out
    lines = printed[printed.index("Zoo fit profile"):].splitlines()
    assert lines[1].split()[-3:] == ["rank", "1", "share"] and "rank 0" in lines[1]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if line and line.split()[0] in PHASES + ("other",)}
    step_ms = [float(v) for v in next(line for line in lines if line.startswith("step (ms)")).split()[2:4]]
    assert set(rows) == set(PHASES) | {"other"}
    for rank in (0, 1):
        # Printed to 3 decimals: 11 rounded figures may be off by 0.0005 each.
        assert sum(float(r[rank]) for r in rows.values()) == pytest.approx(step_ms[rank], abs=0.006)
    assert sum(float(r[2].rstrip("%")) for r in rows.values()) == pytest.approx(100.0, abs=0.6)
    for summary in model.fit_profile:  # the laps the loop, the adapter and the aggregator take all ran
        assert summary["steps"] == 19 and min(summary[p] for p in ("batch", "forward", "backward", "sync_wait",
                                                                    "optimizer", "loop")) > 0
        assert sum(summary[p] for p in PHASES) <= summary["step_ms"] + 1e-9
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "app" / "profile"))
    events.Reload()
    assert {f"{p}_ms/rank{r}" for p in PHASES for r in (0, 1)} <= set(events.Tags()["scalars"])
    assert events.Scalars("forward_ms/rank1")[0].value == pytest.approx(model.fit_profile[1]["forward"], rel=1e-6)


def test_without_profile_the_fit_prints_no_breakdown_but_keeps_it(spark, capsys):
    df = rows_in_partitions(spark, regression_partitions([10, 10]), SCHEMA)
    model = NNEstimator(model=make_net(), criterion=torch.nn.MSELoss(), batchSize=8, maxEpoch=1,
                        numWorkers=2).setShowProgress(False).fit(df)
    assert "Zoo fit profile" not in capsys.readouterr().out
    assert len(model.fit_profile) == 2


def test_an_empty_partition_neither_hangs_nor_changes_the_result(spark):
    parts = regression_partitions([30, 0])
    df = rows_in_partitions(spark, parts, SCHEMA)
    factory = lambda p: torch.optim.SGD(p, lr=0.05)  # noqa: E731
    start = time.time()
    model = NNEstimator(model=make_net(), criterion=torch.nn.MSELoss(), batchSize=8, maxEpoch=2,
                        optimMethod=factory, numWorkers=2, shuffle=False).setShowProgress(False).fit(df)
    assert time.time() - start < DEFAULT_WAIT_TIMEOUT_S  # a worker waiting for a peer that never comes
    reference = make_net()
    reference_training(parts, reference, factory(reference.parameters()), 8, 2)
    for got, want in zip(model.model.parameters(), reference.parameters()):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-5)


def separable(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] > 0).astype(float)


def test_classifier_converges_and_validation_metrics_are_exact(spark):
    x, y = separable()
    df = frame_from_arrays(spark, x[:480], y[:480])
    val = frame_from_arrays(spark, x[480:], y[480:], partitions=3)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    clf = NNClassifier(model=net, criterion=torch.nn.BCEWithLogitsLoss(), batchSize=32, maxEpoch=8,
                       learningRate=0.5, numWorkers=2).setShowProgress(False)
    clf.setValidation(EveryEpoch(), val, [Loss(), Top1Accuracy(threshold=0.0), MAE(), AUC()])
    model = clf.fit(df)
    last = [h for h in model.history if h["event"] == "validation"][-1]["metrics"]
    # The same metrics computed here on the driver from the returned model.
    with torch.no_grad():
        out = model.model(torch.tensor(x[480:], dtype=torch.float32))
        target = torch.tensor(y[480:], dtype=torch.float32).reshape(-1, 1)
        expected_loss = float(torch.nn.BCEWithLogitsLoss()(out, target))
    scores = out.numpy()[:, 0]
    assert last["Loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert last["Top1Accuracy"] == pytest.approx(float(((scores > 0) == (y[480:] > 0.5)).mean()))
    assert last["MAE"] == pytest.approx(float(np.abs(scores - y[480:]).mean()), rel=1e-4)
    pos, neg = scores[y[480:] == 1], scores[y[480:] == 0]
    assert last["AUC"] == pytest.approx(float((pos[:, None] > neg[None, :]).mean()), rel=1e-6)
    assert last["Top1Accuracy"] > 0.93
    accuracy = model.transform(val).selectExpr("avg(cast(prediction = label as double))").first()[0]
    assert accuracy == pytest.approx(last["Top1Accuracy"])


def test_end_triggers_stop_training(spark):
    x, y = separable(200)
    df = frame_from_arrays(spark, x, y)

    def fit(trigger):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 1))
        return NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=20, endWhen=trigger,
                           learningRate=0.05).setShowProgress(False).fit(df)

    steps = [h for h in fit(MaxIteration(7)).history if h["event"] == "step"]
    assert steps[-1]["iteration"] == 7
    steps = [h for h in fit(MinLoss(0.2) | MaxEpoch(50)).history if h["event"] == "step"]
    assert steps[-1]["loss"] < 0.2 and all(h["loss"] >= 0.2 for h in steps[:-1])
    assert steps[-1]["iteration"] < 50 * 10


class ExplodingNet(torch.nn.Module):
    """Works on the driver; raises inside a Spark task, as a user bug in forward would."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x):
        from pyspark import TaskContext

        if TaskContext.get() is not None and TaskContext.get().partitionId() == 1:
            raise ArithmeticError("boom in worker forward")
        return self.linear(x)


def test_worker_exception_fails_fast_with_its_traceback(spark):
    df = rows_in_partitions(spark, regression_partitions([20, 20]), SCHEMA)
    est = NNEstimator(model=ExplodingNet(), criterion=torch.nn.MSELoss(), batchSize=4, maxEpoch=50,
                      numWorkers=2).setShowProgress(False)
    start = time.time()
    with pytest.raises(WorkerError) as info:
        est.fit(df)
    # Fast: the healthy worker was cancelled, not left to time out waiting for its peer (which
    # would add its own PeerTimeout failure and take DEFAULT_WAIT_TIMEOUT_S).
    assert time.time() - start < DEFAULT_WAIT_TIMEOUT_S
    assert [rank for rank, _ in info.value.failures] == [1]
    assert "ArithmeticError: boom in worker forward" in str(info.value)
    assert "in forward" in info.value.failures[0][1]
    import pickle

    assert pickle.loads(pickle.dumps(info.value)).failures == info.value.failures


@pytest.mark.parametrize("first_end, trigger, final_end", [
    (MaxEpoch(2), EveryEpoch(), MaxEpoch(4)),
    (MaxIteration(5), SeveralIteration(5), MaxIteration(11)),
])
def test_checkpoint_and_resume_continue_from_the_saved_iteration(spark, tmp_path, first_end, trigger, final_end):
    x, y = separable(120)
    df = frame_from_arrays(spark, x, y, partitions=2)

    def estimator(end):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        return NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=16, endWhen=end,
                           optimMethod=lambda p: torch.optim.Adam(p, lr=0.01)).setShowProgress(False)

    straight = estimator(final_end).fit(df)
    first = estimator(first_end).setCheckpoint(str(tmp_path), trigger).fit(df)
    saved = [n for n in os.listdir(tmp_path) if n.startswith("checkpoint-")]
    assert len(saved) == 1  # overwrite=True keeps only the latest
    resumed = estimator(final_end).setCheckpoint(str(tmp_path), trigger, resume=True).fit(df)
    resumed_steps = [h["iteration"] for h in resumed.history if h["event"] == "step"]
    first_steps = [h["iteration"] for h in first.history if h["event"] == "step"]
    assert resumed_steps[0] == first_steps[-1] + 1
    for got, want in zip(resumed.model.parameters(), straight.model.parameters()):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_bf16_compression_and_disk_cached_samples_still_converge(spark):
    """Over gloo: shared memory (what 'auto' picks on one host) carries no bf16 and would skip it."""
    x, y = separable(400)
    df = frame_from_arrays(spark, x, y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model = NNClassifier(model=net, criterion=torch.nn.CrossEntropyLoss(), batchSize=32, maxEpoch=6,
                         learningRate=0.3, gradientCompression="bf16", cachingSample=False, transport="gloo"
                         ).setShowProgress(False).fit(df)
    accuracy = model.transform(df).selectExpr("avg(cast(prediction = label as double))").first()[0]
    assert accuracy > 0.93


def test_constant_gradient_clipping_bounds_each_update(spark):
    df = rows_in_partitions(spark, regression_partitions([20, 20]), SCHEMA)
    net = make_net()
    before = [p.detach().clone() for p in net.parameters()]
    model = NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=40, endWhen=MaxIteration(1),
                        learningRate=1.0).setConstantGradientClipping(-0.001, 0.001).setShowProgress(False).fit(df)
    moved = max(float((a - b).abs().max()) for a, b in zip(model.model.parameters(), before))
    assert 0 < moved <= 0.001 + 1e-7


def test_tensorboard_events_are_written_on_the_driver(spark, tmp_path):
    x, y = separable(100)
    df = frame_from_arrays(spark, x, y)
    est = NNEstimator(model=torch.nn.Linear(4, 1), criterion=torch.nn.MSELoss(), batchSize=10, maxEpoch=1)
    est.setTensorBoard(str(tmp_path), "app").setValidation(EveryEpoch(), df, [Loss()]).setShowProgress(False)
    est.fit(df)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for split, steps in (("train", 10), ("validation", 1)):
        events = EventAccumulator(str(tmp_path / "app" / split))
        events.Reload()
        assert len(events.Scalars("Loss")) == steps
