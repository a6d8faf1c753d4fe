"""Training throughput: Zoo's NNEstimator (2 workers) vs plain PyTorch vs TorchDistributor (DDP).

Same models (an MLP, a CNN and a ~10M-parameter MLP), same data, same global batch, one run, on
local[2]:
  (a) NNEstimator with 2 barrier workers (1 thread each), fed from a cached DataFrame;
  (b) plain single-process PyTorch with the same total threads (2), data already in memory;
  (c) the same with 1 thread: the per-core limit. Efficiency = Zoo / (2 x this), what data
      parallelism on 2 cores can at best reach;
  (d) pyspark.ml.torch.distributor.TorchDistributor, 2 processes x 1 thread running a DDP loop
      over the same data (read from a .npy file, as TorchDistributor takes no DataFrame).
The contenders run interleaved (a round of each, `repeats` rounds) and each keeps its best
samples/s: the machine's noise is one-sided. Samples/s is steady-state: samples after the first
(warm-up) step over the time they took, timed inside each training loop. Start-up is the time
from the call (fit / run) to the end of the first training step. Zoo's start-up is shown warm
(the first fit of a session whose Python workers init_spark warmed up in the background) and
cold (a fresh session with the warm-up turned off). For each model, the step-time breakdown of
Zoo's best run follows (see `zoo.engine.profile`).

    .venv/bin/python bench/train_throughput.py [--quick] [--models mlp,cnn,wide] [--startup-only]

`--startup-only` measures the cold and the warm start-up alone (run it several times and keep
the best: each run has one cold process).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from zoo import init_spark
from zoo.engine import MaxEpoch
from zoo.engine.profile import format_table
from zoo.nnframes import NNEstimator
from zoo.warm_up import warm_up_workers

GLOBAL_BATCH = 256
WORKERS = 2
#: Targets of issue 20, printed under the tables.
TARGET_EFFICIENCY, TARGET_COLD_START_S, TARGET_WARM_START_S = 0.85, 5.0, 2.0


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 10))


def wide_mlp():
    """~9.8M parameters: big enough that a step is compute, not per-step overhead."""
    return torch.nn.Sequential(torch.nn.Linear(256, 2560), torch.nn.ReLU(), torch.nn.Linear(2560, 2560),
                               torch.nn.ReLU(), torch.nn.Linear(2560, 1024), torch.nn.ReLU(),
                               torch.nn.Linear(1024, 10))


class SmallCNN(torch.nn.Module):
    """Two conv layers and a linear head over 1x28x28 images given as flat rows."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.head = torch.nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.features(x.reshape(-1, 1, 28, 28)).flatten(1))


def make_data(rows: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    y = (np.abs(x[:, :10]).argmax(axis=1)).astype(np.int64)
    return x, y


def plain_pytorch(build, x, y, epochs, threads=WORKERS):
    """(steady samples/s, start-up s) of a plain PyTorch loop on `threads` intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _plain_loop(build, x, y, epochs)
    finally:
        torch.set_num_threads(previous)


def _plain_loop(build, x, y, epochs):
    torch.manual_seed(0)
    model, loss_fn = build(), torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    start = time.perf_counter()
    first, samples = None, 0
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), GLOBAL_BATCH):
            index = order[i:i + GLOBAL_BATCH]
            optimizer.zero_grad()
            loss_fn(model(xt[index]), yt[index]).backward()
            optimizer.step()
            if first is None:
                first = time.perf_counter()
            else:
                samples += len(index)
    return samples / (time.perf_counter() - first), first - start


def zoo_fit(spark, build, x, y, epochs):
    """The fitted NNModel: fit_samples_per_second, fit_startup_s and fit_profile are the figures."""
    pdf = pd.DataFrame({"features": list(x.astype(np.float64)), "label": y.astype(np.float64)})
    df = spark.createDataFrame(pdf).repartition(2).cache()
    df.count()
    torch.manual_seed(0)
    estimator = NNEstimator(model=build(), criterion=torch.nn.CrossEntropyLoss(), batchSize=GLOBAL_BATCH,
                            endWhen=MaxEpoch(epochs), numWorkers=WORKERS,
                            optimMethod=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                            label_preprocessing=lambda v: np.int64(v)).setShowProgress(False)
    model = estimator.fit(df)
    df.unpersist()
    return model


def distributor_fit(build, x, y, epochs):
    from pyspark.ml.torch.distributor import TorchDistributor

    folder = tempfile.mkdtemp(prefix="zoo-bench-")
    np.save(os.path.join(folder, "x.npy"), x)
    np.save(os.path.join(folder, "y.npy"), y)

    def train(folder, epochs, batch, build):
        import time

        import numpy as np
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        x = torch.from_numpy(np.load(os.path.join(folder, "x.npy"))[rank::world])
        y = torch.from_numpy(np.load(os.path.join(folder, "y.npy"))[rank::world])
        torch.manual_seed(0)
        model = torch.nn.parallel.DistributedDataParallel(build())
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        first, samples = None, 0
        local = batch // world
        for _ in range(epochs):
            order = torch.randperm(len(x))
            for i in range(0, len(x), local):
                index = order[i:i + local]
                optimizer.zero_grad()
                loss_fn(model(x[index]), y[index]).backward()
                optimizer.step()
                if first is None:
                    first = time.time()
                else:
                    samples += len(index) * world
        end = time.time()
        dist.destroy_process_group()
        return first, samples / (end - first)

    start = time.time()
    first, samples_per_second = TorchDistributor(num_processes=2, local_mode=True, use_gpu=False).run(
        train, folder, epochs, GLOBAL_BATCH, build)
    return samples_per_second, first - start


#: name -> (label, model builder, rows (quick, full), input width, epochs (quick, full)).
CASES = {
    "mlp": ("MLP 32-128-64-10", mlp, (20_000, 200_000), 32, (1, 3)),
    "cnn": ("CNN 28x28", SmallCNN, (2_000, 20_000), 784, (1, 1)),
    "wide": ("MLP 256-2560-2560-1024-10 (9.8M)", wide_mlp, (1_536, 10_240), 256, (1, 1)),
}


def measure_case(spark, build, x, y, epochs, repeats) -> dict:
    """Best steady samples/s of each contender over `repeats` interleaved rounds; start-ups of the
    first round (what a session sees); the step profile of Zoo's best run."""
    runs = {"zoo": [], "plain": [], "plain1": [], "dist": []}
    for _ in range(repeats):
        model = zoo_fit(spark, build, x, y, epochs)
        runs["zoo"].append((model.fit_samples_per_second, model.fit_startup_s, model.fit_profile))
        runs["plain"].append(plain_pytorch(build, x, y, epochs))
        runs["plain1"].append(plain_pytorch(build, x, y, epochs, threads=1))
        runs["dist"].append(distributor_fit(build, x, y, epochs))
    best = {name: max(r[0] for r in rs) for name, rs in runs.items()}
    return {**best, "zoo_start": runs["zoo"][0][1], "dist_start": runs["dist"][0][1],
            "profile": max(runs["zoo"], key=lambda r: r[0])[2]}


def startup(warm: bool) -> float:
    """Seconds from fit() to the first training step of a fresh session's first fit (MLP, 20,000
    rows); `warm`: after init_spark's warm-up of the Python workers, finished before timing."""
    spark = init_spark("local[2]", app_name="zoo-bench-train", warm_up=False)
    if warm:
        warm_up_workers(spark).join()
    seconds = zoo_fit(spark, mlp, *make_data(20_000, 32), 1).fit_startup_s
    spark.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data and one round, for a smoke run")
    parser.add_argument("--startup-only", action="store_true", help="measure the cold and warm start-up only")
    parser.add_argument("--models", default=",".join(CASES),
                        help=f"comma-separated models to measure, of {', '.join(CASES)} (default: all)")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown or not names:
        parser.error(f"--models expects names from {', '.join(CASES)}; received {args.models!r}.")
    cold_start = startup(warm=False)
    if args.startup_only:
        print(f"Zoo start-up (fit() to first step, MLP): cold {cold_start:.2f} s, warm {startup(warm=True):.2f} s; "
              f"targets {TARGET_COLD_START_S:.0f} s and {TARGET_WARM_START_S:.0f} s.")
        return
    spark = init_spark("local[2]", app_name="zoo-bench-train", warm_up=False)
    # What init_spark(warm_up=True) does in the background, finished before anything is timed so
    # that it takes no CPU from the peers.
    warm_up_workers(spark).join()
    repeats = 1 if args.quick else 3
    rows = []
    for name in names:
        label, build, sizes, width, epoch_counts = CASES[name]
        n, epochs = sizes[0 if args.quick else 1], epoch_counts[0 if args.quick else 1]
        rows.append((f"{label}, {n:,} rows x {epochs} ep",
                     measure_case(spark, build, *make_data(n, width), epochs, repeats)))
    spark.stop()

    print(f"\nTraining throughput on local[2] (2 cores), global batch {GLOBAL_BATCH}, SGD momentum, "
          f"best of {repeats} interleaved run(s)")
    width = max(len(case) for case, _ in rows)
    header = (f"{'case':<{width}} | {'Zoo 2w':>8} | {'plain':>8} | {'plain 1t':>8} | {'efficiency':>10} | "
              f"{'TorchDist':>9} | {'Zoo/plain':>9} | {'Zoo/TD':>6} | {'start Zoo':>9} | {'start TD':>8}")
    print(header)
    print("-" * len(header))
    for case, r in rows:
        efficiency = r["zoo"] / (WORKERS * r["plain1"])
        print(f"{case:<{width}} | {r['zoo']:8.0f} | {r['plain']:8.0f} | {r['plain1']:8.0f} | {efficiency:10.2f} | "
              f"{r['dist']:9.0f} | {r['zoo'] / r['plain']:8.2f}x | {r['zoo'] / r['dist']:5.2f}x | "
              f"{r['zoo_start']:8.1f}s | {r['dist_start']:7.1f}s")
    print(f"samples/s, steady state; efficiency = Zoo 2w / ({WORKERS} x plain 1 thread); start = call to "
          f"first training step.")
    print(f"Zoo start-up: warm {rows[0][1]['zoo_start']:.1f} s (first fit of a warmed-up session, "
          f"{rows[0][0].split(',')[0]}), cold {cold_start:.1f} s (fresh session, warm-up off, MLP).")
    print(f"Targets: efficiency >= {TARGET_EFFICIENCY} on every model, warm start <= {TARGET_WARM_START_S:.0f} s, "
          f"cold start <= {TARGET_COLD_START_S:.0f} s; Zoo/plain >= 0.9, Zoo/TD >= 1.0.")
    for case, r in rows:
        print(f"\nStep-time breakdown, Zoo's best run: {case}\n{format_table(r['profile'])}")


if __name__ == "__main__":
    main()
