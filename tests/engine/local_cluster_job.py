"""Driver script run by test_local_cluster.py in its own process (one SparkContext per process).

On local-cluster[2,1,1024] (two executor JVMs, each with its own Python workers) it fits and
transforms, then fits again while one worker's Python process dies mid-training on the first
attempt, so Spark retries the barrier stage and the engine must resume from its checkpoint.
Prints one JSON line of findings for the test to assert on.
"""

import json
import os
import sys
import tempfile

import numpy as np
import torch

from zoo import init_spark
from zoo.engine import EveryEpoch, MaxEpoch
from zoo.nnframes import NNClassifier


class CrashOnce(torch.nn.Module):
    """An MLP whose rank-1 replica kills its own Python worker once, at its `crash_at`-th forward."""

    def __init__(self, marker: str, crash_at: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
        self.marker, self.crash_at, self.calls = marker, crash_at, 0

    def forward(self, x):
        from pyspark import TaskContext

        context = TaskContext.get()
        if context is not None and context.partitionId() == 1 and self.training:
            self.calls += 1
            if self.calls == self.crash_at and not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os._exit(3)  # the Python worker dies as if killed
        return self.net(x)


def classifier(model, checkpoint_dir):
    clf = NNClassifier(model=model, criterion=torch.nn.CrossEntropyLoss(), batchSize=32, endWhen=MaxEpoch(4),
                       learningRate=0.2, numWorkers=2).setShowProgress(False)
    return clf.setCheckpoint(checkpoint_dir, EveryEpoch())


def main():
    spark = init_spark("local-cluster[2,1,1024]", conf={"spark.task.maxFailures": "4"})
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 4))
    y = (x[:, 0] - x[:, 1] > 0).astype(float)
    df = spark.createDataFrame([(r.tolist(), float(t)) for r, t in zip(x, y)], ["features", "label"]).repartition(2)
    df.cache().count()
    executor_pids = set(df.rdd.mapPartitions(lambda _: [os.getppid()]).collect())
    work = tempfile.mkdtemp()

    torch.manual_seed(0)
    plain = classifier(CrashOnce(os.path.join(work, "never"), crash_at=10**9), os.path.join(work, "plain"))
    open(os.path.join(work, "never"), "w").close()
    uninterrupted = plain.fit(df)

    torch.manual_seed(0)
    marker = os.path.join(work, "crashed")
    steps_per_epoch = 20  # 640 rows / 32 per global batch
    crashing = classifier(CrashOnce(marker, crash_at=int(1.5 * steps_per_epoch)), os.path.join(work, "crash"))
    recovered = crashing.fit(df)

    accuracy = recovered.transform(df).selectExpr("avg(cast(prediction = label as double))").first()[0]
    steps = [h["iteration"] for h in recovered.history if h["event"] == "step"]
    max_difference = max(float((a - b).abs().max()) for a, b in
                         zip(recovered.model.parameters(), uninterrupted.model.parameters()))
    print(json.dumps({
        "driver_pid": os.getpid(), "executor_pids": sorted(executor_pids), "crashed": os.path.exists(marker),
        "starts": [h["iteration"] for h in recovered.history if h["event"] == "start"],
        "last_step": steps[-1], "accuracy": accuracy, "max_weight_difference": max_difference,
    }))
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
