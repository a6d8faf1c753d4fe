"""Gradient aggregation across hosts: flat gloo vs hierarchical vs hierarchical + bf16 vs DDP.

Runs on the dev cluster (zoo.devcluster: 2 worker hosts x 2 cores, one executor each, every
link shaped to 1 Gbit/s in both directions; needs root for the network namespaces). For MLPs of
about 1M, 10M and 25M parameters, 4 workers (2 per host), global batch 64:

  - Zoo's NNEstimator with transport="gloo" (one flat gloo all-to-all + ring all-gather among
    all 4 workers), transport="auto" (hierarchical: shared memory within a host, gloo across
    hosts) and "auto" with gradientCompression="bf16" (inter-host leg only). Aggregation time
    per step is what the engine's step profile measures in reduce-scatter + all-gather; each
    worker's includes waiting for slower peers, so the table takes the least of the 4 workers.
  - PySpark's TorchDistributor running DistributedDataParallel (gloo) with 4 processes on the
    same 2 x 2 layout. Its aggregation time per step is the step time with gradient sync minus
    the step time under `no_sync()` in the same processes: the communication DDP does not hide
    behind the backward pass.

Each figure is shown next to the ring lower bound 2(H-1)/H * S / B (S the gradient in bytes,
B the link's bandwidth), and samples/s end to end (steady state). Best of --repeats runs (the
machine is shared and noisy; the spread is printed too).

    sudo .venv/bin/python bench/multi_host.py [--quick] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HOSTS, CORES, WORKERS = 2, 2, 4
BANDWIDTH, BANDWIDTH_BITS = "1gbit", 1e9
FEATURES, CLASSES, GLOBAL_BATCH, ROWS_PER_WORKER = 256, 10, 64, 128
#: (name, hidden width, Zoo steps, DDP steps per phase): an MLP FEATURES-h-h-CLASSES.
MODELS = [("1M", 870, 20, 16), ("10M", 3030, 10, 8), ("25M", 4860, 8, 6)]
CONTENDERS = ("flat gloo", "hierarchical", "hierarchical + bf16", "DDP (TorchDistributor)")


def mlp(hidden: int):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, CLASSES))


def parameters(hidden: int) -> int:
    return FEATURES * hidden + hidden + hidden * hidden + hidden + hidden * CLASSES + CLASSES


def lower_bound_ms(params: int) -> float:
    """2(H-1)/H of the gradient over one host's link."""
    return 1000.0 * 2 * (HOSTS - 1) / HOSTS * 4 * params / (BANDWIDTH_BITS / 8)


# ---------------------------------------------------------------------------- on the edge host
def _rows(partition: int):
    import numpy as np

    rng = np.random.default_rng(partition)
    for _ in range(ROWS_PER_WORKER):
        x = rng.normal(size=FEATURES)
        yield x.tolist(), float(np.abs(x[:CLASSES]).argmax())


def zoo_run(spark, hidden: int, steps: int, transport: str, compression: str) -> dict:
    import numpy as np
    import torch

    from zoo.engine import MaxIteration
    from zoo.engine.profile import AGGREGATION_PHASES
    from zoo.nnframes import NNEstimator

    df = spark.createDataFrame(spark.sparkContext.parallelize(range(WORKERS), WORKERS).flatMap(_rows),
                               "features array<double>, label double")
    estimator = NNEstimator(model=mlp(hidden), criterion=torch.nn.CrossEntropyLoss(), batchSize=GLOBAL_BATCH,
                            endWhen=MaxIteration(steps + 1), numWorkers=WORKERS, transport=transport,
                            gradientCompression=compression, label_preprocessing=lambda v: np.int64(v),
                            optimMethod=lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)).setShowProgress(False)
    model = estimator.fit(df)
    aggregation = [sum(p[phase] for phase in AGGREGATION_PHASES) for p in model.fit_profile]
    return {"aggregation_ms": min(aggregation), "samples_per_s": model.fit_samples_per_second,
            "topology": model.fit_topology}


def _ddp_train(folder: str, hidden: int, steps: int, batch: int):
    """TorchDistributor's training function: DDP steps with and without gradient sync."""
    import time

    import numpy as np
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    x = torch.from_numpy(np.load(os.path.join(folder, "x.npy"))[rank::world])
    y = torch.from_numpy(np.load(os.path.join(folder, "y.npy"))[rank::world])
    model = torch.nn.parallel.DistributedDataParallel(mlp(hidden))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    local = batch // world

    def step(i):
        index = torch.arange(i * local, (i + 1) * local) % len(x)
        optimizer.zero_grad()
        loss_fn(model(x[index]), y[index]).backward()
        optimizer.step()

    def timed(sync: bool) -> float:
        dist.barrier()
        started = time.perf_counter()
        for i in range(steps):
            if sync:
                step(i)
            else:
                with model.no_sync():
                    step(i)
        dist.barrier()
        return (time.perf_counter() - started) / steps

    step(0)  # warm-up: buckets, threads
    synced, local_only = timed(True), timed(False)
    dist.destroy_process_group()
    return {"aggregation_ms": 1000.0 * (synced - local_only), "samples_per_s": batch / synced}


def ddp_run(folder: str, hidden: int, steps: int) -> dict:
    import numpy as np
    from pyspark.ml.torch.distributor import TorchDistributor

    rows = [row for p in range(WORKERS) for row in _rows(p)]
    np.save(os.path.join(folder, "x.npy"), np.array([r[0] for r in rows], dtype=np.float32))
    np.save(os.path.join(folder, "y.npy"), np.array([r[1] for r in rows], dtype=np.int64))
    return TorchDistributor(num_processes=WORKERS, local_mode=False, use_gpu=False).run(
        _ddp_train, folder, hidden, steps, GLOBAL_BATCH)


def driver(out: str, folder: str, repeats: int, quick: bool) -> None:
    from zoo import init_spark

    # The driver holds the pickled model (broadcast) and the trained weights (result): 100 MB each at 25M.
    spark = init_spark(os.environ["MASTER"], cores=CORES, num_executors=HOSTS, env_archive=None, driver_memory="3g",
                       app_name="zoo-bench-multi-host")
    spark.sparkContext.setLogLevel("WARN")
    models = MODELS[:1] if quick else MODELS
    results = {}
    for name, hidden, steps, ddp_steps in models:
        runs = {c: [] for c in CONTENDERS}
        for _ in range(repeats):
            runs["flat gloo"].append(zoo_run(spark, hidden, steps, "gloo", "none"))
            runs["hierarchical"].append(zoo_run(spark, hidden, steps, "auto", "none"))
            runs["hierarchical + bf16"].append(zoo_run(spark, hidden, steps, "auto", "bf16"))
            runs["DDP (TorchDistributor)"].append(ddp_run(folder, hidden, ddp_steps))
        results[name] = {"params": parameters(hidden), "runs": runs}
        print(f"{name}: done", file=sys.stderr, flush=True)
    spark.stop()
    with open(out, "w") as f:
        json.dump(results, f)


# ---------------------------------------------------------------------------- on this machine
def report(results: dict, repeats: int) -> None:
    print(f"\nGradient aggregation across 2 hosts x 2 workers, links shaped to 1 Gbit/s, global batch "
          f"{GLOBAL_BATCH}, SGD momentum; best of {repeats} run(s), [spread]")
    header = (f"{'model':>5} {'params':>11} | {'lower bound':>11} | " + " | ".join(f"{c:>26}" for c in CONTENDERS)
              + " | hier vs flat | hier vs DDP")
    print(header)
    print("-" * len(header))
    for name, entry in results.items():
        bound = lower_bound_ms(entry["params"])
        best = {c: min(r["aggregation_ms"] for r in runs) for c, runs in entry["runs"].items()}
        worst = {c: max(r["aggregation_ms"] for r in runs) for c, runs in entry["runs"].items()}
        cells = [f"{best[c]:7.0f} ms {best[c] / bound:4.2f}x [{worst[c] - best[c]:4.0f}]" for c in CONTENDERS]
        print(f"{name:>5} {entry['params']:>11,} | {bound:8.0f} ms | " + " | ".join(f"{c:>26}" for c in cells)
              + f" | {best['flat gloo'] / best['hierarchical']:11.2f}x | "
              f"{best['DDP (TorchDistributor)'] / best['hierarchical']:10.2f}x")
    print("\nSamples/s end to end (steady state, best run):")
    print(f"{'model':>5} | " + " | ".join(f"{c:>22}" for c in CONTENDERS))
    for name, entry in results.items():
        rates = [max(r["samples_per_s"] for r in entry["runs"][c]) for c in CONTENDERS]
        print(f"{name:>5} | " + " | ".join(f"{rate:22.0f}" for rate in rates))
    topologies = {r["topology"] for entry in results.values() for c in CONTENDERS[:3] for r in entry["runs"][c]}
    print("\nTopologies Zoo chose: " + "; ".join(sorted(topologies)))
    print("Aggregation ms (x the lower bound) [max - min over runs]. Targets: hierarchical <= 1.3x the "
          "lower bound at 25M; >= 1.5x faster than flat gloo and than DDP.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the 1M model only, one run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--driver", nargs=2, metavar=("OUT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    if args.driver:
        driver(*args.driver, repeats=repeats, quick=args.quick)
        return

    from zoo.devcluster import DevCluster, namespaces_unavailable_reason

    reason = namespaces_unavailable_reason()
    if reason:
        sys.exit(f"bench/multi_host.py needs the dev cluster: {reason}")
    with DevCluster(name="bench", hosts=HOSTS, cores=CORES, memory="3g", bandwidth=BANDWIDTH) as cluster:
        out = os.path.join(cluster.shared_dir, "results.json")
        log_path = os.path.join(cluster.logs_dir, "bench-driver.log")
        started = time.time()
        with open(log_path, "wb") as log:
            proc = cluster.edge.popen([sys.executable, os.path.abspath(__file__), "--driver", out, cluster.shared_dir,
                                       "--repeats", str(repeats)] + (["--quick"] if args.quick else []),
                                      stdout=log, stderr=subprocess.STDOUT)
            code = proc.wait(timeout=3600)
        if code != 0 or not os.path.exists(out):
            with open(log_path, errors="replace") as log:
                sys.exit(f"The benchmark driver failed (exit {code}); the end of its log:\n{log.read()[-5000:]}")
        with open(out) as f:
            results = json.load(f)
    report(results, repeats)
    print(f"(whole run {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
