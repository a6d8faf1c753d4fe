"""A Spark driver on the dev cluster's edge host that fits NNEstimators across the worker hosts.

It answers each command line on stdin with one line ``PROBE <json>`` on stdout:

    fit <json spec>   fit one NNEstimator and report what the test checks
    quit              stop

A spec names the model ("regression": the 3-8-1 net of tests/engine/test_training.py, or "wide":
a 1000-1000-1 MLP of about 1M parameters), the rows of each partition (`parts`, generated as in
tests/engine/test_training.py so the test can build the same single-process reference), `batch`,
`epochs` or `iterations`, `optimizer` (a name in OPTIMIZERS there), `transport`, `compression`,
and optionally `checkpoint` (a directory or URL, written every epoch).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import numpy as np
import torch

from tests.conftest import rows_in_partitions
from tests.engine.test_training import OPTIMIZERS, SCHEMA, make_net, regression_partitions
from zoo import init_spark
from zoo.engine import EveryEpoch, MaxEpoch, MaxIteration
from zoo.nnframes import NNEstimator

WIDE_FEATURES = 1000


def wide_net():
    torch.manual_seed(5)
    return torch.nn.Sequential(torch.nn.Linear(WIDE_FEATURES, 1000), torch.nn.ReLU(), torch.nn.Linear(1000, 1))


def wide_partitions(sizes, seed=1):
    rng = np.random.default_rng(seed)
    return [[(rng.normal(size=WIDE_FEATURES).tolist(), float(rng.normal())) for _ in range(size)] for size in sizes]


def fit(spark, spec: dict) -> dict:
    wide = spec["model"] == "wide"
    parts = wide_partitions(spec["parts"]) if wide else regression_partitions(spec["parts"])
    df = rows_in_partitions(spark, parts, SCHEMA)
    end = MaxIteration(spec["iterations"]) if "iterations" in spec else MaxEpoch(spec["epochs"])
    factory, clip = OPTIMIZERS[spec["optimizer"]]
    estimator = NNEstimator(model=wide_net() if wide else make_net(), criterion=torch.nn.MSELoss(),
                            batchSize=spec["batch"], endWhen=end, optimMethod=factory, numWorkers=len(parts),
                            shuffle=False, transport=spec.get("transport", "auto"),
                            gradientCompression=spec.get("compression", "none")).setShowProgress(False)
    if clip is not None:
        estimator.setGradientClippingByL2Norm(clip)
    if spec.get("checkpoint"):
        estimator.setCheckpoint(spec["checkpoint"], EveryEpoch())
    started = time.time()
    model = estimator.fit(df)
    return {"fit_s": time.time() - started, "topology": model.fit_topology, "profile": model.fit_profile,
            "steps": [h["iteration"] for h in model.history if h["event"] == "step"],
            "params": [] if wide else [p.detach().numpy().ravel().tolist() for p in model.model.parameters()]}


def main() -> None:
    # One executor of 2 cores per worker host; executors run this machine's venv (no archive).
    spark = init_spark(os.environ["MASTER"], cores=2, num_executors=2, env_archive=None,
                       app_name="zoo-multihost-train")
    spark.sparkContext.setLogLevel("WARN")
    print("PROBE " + json.dumps({"ready": True, "master": spark.sparkContext.master}), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "quit":
            break
        try:
            answer = fit(spark, json.loads(argument)) if command == "fit" else {"error": f"unknown: {command}"}
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"error": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:]}
        print("PROBE " + json.dumps(answer), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
