"""Online learning (issue 19) on local[2]: one table, one row per measurement.

- streaming-fit throughput: `NNEstimator.fitStream` over Spark's file source (one parquet file per
  micro-batch) against `NNEstimator.fit` on the same files, same model, batch and epochs. Rows/s
  is end to end: rows over the wall time from the call to the last micro-batch committed (the
  stream) or to fit's return (the batch fit), so the stream pays its per-micro-batch costs (a
  barrier stage, the data pass, the checkpoint and commit) and the batch fit its one start-up.
  Target: stream / batch >= 0.8. Measured for several micro-batch sizes (`--batch-rows`): each
  micro-batch pays a fixed cost (Spark's micro-batch commit and planning, the fit's jobs and
  barrier stage), so the ratio grows with the rows a micro-batch trains on, and so does the
  freshness a version can have.
- freshness: seconds from an event's arrival to the first answer of a served model that trained
  on it, over every version of the whole loop (scripts/examples/online_learning.py, through a
  concept drift). Target: <= 30 s.
- swap cost: p99 latency while serving swaps versions against steady state (bench/online_swap.py).
  Target: <= 1.5x.

The contenders run interleaved (`--repeats` rounds) and each keeps its best run: this shared
machine's noise is one-sided.

    .venv/bin/python bench/online_learning.py [--quick] [--batch-rows N,N,...] [--batches N]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

from zoo import init_spark  # noqa: E402
from zoo.nnframes import NNEstimator  # noqa: E402

FEATURES = 64
GLOBAL_BATCH = 256
#: Issue 19's target for streaming-fit throughput against the batch fit.
TARGET_THROUGHPUT_RATIO = 0.8
#: Issue 19's target for freshness, seconds.
TARGET_FRESHNESS_S = 30.0


@dataclass
class Row:
    """One line of the table: what was measured, the two numbers compared, their ratio and the target."""

    name: str
    measured: str
    baseline: str
    ratio: float
    target: str
    met: bool


def write_files(folder: str, rows: int, files: int) -> None:
    """`rows` samples of a noisy linear target in `files` parquet files, one per micro-batch, in read order."""
    rng = np.random.default_rng(0)
    weights = rng.normal(size=FEATURES)
    for i, part in enumerate(np.array_split(np.arange(rows), files)):
        x = rng.normal(size=(len(part), FEATURES))
        y = x @ weights + 0.1 * rng.normal(size=len(part))
        path = os.path.join(folder, f"part-{i:04d}.parquet")
        pd.DataFrame({"features": list(x), "label": y}).to_parquet(path)
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))


def estimator() -> NNEstimator:
    """An MLP 64-256-256-1 with Adam: the same for both contenders."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, 1))
    return NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=GLOBAL_BATCH, maxEpoch=1,
                       optimMethod=torch.optim.Adam, learningRate=1e-3).setShowProgress(False)


def batch_fit_rows_per_second(spark, folder: str, rows: int) -> float:
    """Rows/s of one `fit` over every file, from the call to its return."""
    df = spark.read.parquet(folder)
    started = time.perf_counter()
    estimator().fit(df)
    return rows / (time.perf_counter() - started)


def stream_fit_rows_per_second(spark, folder: str, rows: int, files: int) -> tuple[float, float]:
    """Rows/s of `fitStream` over the same files (one per micro-batch), from the call to the last
    commit, and the median seconds a micro-batch took (its share of a version's freshness)."""
    stream = spark.readStream.schema("features array<double>, label double").option("maxFilesPerTrigger", 1) \
        .parquet(folder)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-stream-") as state:
        started = time.perf_counter()
        handle = estimator().fitStream(stream, checkpoint_location=state)
        try:
            handle.processAllAvailable()
        finally:
            handle.stop()
        elapsed = time.perf_counter() - started
    trained = sum(h.rows for h in handle.history)
    if trained != rows or len(handle.history) != files:
        raise RuntimeError(f"The stream trained {trained} rows in {len(handle.history)} micro-batches; "
                           f"expected {rows} in {files}.")
    return rows / elapsed, statistics.median(h.seconds for h in handle.history)


def throughput_row(spark, rows: int, files: int, repeats: int) -> Row:
    """Streaming-fit throughput against the batch fit on the same data (best of `repeats`, interleaved)."""
    with tempfile.TemporaryDirectory(prefix="zoo-bench-files-") as folder:
        write_files(folder, rows, files)
        # Untimed: the first fit of a session starts the Python workers both contenders then reuse.
        estimator().fit(spark.read.parquet(folder).limit(GLOBAL_BATCH * 2))
        batch, stream, seconds = 0.0, 0.0, 0.0
        for _ in range(repeats):
            batch = max(batch, batch_fit_rows_per_second(spark, folder, rows))
            rate, each = stream_fit_rows_per_second(spark, folder, rows, files)
            if rate > stream:
                stream, seconds = rate, each
    ratio = stream / batch
    return Row(f"streaming fit, {files} micro-batches of {rows // files:,} rows ({seconds:.1f} s each)",
               f"{stream:,.0f} rows/s",
               f"{batch:,.0f} rows/s (fit)", ratio, f">= {TARGET_THROUGHPUT_RATIO}x",
               ratio >= TARGET_THROUGHPUT_RATIO)


def freshness_row(spark, args) -> Row:
    """Freshness: seconds from an event's arrival to the first answer of a served model that trained
    on it (target <= 30 s), over the versions of the whole loop of scripts/examples/online_learning.py
    (serving follows the champion, fitStream trains on the feedback stream, each version gated)."""
    import importlib.util

    path = os.path.join(REPO, "scripts", "examples", "online_learning.py")
    spec = importlib.util.spec_from_file_location("online_learning", path)
    loop = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    with tempfile.TemporaryDirectory(prefix="zoo-bench-online-") as folder:
        _, _, _, fresh = loop.run(spark, pathlib.Path(folder), seconds=args.loop_seconds, rate=100.0)
    if not fresh:
        return Row("freshness (event -> serving a model trained on it)", "no version served", "", float("nan"),
                   f"<= {TARGET_FRESHNESS_S:g} s", False)
    worst, median = max(fresh.values()), float(np.median(list(fresh.values())))
    return Row(f"freshness over {len(fresh)} served versions", f"max {worst:.1f} s", f"median {median:.1f} s",
               worst / TARGET_FRESHNESS_S, f"<= {TARGET_FRESHNESS_S:g} s", worst <= TARGET_FRESHNESS_S)


def swap_cost_row(args) -> Row:
    """Swap cost: p99 latency while serving swaps versions against steady state (target <= 1.5x),
    measured by bench/online_swap.py (its own worker process and Redis)."""
    import online_swap

    result = online_swap.run(8, args.swap_seconds, 2.0 if args.quick else 4.0, 1 if args.quick else 3)
    steady, swapping = result["steady"], result["swapping"]
    ratio = swapping["p99"] / steady["p99"]
    return Row(f"swap cost ({result['moves']} alias moves, p99)", f"{swapping['p99']:.1f} ms swapping",
               f"{steady['p99']:.1f} ms steady", ratio, f"<= {online_swap.TARGET_RATIO}x",
               ratio <= online_swap.TARGET_RATIO)


def print_table(rows: list[Row]) -> None:
    """The table, then whether each target is met."""
    header = f"{'measurement':<44} | {'zoo':>16} | {'baseline':>26} | {'ratio':>6} | {'target':>8} | met"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r.name:<44} | {r.measured:>16} | {r.baseline:>26} | {r.ratio:6.2f} | {r.target:>8} | "
              f"{'yes' if r.met else 'NO'}")


def main() -> None:
    """Run every row and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, one round (a smoke run)")
    parser.add_argument("--batch-rows", default="50000,200000,500000",
                        help="rows per micro-batch of each throughput comparison, comma-separated")
    parser.add_argument("--batches", type=int, default=4, help="micro-batches (files) of each comparison")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds; each contender keeps its best")
    parser.add_argument("--loop-seconds", type=float, default=60.0, help="events of the freshness loop (drift halfway)")
    parser.add_argument("--swap-seconds", type=float, default=30.0, help="length of each swap-cost phase")
    args = parser.parse_args()
    if args.quick:
        args.batch_rows, args.batches, args.repeats, args.loop_seconds, args.swap_seconds = "10000", 2, 1, 30.0, 10.0
    spark = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    spark.sparkContext.setLogLevel("ERROR")
    try:
        sizes = [int(size) for size in args.batch_rows.split(",")]
        rows = [throughput_row(spark, size * args.batches, args.batches, args.repeats) for size in sizes]
        rows.append(freshness_row(spark, args))
    finally:
        spark.stop()
    rows.append(swap_cost_row(args))
    print(f"\nOnline learning on local[2] (2 cores): MLP {FEATURES}-256-256-1, global batch {GLOBAL_BATCH}, Adam, "
          f"1 epoch per micro-batch")
    print_table(rows)


if __name__ == "__main__":
    main()
