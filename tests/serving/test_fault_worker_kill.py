"""Fault injection: serving workers killed (-9) under load, a request that kills every worker
that takes it, and decompression bombs that would.

Workers run as real processes (`python -m zoo.serving.worker`) against a real redis-server; every
assertion message carries the counts of the run (tried / answered / clear errors / lost / wrong /
duplicated).
"""

import threading

import numpy as np
import pytest

from zoo.serving import InputQueue, OutputQueue, PredictionError, SparseTensor
from zoo.serving import defaults as D
from zoo.serving.metrics import REQUESTS

from .conftest import make_config
from .faults import LoadClients, Tally, WorkerProcesses, close_enough, png_bomb, wait_until
from .test_client import png_bytes


@pytest.fixture
def worker_processes(redis_client, tmp_path):
    """``worker_processes(config)`` -> a `WorkerProcesses`; every worker is killed at the end."""
    started = []

    def make(config):
        started.append(WorkerProcesses(config, tmp_path))
        return started[-1]

    yield make
    for workers in started:
        workers.stop_all()


@pytest.mark.slow  # three worker processes and 320 requests: 15-25 s on 2 busy cores
def test_workers_killed_under_load_lose_no_request(redis_client, redis_server, models, worker_processes):
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 8}],
                         queue={"claim_idle_ms": 500})
    workers = worker_processes(config)
    workers.start("w0", "w1", "w2")
    workers.wait_ready(redis_client, "cnn")
    stream = D.stream_key("cnn")
    tally = Tally("2 of 3 workers killed (-9) under load")
    x = np.random.default_rng(0).random((320, 3, 8, 8), dtype=np.float32)
    clients = LoadClients(redis_server.url, "cnn", x, reference(x), tally)
    clients.start(*[(clients.enqueue, range(k, 260, 3)) for k in range(3)],
                  *[(clients.predict, range(260 + k, 320, 2)) for k in range(2)])

    def busy_worker():
        """A live worker that holds requests right now."""
        summary = redis_client.xpending(stream, D.CONSUMER_GROUP)
        holders = [c["name"].decode() for c in summary.get("consumers") or [] if c["pending"]]
        return next((c for c in holders if c in workers.alive()), None)

    killed = []
    for threshold in (90, 180):
        wait_until(lambda: len(clients.accepted) >= threshold, 120, f"{threshold} accepted requests. {tally}")
        killed.append(wait_until(busy_worker, 60, "a worker holding requests"))
        workers.kill(killed[-1])
    clients.join()
    clients.collect()
    tally.duplicated = int(redis_client.hget(D.metrics_key("cnn"), REQUESTS)) - tally.answered - tally.wrong
    report = f"{tally}; killed {killed}"
    print(report)  # the counts, duplicates included, are reported with -rP even when the test passes
    assert tally.lost == 0 and tally.wrong == 0 and not tally.failures, report
    assert tally.answered == tally.tried, report
    wait_until(lambda: redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 0, 30, f"no pending. {report}")


def test_a_worker_restarted_under_its_name_resumes_the_requests_it_held(redis_client, redis_server, models,
                                                                         worker_processes):
    """Nobody reclaims here (claim_idle_ms is 10 minutes): only the restarted worker can answer."""
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "batch_size": 64, "max_batch_wait_ms": 60000}],
                         queue={"claim_idle_ms": 600_000})
    stream = D.stream_key("cnn")
    workers = worker_processes(config)
    workers.start("A")
    workers.wait_ready(redis_client, "cnn")
    x = np.random.default_rng(3).random((5, 3, 8, 8), dtype=np.float32)
    inputs = InputQueue(redis_server.url, "cnn")
    for i in range(5):
        inputs.enqueue(f"held-{i}", input=x[i])
    wait_until(lambda: redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 5, 30, "A to hold 5 requests")
    workers.kill("A")  # while it waits for its batch of 64 to fill
    redis_client.delete(D.heartbeat_key("cnn", "A"))
    workers.start("A")
    outputs = OutputQueue(redis_server.url, "cnn")
    got = [outputs.query(f"held-{i}", timeout=30 if i == 0 else 10) for i in range(5)]
    tally = Tally("a worker killed holding 5 requests, restarted under its name")
    tally.tried, tally.lost = 5, sum(g is None for g in got)
    tally.answered = sum(g is not None and close_enough(g, reference(x[i:i + 1])[0]) for i, g in enumerate(got))
    assert tally.answered == 5, str(tally)
    assert redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 0


def test_a_request_that_kills_its_workers_goes_to_the_dead_letter_stream(redis_client, redis_server, models,
                                                                          worker_processes):
    """The poison request runs slowly (the `gated` model) and a watcher kills whichever worker
    holds it, as an out-of-memory kill would: the request goes to the dead-letter stream after
    `max_deliveries`, and the requests that shared its first batch are all answered."""
    path, _ = models["gated"]
    config = make_config(redis_server.url, [{"name": "gated", "path": path, "batch_size": 8, "max_batch_wait_ms": 50}],
                         queue={"claim_idle_ms": 300, "max_deliveries": 2})
    stream = D.stream_key("gated")
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    inputs = InputQueue(redis_server.url, "gated")
    for i in range(5):  # queued before the workers start: the first worker reads all six in one batch
        inputs.enqueue(f"innocent-{i}", input=x[i])
    inputs.enqueue("poison", input=np.full(4, 2000.0, np.float32))
    redis_client.xgroup_create(stream, D.CONSUMER_GROUP, id="0")  # the watcher reads it before any worker runs
    poison_id = next(entry_id for entry_id, fields in redis_client.xrange(stream) if fields[b"uri"] == b"poison")
    workers = worker_processes(config)
    victims: list[tuple[str, int]] = []
    stop = threading.Event()

    def kill_the_poison_holder():
        watcher = redis_server.client()
        while not stop.is_set():
            for pending in watcher.xpending_range(stream, D.CONSUMER_GROUP, "-", "+", 50):
                holder = pending["consumer"].decode()
                # Only a delivery that runs the model can kill its worker: the one past
                # max_deliveries is dead-lettered without running it (killing its holder between
                # the claim and the dead-letter write would be a fault no request can cause).
                runs_the_model = pending["times_delivered"] <= config.queue.max_deliveries
                if pending["message_id"] == poison_id and runs_the_model and holder in workers.alive():
                    workers.kill(holder)
                    victims.append((holder, pending["times_delivered"]))
            stop.wait(0.005)

    watcher = threading.Thread(target=kill_the_poison_holder, daemon=True)
    watcher.start()
    tally = Tally("a request that kills every worker holding it, among 5 others")
    tally.tried = 6
    try:
        workers.start("a", "b", "c")
        outputs = OutputQueue(redis_server.url, "gated")
        for i in range(5):
            got = outputs.query(f"innocent-{i}", timeout=90)
            if got is None:
                tally.lost += 1
            else:
                tally.answered += close_enough(got, x[i] * 2)
                tally.wrong += not close_enough(got, x[i] * 2)
        try:
            outputs.query("poison", timeout=90)
            tally.fail("the poison request was answered")
        except PredictionError as exc:
            tally.clear_error += "dead-letter" in exc.reason
    except PredictionError as exc:
        tally.fail(f"{exc}")
    finally:
        stop.set()
        watcher.join(10)
    report = f"{tally}; killed {victims}"
    print(report)  # reported with -rP even when the test passes
    assert tally.answered == 5 and tally.clear_error == 1 and not tally.failures, report
    assert len(victims) <= config.queue.max_deliveries, report
    dead = redis_client.xrange(D.dead_letter_key("gated"))
    assert len(dead) == 1, report
    fields = dead[0][1]
    assert fields[b"uri"] == b"poison" and fields[b"id"] == poison_id and int(fields[b"deliveries"]) == 3, fields
    assert fields[b"data"] and b"died" in fields[b"reason"], fields
    assert redis_client.xlen(stream) == 0 and redis_client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 0
    survivor = workers.alive()
    assert len(survivor) == 3 - len(victims) >= 1, report
    np.testing.assert_allclose(inputs.predict(x[0], timeout=30), x[0] * 2)


def test_bombs_are_refused_before_decoding_and_the_worker_does_not_grow(redis_client, redis_server, models,
                                                                        worker_processes):
    path, reference = models["cnn"]
    config = make_config(redis_server.url, [{"name": "cnn", "path": path, "image": {"resize": [8, 8]}}])
    workers = worker_processes(config)
    workers.start("w")
    workers.wait_ready(redis_client, "cnn")
    inputs = InputQueue(redis_server.url, "cnn")
    inputs.predict(png_bytes(seed=1), timeout=30)  # Pillow loaded, the model warm
    before = workers.peak_rss_mb("w")
    tally = Tally("decompression bombs sent past the HTTP frontend, straight to the queue")
    bombs = {"6000x6000 PNG": (png_bomb(6000, 6000), "max_pixels"),
             "sparse tensor of dense shape [3, 30000, 30000]": (
                 SparseTensor([[0, 0, 0]], [1.0], (3, 30000, 30000)), "max_input_elements")}
    for name, (bomb, fragment) in bombs.items():
        tally.tried += 1
        try:
            inputs.predict(bomb, timeout=60)
            tally.fail(f"{name} was answered")
        except PredictionError as exc:
            if fragment in exc.reason:
                tally.clear_error += 1
            else:
                tally.fail(f"{name}: {exc.reason}")
    grown = workers.peak_rss_mb("w") - before
    print(f"{tally}; the worker's peak memory grew by {grown:.0f} MiB")  # reported with -rP
    assert tally.clear_error == tally.tried, str(tally)
    assert grown < 150, f"the worker's peak memory grew by {grown:.0f} MiB. {tally}"
    assert workers.alive() == ["w"]
    x = np.random.default_rng(2).random((1, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(inputs.predict(x[0], timeout=30), reference(x)[0], rtol=1e-5, atol=1e-5)
