"""A Spark driver for the dev-cluster tests, run on the edge host: it answers each command line on
stdin with one line ``PROBE <json>`` on stdout, so a test can drive one application step by step.

    tasks N [EXCLUDED_IDS]  a barrier stage of N tasks, once executors on every worker host are
                            registered (none of the comma-separated EXCLUDED_IDS among them);
                            each task reports its executor's address, the address its own
                            network namespace has, and its executor JVM's pid
    gloo N                  a barrier stage of N tasks that joins one torch.distributed gloo group
                            across the tasks' hosts and all-reduces rank + 1
    quit                    stop
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.request

from pyspark import BarrierTaskContext
from pyspark.sql import SparkSession

EXECUTOR_WAIT_S = 180


def own_address(peer: str) -> str:
    """The address this process's namespace uses towards `peer` (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((peer, 9))
        return sock.getsockname()[0]


def executor_jvm_pid() -> int | None:
    """The executor JVM above this Python worker (its daemon's parent)."""
    pid = os.getppid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"CoarseGrainedExecutorBackend" in handle.read():
                return pid
        with open(f"/proc/{pid}/stat") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
    return None


def active_executors(spark) -> dict[str, str]:
    """executor id -> host of the application's active executors (from the driver's REST API)."""
    url = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{spark.sparkContext.applicationId}/executors"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return {e["id"]: e["hostPort"].rsplit(":", 1)[0] for e in json.load(reply) if e["id"] != "driver" and e["isActive"]}


def wait_for_executors(spark, hosts: int, excluded: set[str]) -> dict[str, str]:
    deadline = time.monotonic() + EXECUTOR_WAIT_S
    while time.monotonic() < deadline:
        executors = active_executors(spark)
        if len(set(executors.values())) >= hosts and not excluded & set(executors):
            return executors
        time.sleep(0.2)
    raise TimeoutError(f"executors on {hosts} hosts (not {sorted(excluded)}) did not register: {executors}")


def tasks(spark, n: int, driver_ip: str) -> list[dict]:
    def probe(_):
        context = BarrierTaskContext.get()
        rank = context.partitionId()
        yield {"rank": rank, "executor_address": context.getTaskInfos()[rank].address,
               "own_ip": own_address(driver_ip), "jvm_pid": executor_jvm_pid(),
               "gloo_ifname": os.environ.get("GLOO_SOCKET_IFNAME")}

    return spark.sparkContext.parallelize(range(n), n).barrier().mapPartitions(probe).collect()


def gloo(spark, n: int, driver_ip: str) -> list[dict]:
    def all_reduce(_):
        import datetime

        import torch
        import torch.distributed as dist

        context = BarrierTaskContext.get()
        rank = context.partitionId()
        first = context.getTaskInfos()[0].address.rsplit(":", 1)[0]
        port = ""
        if rank == 0:
            with socket.socket() as sock:
                sock.bind((first, 0))
                port = str(sock.getsockname()[1])
        port = int(context.allGather(port)[0])
        dist.init_process_group("gloo", init_method=f"tcp://{first}:{port}", rank=rank, world_size=n,
                                timeout=datetime.timedelta(seconds=60))
        tensor = torch.tensor([float(rank + 1)])
        dist.all_reduce(tensor)
        dist.destroy_process_group()
        yield {"rank": rank, "sum": tensor.item(), "own_ip": own_address(driver_ip)}

    return spark.sparkContext.parallelize(range(n), n).barrier().mapPartitions(all_reduce).collect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, required=True, help="worker hosts whose executors every job waits for")
    args = parser.parse_args()
    spark = SparkSession.builder.appName("zoo-dev-cluster-probe").getOrCreate()  # master: SPARK_CONF_DIR
    spark.sparkContext.setLogLevel("WARN")
    driver_ip = os.environ["SPARK_LOCAL_IP"]
    print("PROBE " + json.dumps({"ready": True, "master": spark.sparkContext.master}), flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "quit":
            break
        n = int(rest[0])
        executors = wait_for_executors(spark, args.hosts, set(rest[1].split(",")) if len(rest) > 1 else set())
        result = tasks(spark, n, driver_ip) if command == "tasks" else gloo(spark, n, driver_ip)
        print("PROBE " + json.dumps({"executors": executors, "tasks": result}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
