"""A real Spark standalone cluster on loopback: one master and N workers, each its own JVM.

Started with pyspark's own launcher (``bin/spark-class``), as ``sbin/start-master.sh`` would,
so executors are separate processes launched by the workers, exactly as on a real cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request

from zoo.devcluster.processes import free_port, kill_groups
from zoo.devcluster.spark import MASTER_CLASS, SPARK_CLASS, SPARK_HOME, WORKER_CLASS

STARTUP_TIMEOUT_S = 90


class StandaloneCluster:
    """Master + workers bound to 127.0.0.1; `stop` kills every process they started.

    Args:
        root: directory for logs; `work_dir` holds the executors' working directories.
        work_dir: where workers put executors' working directories (shipped archives unpack there).
        workers, cores, memory: the workers and what each offers.
    """

    def __init__(self, root: str, work_dir: str, workers: int = 2, cores: int = 1, memory: str = "1g"):
        self.root, self.work_dir = root, work_dir
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port, self.webui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self._procs: list[subprocess.Popen] = []

    def _env(self) -> dict:
        env = dict(os.environ, SPARK_HOME=SPARK_HOME, SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1",
                   SPARK_DAEMON_MEMORY="512m")
        # Executors get their Python only from what the driver ships: no venv leaks from here.
        for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "VIRTUAL_ENV", "PYTHONPATH"):
            env.pop(name, None)
        return env

    def _launch(self, name: str, args: list[str]) -> None:
        log = open(os.path.join(self.root, f"{name}.log"), "w")
        # Own session: stop() can kill the daemon with every executor and Python worker under it.
        proc = subprocess.Popen([SPARK_CLASS] + args, stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                                start_new_session=True, cwd=self.root)
        self._procs.append(proc)

    def state(self) -> dict:
        """The master's JSON status (workers, applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json/", timeout=5) as reply:
            return json.load(reply)

    def alive_workers(self) -> int:
        try:
            return sum(1 for w in self.state()["workers"] if w["state"] == "ALIVE")
        except OSError:
            return 0

    def start(self) -> "StandaloneCluster":
        os.makedirs(self.work_dir, exist_ok=True)
        self._launch("master", [MASTER_CLASS, "--host", "127.0.0.1",
                                "--port", str(self.port), "--webui-port", str(self.webui_port)])
        for i in range(self.workers):
            self._launch(f"worker-{i}", [WORKER_CLASS, self.url, "--host", "127.0.0.1",
                                         "--cores", str(self.cores), "--memory", self.memory,
                                         "--webui-port", str(free_port()), "--work-dir", self.work_dir])
        deadline = time.time() + STARTUP_TIMEOUT_S
        while self.alive_workers() < self.workers:
            if time.time() > deadline or any(p.poll() is not None for p in self._procs):
                self.stop()
                raise RuntimeError(f"The standalone cluster did not start; see the logs in {self.root}")
            time.sleep(0.5)
        return self

    def executor_dirs(self) -> list[str]:
        """Working directories of every executor launched so far (``<work>/<app>/<executor>``)."""
        return sorted(os.path.join(self.work_dir, app, ex) for app in os.listdir(self.work_dir)
                      for ex in os.listdir(os.path.join(self.work_dir, app)))

    def clean_work_dir(self) -> None:
        """Remove finished applications' executor directories (each holds an unpacked env),
        keeping each executor's log as ``<root>/<app>-<executor>.stderr``."""
        for directory in self.executor_dirs():
            log = os.path.join(directory, "stderr")
            if os.path.exists(log):
                app, executor = directory.split(os.sep)[-2:]
                shutil.copy(log, os.path.join(self.root, f"{app}-{executor}.stderr"))
        for name in os.listdir(self.work_dir):
            shutil.rmtree(os.path.join(self.work_dir, name), ignore_errors=True)

    def stop(self) -> None:
        # SIGTERM, then SIGKILL to whatever is left of each group: executors, Python workers.
        kill_groups([proc.pid for proc in reversed(self._procs)], timeout_s=15)
        for proc in self._procs:
            proc.wait()
        self._procs.clear()
