"""Training throughput: Zoo's NNEstimator (2 workers) vs plain PyTorch vs TorchDistributor (DDP).

Same models, same data, same global batch, one run, on local[2]:
  (a) NNEstimator with 2 barrier workers (1 thread each), fed from a cached DataFrame;
  (b) plain single-process PyTorch with the same total threads (2), data already in memory;
  (c) pyspark.ml.torch.distributor.TorchDistributor, 2 processes x 1 thread running a DDP loop
      over the same data (read from a .npy file, as TorchDistributor takes no DataFrame).
Samples/s is steady-state: samples after the first (warm-up) step over the time they took, timed
inside each training loop. Start-up is the time from the call (fit / run) to the end of the first
training step. Zoo's start-up is shown twice: with the Python workers init_spark warms up in the
background (what a session sees once it has loaded its data), and cold, in a fresh session with
the warm-up turned off.

    .venv/bin/python bench/train_throughput.py [--quick]
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
from zoo.nnframes import NNEstimator
from zoo.warm_up import warm_up_workers

GLOBAL_BATCH = 256


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 10))


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


def plain_pytorch(build, x, y, epochs):
    torch.set_num_threads(2)
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
    pdf = pd.DataFrame({"features": list(x.astype(np.float64)), "label": y.astype(np.float64)})
    df = spark.createDataFrame(pdf).repartition(2).cache()
    df.count()
    torch.manual_seed(0)
    estimator = NNEstimator(model=build(), criterion=torch.nn.CrossEntropyLoss(), batchSize=GLOBAL_BATCH,
                            endWhen=MaxEpoch(epochs), numWorkers=2,
                            optimMethod=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                            label_preprocessing=lambda v: np.int64(v)).setShowProgress(False)
    model = estimator.fit(df)
    df.unpersist()
    return model.fit_samples_per_second, model.fit_startup_s


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke run")
    args = parser.parse_args()
    spark = init_spark("local[2]", app_name="zoo-bench-train", warm_up=False)
    _, cold_start = zoo_fit(spark, mlp, *make_data(20_000, 32), 1)
    spark.stop()
    spark = init_spark("local[2]", app_name="zoo-bench-train", warm_up=False)
    # What init_spark(warm_up=True) does in the background, finished before anything is timed so
    # that it takes no CPU from the peers.
    warm_up_workers(spark).join()
    cases = [("MLP 32-128-64-10", mlp, 20_000 if args.quick else 200_000, 32, 1 if args.quick else 3),
             ("CNN 28x28", SmallCNN, 2_000 if args.quick else 20_000, 784, 1)]
    rows = []
    repeats = 1 if args.quick else 3
    for name, build, n, width, epochs in cases:
        x, y = make_data(n, width)
        # Best samples/s of REPEATS runs for each contender (the machine's noise is one-sided);
        # start-up is that of the first run, what a session sees.
        plain_runs = [plain_pytorch(build, x, y, epochs) for _ in range(repeats)]
        zoo_runs = [zoo_fit(spark, build, x, y, epochs) for _ in range(repeats)]
        dist_runs = [distributor_fit(build, x, y, epochs) for _ in range(repeats)]
        (plain, plain_start), (zoo, zoo_start), (dist, dist_start) = (
            (max(rate for rate, _ in runs), runs[0][1]) for runs in (plain_runs, zoo_runs, dist_runs))
        rows.append((f"{name}, {n} rows x {epochs} ep", zoo, plain, dist, zoo_start, plain_start, dist_start))
    spark.stop()

    print(f"\nTraining throughput on local[2] (2 cores), global batch 256, SGD momentum, best of {repeats} runs")
    header = (f"{'case':<34} | {'Zoo 2w':>8} | {'plain':>8} | {'TorchDist':>9} | {'Zoo/plain':>9} | "
              f"{'Zoo/TD':>6} | {'start Zoo':>9} | {'start TD':>8}")
    print(header)
    print("-" * len(header))
    for case, zoo, plain, dist, zs, ps, ds in rows:
        print(f"{case:<34} | {zoo:8.0f} | {plain:8.0f} | {dist:9.0f} | {zoo / plain:8.2f}x | {zoo / dist:5.2f}x "
              f"| {zs:8.1f}s | {ds:7.1f}s")
    print(f"Zoo start with cold Python workers (fresh session, warm-up off): {cold_start:.1f}s")
    print("samples/s, steady state; start = call to first training step. Targets: Zoo/plain >= 0.9, "
          "Zoo/TD >= 1.0, Zoo start <= 5 s.")


if __name__ == "__main__":
    main()
