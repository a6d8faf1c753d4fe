"""Live progress on the driver: the tqdm bar, the history and worker failures, over real sockets."""

import os
import time

import numpy as np
import torch

from tests.conftest import frame_from_arrays
from zoo.engine import MaxEpoch
from zoo.engine.progress import ProgressClient, ProgressServer
from zoo.nnframes import NNEstimator


def test_worker_messages_draw_the_bar_and_fill_the_history(capsys):
    server = ProgressServer("127.0.0.1", show_progress=True).start()
    client = ProgressClient(server.address, rank=0, interval_s=0.0)
    client.start(total_iterations=4, iteration=0)
    for iteration in range(1, 5):
        client.step(iteration, loss=1.0 / iteration, epoch=0, samples_per_sec=1234.0)
    client.validation(4, 0, {"Loss": 0.25})
    failing = ProgressClient(server.address, rank=1)
    failing.error(RuntimeError("worker one broke"))
    deadline = time.time() + 10
    while not server.failures and time.time() < deadline:  # the driver reads each connection in a thread
        time.sleep(0.01)
    client.close()
    failing.close()
    server.close()

    shown = capsys.readouterr()
    bar = shown.err
    assert "Zoo fit" in bar and "4/4" in bar
    assert "loss=0.2500" in bar and "samples_per_s=1234" in bar and "epoch=1" in bar
    # tqdm.write prints above the bar, on stdout.
    assert "Validation at iteration 4: Loss=0.2500" in shown.out
    steps = [event for event in server.history if event["event"] == "step"]
    assert [event["iteration"] for event in steps] == [1, 2, 3, 4]
    assert steps[-1]["loss"] == 0.25
    assert server.failures[0][0] == 1 and "worker one broke" in server.failures[0][1]


def test_fit_shows_epoch_iteration_loss_and_throughput_on_the_driver(spark, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4))
    df = frame_from_arrays(spark, x, x.sum(axis=1), partitions=2)
    torch.manual_seed(0)
    estimator = NNEstimator(model=torch.nn.Linear(4, 1), criterion=torch.nn.MSELoss(), batchSize=32,
                            endWhen=MaxEpoch(2), learningRate=0.05)
    estimator.fit(df)

    bar = capsys.readouterr().err
    assert "Zoo fit" in bar and "16/16" in bar, bar[-2000:]
    assert "epoch=2" in bar and "loss=" in bar and "samples_per_s=" in bar


def test_tensorboard_events_reach_an_s3_url_at_flush_points_and_at_close(s3, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from zoo import storage

    url = f"{s3.url}/tb/app"
    server = ProgressServer("127.0.0.1", show_progress=False, tensorboard_dir=url).start()
    for iteration in range(1, 4):
        server.handle({"event": "step", "iteration": iteration, "epoch": 0, "loss": 1.0 / iteration,
                       "losses": [[iteration, 1.0 / iteration]], "samples_per_sec": 100.0})
    assert s3.keys("tb") == []  # steps alone do not upload until DEFAULT_TENSORBOARD_SYNC_S has passed
    server.handle({"event": "validation", "iteration": 3, "epoch": 0, "metrics": {"Loss": 0.5}})
    assert {k.split("/")[2] for k in s3.keys("tb")} == {"train", "validation"}  # a validation is a flush point
    server.handle({"event": "step", "iteration": 4, "epoch": 1, "loss": 0.2, "losses": [[4, 0.2]],
                   "samples_per_sec": 100.0})
    local_events = server._events_dir
    server.close()
    assert not os.path.exists(local_events)
    for split, count in (("train", 4), ("validation", 1)):
        storage.download(f"{url}/{split}", str(tmp_path / split))
        events = EventAccumulator(str(tmp_path / split))
        events.Reload()
        assert len(events.Scalars("Loss")) == count


def test_the_trained_weights_reach_the_driver_whole_or_not_at_all():
    server = ProgressServer("127.0.0.1", show_progress=False).start()
    try:
        blob = os.urandom(3 * 2**20 + 17)
        digest = ProgressClient(server.address, rank=0).send_result(blob)
        assert server.wait_for_result(digest, timeout_s=30) == blob
        # A transfer cut short (the worker died mid-send) is never taken for the weights.
        import hashlib
        import json
        import socket

        cut = os.urandom(1000)
        with socket.create_connection(server.address) as conn:
            header = {"event": "result", "rank": 0, "size": 2000, "sha1": hashlib.sha1(cut).hexdigest()}
            conn.sendall((json.dumps(header) + "\n").encode() + cut)
        assert server.wait_for_result(header["sha1"], timeout_s=1) is None
    finally:
        server.close()


def test_weights_bigger_than_the_driver_heap_could_copy_reach_the_driver(spark):
    """The session's driver JVM has Spark's default 1 GB heap; a 38 MB model's weights used to travel
    as the job's result row and run it out of memory (several copies on the way to Python)."""
    from zoo.engine import MaxIteration

    torch.manual_seed(0)
    hidden = 3030  # a 256-3030-3030-10 MLP: 10M parameters
    model = torch.nn.Sequential(torch.nn.Linear(256, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 256))
    df = frame_from_arrays(spark, x, np.abs(x[:, :10]).argmax(axis=1), partitions=2)
    fitted = NNEstimator(model=model, criterion=torch.nn.CrossEntropyLoss(), batchSize=64, endWhen=MaxIteration(2),
                         numWorkers=2, optimMethod=lambda p: torch.optim.SGD(p, lr=0.1),
                         label_preprocessing=lambda v: np.int64(v)).setShowProgress(False).fit(df)
    moved = sum(float((a - b).abs().sum()) for a, b in zip(fitted.model.parameters(), model.parameters()))
    assert moved > 0, "the fitted model must carry the trained weights, not the initial ones"
