"""The Spark standalone daemons of a dev cluster, started with pyspark's own launcher.

The master runs on the edge host, one worker on each worker host; each is ``bin/spark-class``
in the foreground (``SPARK_NO_DAEMONIZE``), bound to its host's address, with its work dir and
local dirs in the host's private /tmp. Executors are JVMs the workers fork on their own host.
"""

from __future__ import annotations

import json
import os
import subprocess

import pyspark

from zoo.devcluster.hosts import Host
from zoo.devcluster.processes import descendants

SPARK_HOME = os.path.dirname(pyspark.__file__)
SPARK_CLASS = os.path.join(SPARK_HOME, "bin", "spark-class")
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
EXECUTOR_CLASS = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
#: Each host has its own ports, so the daemons use Spark's usual ones.
MASTER_PORT = 7077
MASTER_WEBUI_PORT = 8080
WORKER_WEBUI_PORT = 8081
#: Where workers put executors' working directories and Spark its scratch files (host-private).
WORK_DIR = "/tmp/spark-work"
LOCAL_DIRS = "/tmp/spark-local"
#: Heap of the master and worker daemons (executors get ``spark.executor.memory``).
DAEMON_MEMORY = "512m"
#: Variables a driver on the edge reads that daemons must not (their spark-defaults are Spark's own).
DRIVER_ONLY_VARIABLES = ("MASTER", "SPARK_CONF_DIR")


def master_url(edge_ip: str) -> str:
    """The master's URL for drivers and workers."""
    return f"spark://{edge_ip}:{MASTER_PORT}"


def _daemon_env(host: Host) -> dict[str, str]:
    env = {key: value for key, value in host.environ().items() if key not in DRIVER_ONLY_VARIABLES}
    return {**env, "SPARK_HOME": SPARK_HOME, "SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_MEMORY": DAEMON_MEMORY}


def _launch(host: Host, args: list[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        # spark-class execs java: the Popen pid is the daemon, leader of its own process group.
        return subprocess.Popen(host.command([SPARK_CLASS, *args], cwd="/"), env=_daemon_env(host),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def start_master(edge: Host, log_path: str) -> subprocess.Popen:
    """Start the standalone master on `edge` (RPC on `MASTER_PORT`, web UI and JSON on `MASTER_WEBUI_PORT`)."""
    return _launch(edge, [MASTER_CLASS, "--host", edge.ip, "--port", str(MASTER_PORT),
                          "--webui-port", str(MASTER_WEBUI_PORT)], log_path)


def start_worker(host: Host, master: str, cores: int, memory: str, log_path: str) -> subprocess.Popen:
    """Start a standalone worker on `host` offering `cores` and `memory` to executors of `master`."""
    return _launch(host, [WORKER_CLASS, master, "--host", host.ip, "--cores", str(cores), "--memory", memory,
                          "--webui-port", str(WORKER_WEBUI_PORT), "--work-dir", WORK_DIR], log_path)


def spark_defaults(edge_ip: str, executor_memory: str) -> str:
    """The spark-defaults.conf of drivers on the edge host: the master, the driver's address (so
    executors connect back to the edge, not to a hostname), and executor memory."""
    settings = {"spark.master": master_url(edge_ip), "spark.driver.host": edge_ip,
                "spark.driver.bindAddress": edge_ip, "spark.executor.memory": executor_memory}
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def master_state(edge: Host, timeout: float = 5.0) -> dict:
    """The master's JSON status (``/json/``: workers, applications), fetched inside the edge host.

    Raises:
        OSError: the master's web UI does not answer (not up yet, or gone), or answers with an
            empty or partial status while it starts.
    """
    status, body = edge.http(MASTER_WEBUI_PORT, "/json/", timeout=timeout)
    if status != 200:
        raise OSError(f"the master's web UI on {edge.ip}:{MASTER_WEBUI_PORT} answered HTTP {status}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise OSError(f"the master's web UI on {edge.ip}:{MASTER_WEBUI_PORT} answered a status that is not "
                      f"JSON yet ({len(body)} bytes)") from exc


def alive_workers(state: dict) -> list[dict]:
    """The ALIVE workers of a `master_state`: host, port, cores, cores used, memory (MB)."""
    return [{key: worker.get(key) for key in ("id", "host", "port", "cores", "coresused", "memory", "state")}
            for worker in state.get("workers", []) if worker.get("state") == "ALIVE"]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def executors(host: Host) -> list[dict]:
    """The executor JVMs running on `host`: pid, executor id and application id of each."""
    found = []
    for pid, argv in host.processes().items():
        if EXECUTOR_CLASS in argv:
            found.append({"pid": pid, "executor_id": _option(argv, "--executor-id"), "app_id": _option(argv, "--app-id")})
    return sorted(found, key=lambda e: e["pid"])


def executor_tree(host: Host) -> dict[int, list[str]]:
    """pid -> argv of `host`'s executor JVMs and every process under them (their Python workers)."""
    processes = host.processes()
    jvms = [pid for pid, argv in processes.items() if EXECUTOR_CLASS in argv]
    return {pid: processes.get(pid) or [] for pid in [*jvms, *descendants(jvms)] if pid in processes}


def worker_pids(host: Host) -> list[int]:
    """The standalone worker daemons running on `host`."""
    return sorted(pid for pid, argv in host.processes().items() if WORKER_CLASS in argv)
