"""A Spark driver on the dev cluster's edge host that fits NNEstimators across the worker hosts.

It answers each command line on stdin with one line ``PROBE <json>`` on stdout:

    fit <json spec>       fit one NNEstimator and report what the test checks
    classify <json spec>  fit an NNClassifier on a separable problem (4 partitions) with a checkpoint
                          every epoch, each step paced by `delay_s`; with `watch`, first answer
                          {"event": "checkpoint"} as soon as a checkpoint exists (the test then kills
                          an executor), then the fit's result
    transform <json spec> save the last classifier to `url`, load it back from there and transform
                          the classifier's data across the hosts
    quit                  stop

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
import threading
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
    """Features of unit norm on average: unscaled, SGD with momentum diverges to an infinite loss
    within 10 steps, which the engine now stops as a `NonFiniteLossError`."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(WIDE_FEATURES)
    return [[((scale * rng.normal(size=WIDE_FEATURES)).tolist(), float(rng.normal())) for _ in range(size)]
            for size in sizes]


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


class Pace(torch.nn.Module):
    """Identity that sleeps `delay_s` per training forward on the executors, so that an epoch lasts
    long enough for a test to interrupt it."""

    def __init__(self, delay_s: float):
        super().__init__()
        self.delay_s = delay_s

    def forward(self, x):
        if torch.is_grad_enabled() and self.delay_s:
            time.sleep(self.delay_s)
        return x


def separable(spark, partitions: int = 4, rows: int = 120):
    """A separable binary problem, `rows` rows in each of `partitions` partitions (no shuffle)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(partitions * rows, 4))
    y = (x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] > 0).astype(float)
    parts = [[(x[i].tolist(), float(y[i])) for i in range(p * rows, (p + 1) * rows)] for p in range(partitions)]
    return rows_in_partitions(spark, parts, SCHEMA)


def _watch_checkpoints(url: str, found: threading.Event) -> None:
    from zoo.engine.checkpoint import latest_checkpoint

    while not found.is_set():
        latest = latest_checkpoint(url)
        if latest:
            found.set()
            print("PROBE " + json.dumps({"event": "checkpoint", "path": latest}), flush=True)
            return
        time.sleep(0.05)


def classify(spark, spec: dict, state: dict) -> dict:
    from zoo.nnframes import NNClassifier

    df = separable(spark)
    torch.manual_seed(0)
    net = torch.nn.Sequential(Pace(spec.get("delay_s", 0.0)), torch.nn.Linear(4, 16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 1))
    classifier = NNClassifier(model=net, criterion=torch.nn.BCEWithLogitsLoss(), batchSize=32, maxEpoch=4,
                              learningRate=0.3, numWorkers=4).setShowProgress(False)
    classifier.setCheckpoint(spec["checkpoint"], EveryEpoch())
    found = threading.Event()
    if spec.get("watch"):
        threading.Thread(target=_watch_checkpoints, args=(spec["checkpoint"], found), daemon=True).start()
    try:
        model = classifier.fit(df)
    finally:
        found.set()
    state["classifier"], state["data"] = model, df
    return {"params": [p.detach().numpy().ravel().tolist() for p in model.model.parameters()],
            "accuracy": model.transform(df).selectExpr("avg(cast(prediction = label as double))").first()[0],
            "starts": [h["iteration"] for h in model.history if h["event"] == "start"],
            "steps": [h["iteration"] for h in model.history if h["event"] == "step"],
            "topology": model.fit_topology}


def transform(spark, spec: dict, state: dict) -> dict:
    from zoo.nnframes import NNClassifierModel

    model, df = state["classifier"], state["data"]
    model.write().overwrite().save(spec["url"])
    loaded = NNClassifierModel.load(spec["url"])
    if spec.get("backend"):
        loaded.setBackend(spec["backend"])

    def where(rows):
        import os as executor_os

        for row in rows:
            yield (row.prediction, executor_os.environ.get("SPARK_LOCAL_IP"))

    scored = loaded.transform(df)
    placed = scored.select("prediction").rdd.mapPartitions(where).collect()
    return {"predictions": [p for p, _ in placed], "hosts": sorted({h for _, h in placed}),
            "expected": [r.prediction for r in model.transform(df).select("prediction").collect()]}


def main() -> None:
    # One executor of 2 cores per worker host; executors run this machine's venv (no archive).
    spark = init_spark(os.environ["MASTER"], cores=2, num_executors=2, env_archive=None,
                       app_name="zoo-multihost-train")
    spark.sparkContext.setLogLevel("WARN")
    print("PROBE " + json.dumps({"ready": True, "master": spark.sparkContext.master}), flush=True)
    state: dict = {}
    commands = {"fit": lambda spec: fit(spark, spec), "classify": lambda spec: classify(spark, spec, state),
                "transform": lambda spec: transform(spark, spec, state)}
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "quit":
            break
        try:
            if command not in commands:
                raise ValueError(f"unknown command {command!r}")
            answer = commands[command](json.loads(argument))
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"error": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:]}
        print("PROBE " + json.dumps(answer), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
