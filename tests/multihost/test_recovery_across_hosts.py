"""A fit that loses a host's executor resumes and ends as an uninterrupted fit does, with its
checkpoints on the cluster's shared storage or on S3; a checkpoint path only one host can see is
refused before training starts; a fitted model saved to S3 transforms across the hosts.

Each checkpointing fit is an NNClassifier of 4 workers (2 per host) whose steps are paced so an
epoch lasts a few seconds; the test kills host2's executor (kill -9 of its JVM and Python workers)
as soon as the first checkpoint exists."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest

from tests.multihost.conftest import HERE, EdgeDriver

DRIVER = os.path.join(HERE, "train_driver.py")
FIT_TIMEOUT_S = 420
#: Seconds each training step sleeps: 4 epochs of 4 steps take about 10 s.
STEP_DELAY_S = 0.6
STEPS_PER_EPOCH = -(-4 * 120 // 32)


@pytest.fixture(scope="module")
def trainer(dev_cluster):
    driver = EdgeDriver(dev_cluster, DRIVER, [])
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="module")
def uninterrupted(trainer, dev_cluster):
    answer = trainer.ask("classify " + json.dumps({"checkpoint": _shared(dev_cluster), "delay_s": 0.0}),
                         timeout_s=FIT_TIMEOUT_S)
    assert "error" not in answer, answer["error"]
    return answer


def _shared(dev_cluster) -> str:
    return os.path.join(dev_cluster.shared_dir, f"checkpoints-{uuid.uuid4().hex[:8]}")


def _fit_losing_host2(trainer, dev_cluster, checkpoint: str) -> tuple[dict, dict]:
    trainer.send("classify " + json.dumps({"checkpoint": checkpoint, "delay_s": STEP_DELAY_S, "watch": True}))
    seen = trainer.next_answer(timeout_s=FIT_TIMEOUT_S)
    assert seen.get("event") == "checkpoint", seen
    killed = dev_cluster.kill_executors("host2")
    answer = trainer.next_answer(timeout_s=FIT_TIMEOUT_S)
    assert "error" not in answer, answer["error"]
    return answer, {"killed": killed, "checkpoint": seen["path"]}


def _assert_resumed_and_matches(answer: dict, kill: dict, reference: dict) -> None:
    assert kill["killed"], "host2 ran no executor to kill"
    assert any("CoarseGrainedExecutorBackend" in " ".join(argv) for argv in kill["killed"].values()), kill["killed"]
    checkpoint = int(kill["checkpoint"].rstrip("/").rsplit("-", 1)[1])
    # The retried stage started again from the checkpoint's iteration, not from 0 ...
    assert answer["starts"][0] == 0 and len(answer["starts"]) >= 2, answer["starts"]
    assert answer["starts"][-1] >= checkpoint > 0 and answer["starts"][-1] % STEPS_PER_EPOCH == 0
    # ... went on to the same last step ...
    assert answer["steps"][-1] == reference["steps"][-1] == 4 * STEPS_PER_EPOCH
    # ... and gave the model an uninterrupted fit gives.
    for got, want in zip(answer["params"], reference["params"]):
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-5)
    assert answer["accuracy"] == pytest.approx(reference["accuracy"]) and answer["accuracy"] > 0.95


@pytest.mark.slow
def test_a_fit_survives_losing_a_hosts_executor_with_checkpoints_on_shared_storage(trainer, dev_cluster,
                                                                                   uninterrupted):
    answer, kill = _fit_losing_host2(trainer, dev_cluster, _shared(dev_cluster))
    assert answer["topology"].startswith("2 host(s) x 2 worker(s): shared memory within a host")
    _assert_resumed_and_matches(answer, kill, uninterrupted)


@pytest.mark.slow
def test_a_fit_survives_losing_a_hosts_executor_with_checkpoints_on_s3(trainer, dev_cluster, uninterrupted):
    answer, kill = _fit_losing_host2(trainer, dev_cluster, f"s3://zoo/checkpoints-{uuid.uuid4().hex[:8]}")
    _assert_resumed_and_matches(answer, kill, uninterrupted)


def test_a_checkpoint_path_other_hosts_cannot_see_is_refused_before_training(trainer):
    # /tmp is private to each host: the driver's /tmp is not the executors'.
    answer = trainer.ask("classify " + json.dumps({"checkpoint": f"/tmp/zoo-checkpoints-{uuid.uuid4().hex[:8]}"}),
                         timeout_s=FIT_TIMEOUT_S)
    error = answer.get("error", "")
    assert "NotSharedError" in error and "is not shared" in error, answer
    assert "10.77.0.11" in error and "10.77.0.12" in error, error  # both worker hosts named
    assert "hdfs://" in error and "s3://" in error  # the fix


def test_a_model_saved_to_s3_transforms_across_the_hosts(trainer, uninterrupted):
    url = f"s3://zoo/models/classifier-{uuid.uuid4().hex[:8]}"
    for backend in (None, "onnxruntime"):
        answer = trainer.ask("transform " + json.dumps({"url": url, "backend": backend}), timeout_s=FIT_TIMEOUT_S)
        assert "error" not in answer, answer["error"]
        assert answer["hosts"] == ["10.77.0.11", "10.77.0.12"], answer["hosts"]
        assert answer["predictions"] == answer["expected"]
