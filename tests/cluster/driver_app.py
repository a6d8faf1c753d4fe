"""The driver program of the cluster tests; runs in its own process (one SparkContext per process).

Run directly, it calls init_spark(cluster_mode="standalone", ...) with the archive the test packed;
run by ``zoo-submit`` it calls plain init_spark() and takes everything from the submission.
It records what the executors run, fits an NNClassifier that checkpoints every epoch (with
``--kill``, while SIGKILLing the executor JVM of rank 1 once the first checkpoint exists) and
transforms with the fitted model. Everything it observes goes to the JSON file given by
``--out``; the tests assert on that.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback

import numpy as np
import torch

ROWS, FEATURES, BATCH, EPOCHS = 480, 4, 32, 4
PROBE_ROUNDS = 10


class Pace(torch.nn.Module):
    """Identity in forward; on the executors it writes its pid once per (rank, task attempt) and,
    while training, sleeps a little per step so that an epoch lasts long enough to be interrupted."""

    def __init__(self, marker_dir: str, delay_s: float):
        super().__init__()
        self.marker_dir, self.delay_s = marker_dir, delay_s

    def forward(self, x):
        from pyspark import TaskContext

        ctx = TaskContext.get()
        if ctx is not None and torch.is_grad_enabled():
            path = os.path.join(self.marker_dir, f"rank{ctx.partitionId()}-task{ctx.taskAttemptId()}.pid")
            if not os.path.exists(path):
                with open(path + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.replace(path + ".tmp", path)
            time.sleep(self.delay_s)
        return x


def make_net(marker_dir: str, delay_s: float):
    torch.manual_seed(0)
    return torch.nn.Sequential(Pace(marker_dir, delay_s), torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 1))


def dataset(spark):
    """A separable binary problem in exactly two partitions (one per worker, no repartition).

    Built from a local collection, so each partition holds the same rows in the same order on
    every run and every stage attempt (rows read through a shuffle may arrive in another order
    when a stage is retried, which would change the training trajectory, not its quality).
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES))
    y = (x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] > 0).astype(float)
    rows = [(row.tolist(), float(t)) for row, t in zip(x, y)]
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), "features array<double>, label double")


def executor_facts(spark) -> tuple[list[dict], int]:
    """What each executor's Python worker runs (interpreter, packages, cwd, thread settings), one
    entry per executor, and how many probe tasks failed."""

    def probe(_):
        import os
        import sys

        import torch as executor_torch

        import zoo

        yield {"executable": sys.executable, "prefix": sys.prefix, "cwd": os.getcwd(),
               "realpath_prefix": os.path.realpath(sys.prefix), "zoo_file": zoo.__file__,
               "torch_file": executor_torch.__file__, "torch_threads": executor_torch.get_num_threads(),
               "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_BLOCKTIME",
                                                       "KMP_AFFINITY", "PYSPARK_PYTHON")},
               "pid": os.getpid()}

    from zoo.warm_up import wait_for_warm_up

    # While init_spark's warm-up task still runs on one executor, every probe task would land on
    # the other one.
    wait_for_warm_up(timeout_s=180)
    sc = spark.sparkContext
    sc.setJobGroup("zoo-probe", "what executors run")
    seen: dict[str, dict] = {}
    for _ in range(PROBE_ROUNDS):  # until a task has run on each executor (they may start at different times)
        for fact in sc.parallelize(range(2), 2).mapPartitions(probe).collect():
            seen.setdefault(fact["cwd"], fact)
        if len(seen) >= 2:
            break
    tracker = sc.statusTracker()
    failed = sum(tracker.getStageInfo(stage).numFailedTasks for job in tracker.getJobIdsForGroup("zoo-probe")
                 for stage in tracker.getJobInfo(job).stageIds)
    sc.setLocalProperty("spark.jobGroup.id", None)
    return list(seen.values()), failed


def estimator(marker_dir: str, checkpoint_dir: str, delay_s: float):
    from zoo.engine import EveryEpoch
    from zoo.nnframes import NNClassifier

    clf = NNClassifier(model=make_net(marker_dir, delay_s), criterion=torch.nn.BCEWithLogitsLoss(),
                       batchSize=BATCH, maxEpoch=EPOCHS, learningRate=0.3, numWorkers=2)
    return clf.setShowProgress(False).setCheckpoint(checkpoint_dir, EveryEpoch())


def accuracy(model, df) -> float:
    return model.transform(df).selectExpr("avg(cast(prediction = label as double))").first()[0]


def _ancestors(pid: int):
    while pid > 1:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return
        yield pid, cmdline
        pid = parent


def kill_executor_after_first_checkpoint(marker_dir: str, checkpoint_dir: str, record: dict) -> threading.Thread:
    """SIGKILL the executor JVM running rank 1 as soon as a checkpoint exists (in a thread)."""

    def watch():
        deadline = time.time() + 240
        while time.time() < deadline:
            markers = sorted(n for n in os.listdir(marker_dir) if n.startswith("rank1-") and n.endswith(".pid"))
            marker = os.path.join(marker_dir, markers[0]) if markers else ""
            saved = sorted(n for n in os.listdir(checkpoint_dir) if n.startswith("checkpoint-")
                           and os.path.exists(os.path.join(checkpoint_dir, n, "meta.json"))) \
                if os.path.isdir(checkpoint_dir) else []
            if saved and marker:
                with open(marker) as f:
                    python_pid = int(f.read())
                for pid, cmdline in _ancestors(python_pid):
                    if "CoarseGrainedExecutorBackend" in cmdline:
                        os.kill(pid, signal.SIGKILL)
                        record.update(killed_pid=pid, python_pid=python_pid, checkpoint_at_kill=saved[-1],
                                      killed_at=time.time())
                        return
                record["kill_error"] = f"no executor JVM above pid {python_pid}"
                return
            time.sleep(0.05)
        record["kill_error"] = "no checkpoint appeared"

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", required=True, help="a directory for checkpoints and markers")
    parser.add_argument("--master", help="standalone master URL; absent under zoo-submit")
    parser.add_argument("--archive", help="the packed environment archive; absent under zoo-submit")
    parser.add_argument("--py-files", default="")
    parser.add_argument("--kill", action="store_true", help="lose an executor after the first checkpoint")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each training step sleeps")
    args = parser.parse_args()

    from zoo import init_spark
    from zoo.packaging import PackedEnv

    result: dict = {}
    started = time.time()
    if args.master:
        env = PackedEnv(args.archive, "venv", py_files=tuple(p for p in args.py_files.split(",") if p))
        spark = init_spark(cluster_mode="standalone", master=args.master, num_executors=2, cores=1, memory="1g",
                           env_archive=env, app_name="zoo-cluster-test")
    else:
        spark = init_spark()
    result.update(startup_s=time.time() - started, master=spark.sparkContext.master,
                  python_exec=spark.sparkContext.pythonExec, conf=dict(spark.sparkContext.getConf().getAll()))
    try:
        result["executors"], result["probe_failed_tasks"] = executor_facts(spark)
        df = dataset(spark)
        marker_dir, checkpoint_dir = os.path.join(args.work, "markers"), os.path.join(args.work, "checkpoints")
        os.makedirs(marker_dir, exist_ok=True)
        record: dict = {}
        watcher = kill_executor_after_first_checkpoint(marker_dir, checkpoint_dir, record) if args.kill else None
        t0 = time.time()
        try:
            model = estimator(marker_dir, checkpoint_dir, args.delay).fit(df)
            record.update(history=model.history, fit_s=time.time() - t0,
                          params=[p.detach().numpy().ravel().tolist() for p in model.model.parameters()])
            t0 = time.time()
            scored = model.transform(df)
            record.update(rows=scored.count(), accuracy=accuracy(model, df), transform_s=time.time() - t0)
        except Exception as exc:  # recorded for the test to report
            record["error"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:]
        if watcher is not None:
            watcher.join(timeout=1)
        record["task_markers"] = sorted(os.listdir(marker_dir))
        result["fit"] = record
    finally:
        with open(args.out, "w") as f:
            json.dump(result, f)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
