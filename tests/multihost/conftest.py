"""Fixtures of the multi-host tests: one dev cluster for the whole session (an edge host and two
worker hosts of 2 cores and 2 GB each), and a Spark driver on its edge host.

Files a test shares with the hosts go in ``dev_cluster.shared_dir``: pytest's ``tmp_path`` is
under /tmp, which every host has its own of.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading

import pytest

from zoo.devcluster import DevCluster, namespaces_unavailable_reason
from zoo.devcluster.processes import kill_groups

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "spark_probe.py")
#: The session cluster: 2 worker hosts x 2 cores, executors of 2 GB (room for a small torch fit).
HOSTS, CORES, MEMORY = 2, 2, "2g"
#: How long one probe command may take (the first waits for executors to start).
PROBE_TIMEOUT_S = 240


@pytest.fixture(scope="package")
def dev_cluster():
    """A running DevCluster named ``t<pid>``, torn down after the multi-host tests even if one fails;
    its `up` first sweeps what crashed or killed runs left. Skips where namespaces cannot be made."""
    reason = namespaces_unavailable_reason()
    if reason:
        pytest.skip(f"The multi-host tests need a dev cluster: {reason}")
    cluster = DevCluster(name=f"t{os.getpid()}", hosts=HOSTS, cores=CORES, memory=MEMORY)
    try:
        yield cluster.up()
    finally:
        cluster.down()


class EdgeDriver:
    """A Spark driver program on the edge host (tests/multihost/spark_probe.py unless `script` says
    otherwise) that answers each command line on stdin with one ``PROBE <json>`` line; `ask` sends
    it one command and returns its answer. Its stderr (Spark's log) goes to the cluster's logs."""

    def __init__(self, cluster: DevCluster, script: str = PROBE, args: list[str] | None = None):
        name = os.path.splitext(os.path.basename(script))[0]
        self.log = os.path.join(cluster.logs_dir, f"{name}-driver-{os.getpid()}.log")
        args = ["--hosts", str(len(cluster.workers))] if args is None else args
        with open(self.log, "wb") as log:
            self.proc = cluster.edge.popen([sys.executable, script, *args],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.hello = self._answer()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("PROBE "):
                self._lines.put(json.loads(line[len("PROBE "):]))
        self._lines.put(None)  # the driver exited

    def _answer(self, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
        try:
            answer = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            answer = None
        if answer is None:
            with open(self.log, errors="replace") as log:
                pytest.fail(f"The probe driver gave no answer (exit {self.proc.poll()}); its log:\n{log.read()[-6000:]}")
        return answer

    def ask(self, command: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
        """Send `command` (see the driver script) and wait up to `timeout_s` for the answer."""
        self.send(command)
        return self.next_answer(timeout_s)

    def send(self, command: str) -> None:
        """Send `command` without waiting (for commands that answer more than once)."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def next_answer(self, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
        """The driver's next answer line (waiting up to `timeout_s`)."""
        return self._answer(timeout_s)

    def close(self) -> None:
        """Stop the driver (its application ends and the executors with it)."""
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            kill_groups([self.proc.pid], timeout_s=0)
            self.proc.wait()


@pytest.fixture(scope="module")
def edge_driver(dev_cluster):
    """A Spark application driven from the edge host for the tests of one module."""
    driver = EdgeDriver(dev_cluster)
    try:
        yield driver
    finally:
        driver.close()
