"""Memory of a fit: PSS per process (the JVM, the driver, each Python worker) against the raw data.

Builds N x 64 float32 features (array<float>) and a label on the JVM (no Python copy of the data
on the driver), caches the DataFrame in memory (as MEMORY_ONLY: the fit then reads it from the
JVM heap), and fits a linear model for one epoch on local[2] with 2 workers. A thread samples
the proportional set size (PSS, /proc/<pid>/smaps_rollup: shared pages split between the
processes sharing them) of the JVM and every Python process under it every 50 ms, so the table
shows, per process: before the fit (data cached, workers warm), the peak during the fit, right
after the fit returned, and idle 22 s later (two of the JVM's periodic-collection intervals, see
zoo.cluster.HEAP_RETURN_FLAGS), in MiB, with the raw data size (N x 64 x 4 bytes) as the yardstick.

    .venv/bin/python bench/memory.py [--rows 2000000] [--caching DISK]
    .venv/bin/python bench/memory.py --limit-mib 1400

--caching DISK: each worker streams its samples into a file on local disk (cachingSample="DISK").
--limit-mib L: instead, the larger-than-memory row: on local-cluster[1,1,1024] with
spark.executor.pyspark.memory=L (which Spark enforces as the Python worker's address-space
limit), one worker fits 3 x L of data with cachingSample="DISK" and then with "MEMORY"
(tests/engine/memory_limit_job.py); prints each fit's outcome, time and the worker's peaks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import psutil

MIB = 1 << 20
WIDTH = 64
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT_JOB = os.path.join(CHECKOUT, "tests", "engine", "memory_limit_job.py")
#: How long "idle" waits after the fit: two of the JVM's periodic-collection intervals and a margin.
IDLE_S = 22


def pss(pid: int) -> int:
    """Proportional set size of `pid` in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def processes(jvm_pid: int) -> dict[int, str]:
    """pid -> role of the driver, the JVM and the Python processes the JVM started."""
    roles = {os.getpid(): "driver (python)", jvm_pid: "jvm"}
    for child in psutil.Process(jvm_pid).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        roles[child.pid] = "pyspark daemon" if "pyspark.daemon" in command and child.ppid() == jvm_pid \
            else "python worker"
    return roles


class Sampler(threading.Thread):
    """Samples the PSS of the JVM's process tree until stopped; keeps each process's peak and the
    peak of their sum."""

    def __init__(self, jvm_pid: int, interval_s: float = 0.05):
        super().__init__(daemon=True)
        self.jvm_pid, self.interval_s = jvm_pid, interval_s
        self.peaks: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.peak_total = 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            roles = processes(self.jvm_pid)
            self.roles.update(roles)
            sizes = {pid: pss(pid) for pid in roles}
            for pid, size in sizes.items():
                self.peaks[pid] = max(self.peaks.get(pid, 0), size)
            self.peak_total = max(self.peak_total, sum(sizes.values()))
            self._stop_event.wait(self.interval_s)

    def stop(self):
        self._stop_event.set()
        self.join()


def snapshot(jvm_pid: int) -> dict[int, tuple[str, int]]:
    return {pid: (role, pss(pid)) for pid, role in processes(jvm_pid).items()}


def under_limit(limit_mib: int) -> None:
    """Fit 3 x `limit_mib` of data with one Python worker limited to `limit_mib`, on disk then in memory."""
    rows = 3 * limit_mib * MIB // (WIDTH * 4)
    done = subprocess.run([sys.executable, LIMIT_JOB, "--rows", str(rows), "--limit-mb", str(limit_mib),
                           "--caching", "DISK", "MEMORY"], capture_output=True, text=True, cwd=CHECKOUT,
                          env={**os.environ, "PYTHONPATH": CHECKOUT})
    if done.returncode:
        sys.exit(done.stderr[-4000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{rows:,} x {WIDTH} float32 ({result['data_mib']:,.0f} MiB, {result['data_mib'] / limit_mib:.1f}x) on one "
          f"Python worker limited to {limit_mib:,} MiB (spark.executor.pyspark.memory)")
    print(f"{'cachingSample':<14} {'outcome':<40} {'seconds':>8} {'VmPeak MiB':>11} {'VmHWM MiB':>10}")
    for fit in result["fits"]:
        outcome = f"trained, loss {fit['loss']:.2e}" if "error" not in fit else fit["error"].splitlines()[-1][:40]
        peaks = fit.get("peak_kb", {})
        print(f"{fit['caching']:<14} {outcome:<40} {fit['seconds']:>8.1f} {peaks.get('VmPeak', 0) / 1024:>11,.0f} "
              f"{peaks.get('VmHWM', 0) / 1024:>10,.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--caching", choices=("MEMORY", "DISK"), default="MEMORY", help="cachingSample")
    parser.add_argument("--limit-mib", type=int, default=0,
                        help="instead: fit 3x this spark.executor.pyspark.memory on disk and in memory")
    args = parser.parse_args()
    if args.limit_mib:
        under_limit(args.limit_mib)
        return

    import torch
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from zoo import init_spark
    from zoo.engine import MaxEpoch
    from zoo.nnframes import NNEstimator
    from zoo.warm_up import wait_for_warm_up

    spark = init_spark("local[2]", conf={"spark.driver.memory": "4g", "spark.sql.shuffle.partitions": "2"})
    jvm_pid = int(spark.sparkContext._gateway.jvm.java.lang.ProcessHandle.current().pid())
    features = F.transform(F.array_repeat(F.lit(0), WIDTH), lambda _, i: F.rand(seed=1) - 0.5).cast("array<float>")
    df = (spark.range(args.rows, numPartitions=2).select(features.alias("features"), F.rand(seed=2).alias("label"))
          .persist(StorageLevel.MEMORY_ONLY))
    df.count()
    wait_for_warm_up()
    raw = args.rows * WIDTH * 4
    estimator = NNEstimator(model=torch.nn.Linear(WIDTH, 1), criterion=torch.nn.MSELoss(), batchSize=8192, learningRate=1e-3,
                            numWorkers=2, endWhen=MaxEpoch(1), cachingSample=args.caching).setShowProgress(False)

    before = snapshot(jvm_pid)
    sampler = Sampler(jvm_pid)
    sampler.start()
    started = time.time()
    estimator.fit(df)
    took = time.time() - started
    sampler.stop()
    after = snapshot(jvm_pid)
    time.sleep(IDLE_S)  # the JVM's periodic collection runs only after an interval without one
    idle = snapshot(jvm_pid)

    print(f"\nfit of {args.rows:,} x {WIDTH} float32 (raw {raw / MIB:,.0f} MiB), cachingSample={args.caching}, "
          f"{took:.1f} s; PSS in MiB")
    print(f"{'process':<18} {'pid':>8} {'before':>9} {'peak':>9} {'after':>9} {'idle':>9} {'peak/raw':>9}")
    pids = sorted(set(before) | set(after) | set(sampler.peaks), key=lambda p: (sampler.roles.get(p, ""), p))
    for pid in pids:
        role = (before.get(pid) or after.get(pid) or (sampler.roles.get(pid, "?"), 0))[0]
        b, a, peak = before.get(pid, ("", 0))[1], after.get(pid, ("", 0))[1], sampler.peaks.get(pid, 0)
        i = idle.get(pid, ("", 0))[1]
        print(f"{role:<18} {pid:>8} {b / MIB:>9,.0f} {peak / MIB:>9,.0f} {a / MIB:>9,.0f} {i / MIB:>9,.0f} "
              f"{peak / raw:>9.2f}")
    total_before = sum(size for _, size in before.values())
    total_after = sum(size for _, size in after.values())
    total_idle = sum(size for _, size in idle.values())
    print(f"{'all (sum)':<18} {'':>8} {total_before / MIB:>9,.0f} {sampler.peak_total / MIB:>9,.0f} "
          f"{total_after / MIB:>9,.0f} {total_idle / MIB:>9,.0f} {sampler.peak_total / raw:>9.2f}")
    print(f"the fit's growth: peak {(sampler.peak_total - total_before) / raw:.2f}x raw, "
          f"after {(total_after - total_before) / raw:.2f}x raw, idle {(total_idle - total_before) / raw:.2f}x raw")
    jvm_growth = idle[jvm_pid][1] - before[jvm_pid][1]
    print(f"jvm idle after the fit against before it: {jvm_growth / MIB:+,.0f} MiB")
    workers = [pid for pid in pids if (before.get(pid) or after.get(pid) or ("",))[0] == "python worker"]
    grown = sum(idle.get(pid, ("", 0))[1] - before.get(pid, ("", 0))[1] for pid in workers)
    print(f"python workers idle after the fit against before it: {grown / MIB:+,.0f} MiB "
          f"({grown / raw:+.2f}x raw; workers that were not there before count from 0)")
    spark.stop()


if __name__ == "__main__":
    main()
