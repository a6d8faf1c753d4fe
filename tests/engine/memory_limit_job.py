"""Driver script for test_memory_limit.py and bench/memory.py --limit: fits under a memory limit.

On local-cluster[1,1,1024] with `spark.executor.pyspark.memory` set, Spark limits the address
space of each Python worker (RLIMIT_AS, set by pyspark's worker before it runs a task). One
worker fits a linear model on ROWS x WIDTH float32 features generated on the JVM (no Python copy
of the data on the driver; the same values in every session, from seeded `rand` on one
partition), once per value of --caching, and prints one JSON line: per fit the trained weights
or the worker's error, the seconds it took and the worker's peak address space and resident
memory (VmPeak, VmHWM, written by the model's forward on the worker).

    python tests/engine/memory_limit_job.py --rows 4000000 --limit-mb 1200 --caching DISK MEMORY
"""

import argparse
import json
import os
import tempfile
import time

import torch

WIDTH = 64
MIB = 1 << 20


class ReportingLinear(torch.nn.Linear):
    """A linear model whose forward writes its worker's peak memory (kB, /proc/self/status) to `path`."""

    def __init__(self, path: str):
        super().__init__(WIDTH, 1)
        self.path = path

    def forward(self, x):
        if self.training:
            with open("/proc/self/status") as f:
                peaks = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmPeak", "VmHWM"))}
            with open(self.path, "w") as f:
                json.dump(peaks, f)
        return super().forward(x)


def frame(spark, rows: int):
    """ROWS x WIDTH float32 features in [-0.5, 0.5) and a linear label, on one partition."""
    from pyspark.sql import functions as F

    # One generated `rand` per column: a `transform` lambda would be interpreted row by row, and
    # this job makes about 1.1 billion values on every pass over the data.
    features = F.array(*[F.rand(seed=column) - 0.5 for column in range(WIDTH)]).cast("array<float>")
    df = spark.range(rows, numPartitions=1).select(features.alias("features"))
    return df.select("features", (F.col("features")[0] * 2 - F.col("features")[1] + 0.5).alias("label"))


def fit(df, caching: str, steps: int) -> dict:
    """Fit with cachingSample=`caching` for `steps` steps; the weights or the error, seconds and peaks."""
    from zoo.engine import MaxIteration
    from zoo.nnframes import NNEstimator

    report = tempfile.mktemp(prefix="zoo-memory-limit-", suffix=".json")
    torch.manual_seed(0)
    estimator = NNEstimator(model=ReportingLinear(report), criterion=torch.nn.MSELoss(), batchSize=4096,
                            learningRate=0.5, numWorkers=1, endWhen=MaxIteration(steps),
                            cachingSample=caching).setShowProgress(False)
    started = time.time()
    result = {"caching": caching}
    try:
        model = estimator.fit(df)
        result["weights"] = [p.detach().reshape(-1).tolist() for p in model.model.parameters()]
        result["loss"] = [h["loss"] for h in model.history if h["event"] == "step"][-1]
    except Exception as exc:  # the outcome under test: reported, not raised
        result["error"] = f"{type(exc).__name__}: {exc}"[-3000:]
    result["seconds"] = time.time() - started
    if os.path.exists(report):
        with open(report) as f:
            result["peak_kb"] = json.load(f)
        os.unlink(report)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--limit-mb", type=int, default=0, help="spark.executor.pyspark.memory (0: no limit)")
    parser.add_argument("--caching", nargs="+", default=["DISK"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--master", default="local-cluster[1,1,1024]")
    args = parser.parse_args()

    from zoo import init_spark

    conf = {"spark.executor.pyspark.memory": f"{args.limit_mb}m"} if args.limit_mb else {}
    spark = init_spark(args.master, conf=conf)
    df = frame(spark, args.rows)
    fits = [fit(df, caching, args.steps) for caching in args.caching]
    print(json.dumps({"rows": args.rows, "data_mib": args.rows * WIDTH * 4 / MIB, "limit_mib": args.limit_mb,
                      "fits": fits}))
    spark.stop()


if __name__ == "__main__":
    main()
