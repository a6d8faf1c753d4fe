"""Checkpoints through zoo.storage: layout, atomicity (a failure mid-write leaves no visible
checkpoint; on S3 meta.json is the commit marker), and a real fit that checkpoints to s3:// and
resumes from it on local[2] (tests/engine/test_training.py proves, on local paths, that a resumed
fit ends with the weights of an uninterrupted one)."""

import io
import os

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays
from zoo import storage
from zoo.engine import EveryEpoch, MaxEpoch
from zoo.engine import checkpoint as ckpt
from zoo.nnframes import NNEstimator


def meta(iteration):
    return {"run_id": "r", "epoch": 0, "iteration": iteration, "step_in_epoch": 0, "sharded": False, "num_params": 1}


@pytest.fixture(params=["local", "file", "s3"])
def checkpoint_root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "ckpt")
    if request.param == "file":
        return f"file://{tmp_path}/ckpt"
    return f"{request.getfixturevalue('s3').url}/ckpt"


def test_save_latest_load_and_overwrite(checkpoint_root):
    state = {"state": {}, "param_groups": [{"lr": 0.1}]}
    first = ckpt.save_checkpoint(checkpoint_root, False, meta(3), b"weights-3", state)
    assert storage.listdir(first) == ["meta.json", "model.pt", "optimizer.pt"]
    second = ckpt.save_checkpoint(checkpoint_root, False, meta(12), b"weights-12", state)
    assert ckpt.checkpoint_names(checkpoint_root) == ["checkpoint-000000003", "checkpoint-000000012"]
    assert ckpt.latest_checkpoint(checkpoint_root) == second
    loaded_meta, weights, optimizer = ckpt.load_checkpoint(second)
    assert loaded_meta == meta(12) and weights == b"weights-12" and optimizer == state
    ckpt.save_checkpoint(checkpoint_root, True, meta(20), b"weights-20", state)
    assert ckpt.checkpoint_names(checkpoint_root) == ["checkpoint-000000020"]
    assert ckpt.read_meta(ckpt.latest_checkpoint(checkpoint_root))["iteration"] == 20


def test_a_failure_mid_write_leaves_no_visible_checkpoint(checkpoint_root):
    ckpt.save_checkpoint(checkpoint_root, False, meta(1), b"weights-1", {"state": {}})
    with pytest.raises(Exception):
        # model.pt is written, then torch.save fails on the optimizer state: before any commit.
        ckpt.save_checkpoint(checkpoint_root, False, meta(2), b"weights-2", {"state": {"bad": lambda: None}})
    assert ckpt.checkpoint_names(checkpoint_root) == ["checkpoint-000000001"]
    assert storage.listdir(checkpoint_root) == ["checkpoint-000000001"]  # no staging left either


def test_on_s3_a_checkpoint_without_its_marker_does_not_count(s3):
    root = f"{s3.url}/ckpt"
    ckpt.save_checkpoint(root, False, meta(5), b"weights-5", {"state": {}})
    # What a writer that died before its marker leaves behind on an object store.
    storage.write_bytes(f"{root}/checkpoint-000000009/model.pt", b"half")
    assert ckpt.latest_checkpoint(root) == f"{root}/checkpoint-000000005"


@pytest.mark.slow
def test_a_fit_checkpoints_to_s3_and_resumes_from_it(spark, s3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4))
    df = frame_from_arrays(spark, x, (x.sum(axis=1) > 0).astype(float), partitions=2)
    root = f"s3a://{s3.name}/runs/ckpt"

    def estimator(epochs):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        return NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=16, endWhen=MaxEpoch(epochs),
                           optimMethod=lambda p: torch.optim.Adam(p, lr=0.01)).setShowProgress(False)

    # The workers get no AWS variables (they were set in this process only): they write with the
    # storage options the driver shipped.
    assert "AWS_ENDPOINT_URL" not in spark.sparkContext.parallelize([0], 1).map(lambda _: dict(os.environ)).first()
    first = estimator(1).setCheckpoint(root, EveryEpoch()).fit(df)
    assert s3.keys("runs") == ["runs/ckpt/checkpoint-000000004/meta.json", "runs/ckpt/checkpoint-000000004/model.pt",
                               "runs/ckpt/checkpoint-000000004/optimizer.pt"]
    _, saved_weights, _ = ckpt.load_checkpoint(f"{root}/checkpoint-000000004")
    for name, value in torch.load(io.BytesIO(saved_weights), weights_only=True).items():
        np.testing.assert_array_equal(value.numpy(), first.model.state_dict()[name].numpy())
    resumed = estimator(3).setCheckpoint(root, EveryEpoch(), resume=True).fit(df)
    steps = [h["iteration"] for h in resumed.history if h["event"] == "step"]
    assert steps == list(range(5, 13))  # read back from S3: epochs 2 and 3 only
    assert ckpt.checkpoint_names(root) == ["checkpoint-000000012"]
