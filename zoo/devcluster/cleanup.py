"""Tearing a dev cluster down, from its name alone, and sweeping up what crashed runs left.

Teardown needs no live Python object: it finds the cluster's namespaces by name
(``zoo-dc-<name>-*``), kills every process in them, deletes them (their veth pairs and the bridge
go with them) and removes the cluster's directory. So it works from `DevCluster.down`, from the
CLI, from the reaper a test's cluster starts (it tears down when the test process dies, even by
SIGKILL), and from the sweep the next `up` runs.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import sys

from zoo.devcluster import network, state
from zoo.devcluster.processes import alive, cmdline, kill_pids

logger = logging.getLogger(__name__)


def cluster_netns(name: str) -> list[str]:
    """The namespaces of cluster `name` that exist now, its hosts first and its switch last."""
    found = [ns for ns in network.list_netns() if network.cluster_of(ns) == name]
    return sorted(found, key=lambda ns: ns == network.netns_name(name, network.SWITCH))


def _is_reaper(pid: int, name: str) -> bool:
    argv = cmdline(pid)
    return "zoo.devcluster" in argv and "reap" in argv and name in argv


def teardown(name: str) -> dict[int, list[str]]:
    """Remove everything of cluster `name`: its reaper, every process on its hosts (Spark daemons,
    executors, services, anchors), its namespaces, veth pairs and bridge, and its directory.
    Returns pid -> argv of the processes killed. Does nothing for a cluster that does not exist."""
    saved = state.read_state(name) or {}
    killed: dict[int, list[str]] = {}
    reaper = saved.get("reaper_pid")
    if reaper and reaper != os.getpid() and alive(reaper) and _is_reaper(reaper, name):
        killed[reaper] = cmdline(reaper)
        kill_pids([reaper])
    namespaces = cluster_netns(name)
    for netns in namespaces:
        killed.update(network.kill_netns(netns))
    for netns in namespaces:
        network.delete_netns(netns)
    shutil.rmtree(state.cluster_dir(name), ignore_errors=True)
    return killed


def leftover_reason(name: str) -> str | None:
    """Why cluster `name` is a leftover to sweep, or None when it is live (or belongs to a running
    owner, or was started by ``scripts/dev-cluster up`` and still runs)."""
    saved = state.read_state(name)
    if saved is None:
        return "it has namespaces or a directory but no state file"
    if not saved:
        return "its state file is unreadable"
    owner = state.owner_alive(saved)
    if owner is False:
        return f"the process that started it (pid {saved.get('owner_pid')}) has exited"
    anchors = [host.get("anchor_pid") for host in saved.get("hosts", [])]
    if owner is None and not all(pid and alive(pid) for pid in anchors):
        return "its hosts' anchor processes are gone"
    return None


def sweep_leftovers() -> dict[str, str]:
    """Tear down every dev cluster that a crashed or killed run left behind (see `leftover_reason`);
    return name -> reason of each one removed. Live clusters, other users' included, are kept."""
    namespaces = network.list_netns()
    for netns in namespaces:  # a probe whose process died between `ip netns add` and `delete`
        pid = netns[len(network.PROBE_PREFIX):]
        if netns.startswith(network.PROBE_PREFIX) and pid.isdigit() and not alive(int(pid)):
            network.delete_netns(netns)
    names = set(state.saved_names()) | {network.cluster_of(ns) for ns in namespaces} - {None}
    swept = {}
    for name in sorted(names):
        reason = leftover_reason(name)
        if reason:
            logger.warning("Removing the leftover dev cluster %r: %s", name, reason)
            teardown(name)
            swept[name] = reason
    return swept


def start_reaper(name: str, owner_pid: int, pythonpath: str) -> subprocess.Popen:
    """Start the process that tears cluster `name` down once process `owner_pid` exits, however
    it exits (``python -m zoo.devcluster reap``, in its own session, outside every namespace)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (pythonpath, os.environ.get("PYTHONPATH")) if p))
    return subprocess.Popen([sys.executable, "-m", "zoo.devcluster", "reap", "--name", name, "--owner", str(owner_pid)],
                            env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def reap(name: str, owner_pid: int) -> None:
    """Wait until process `owner_pid` exits, then tear cluster `name` down if that process still
    owns it (a pidfd names that one process, so a reused pid does not fool the wait)."""
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        pidfd = None
    if pidfd is not None:
        select.select([pidfd], [], [])
        os.close(pidfd)
    saved = state.read_state(name)
    if saved and saved.get("owner_pid") == owner_pid:
        teardown(name)
