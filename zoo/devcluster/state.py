"""Where a dev cluster keeps its state: ``/var/tmp/zoo-dev-cluster-<name>/``.

That directory is on the root filesystem, so every host sees it at the same path:

    state.json   what `DevCluster.attach` and the CLI need: hosts, addresses, pids, owner
    shared/      the shared storage (an NFS or HDFS-fuse mount on a real cluster)
    logs/        the daemons' output (master, workers, S3, Redis, anchors)
    conf/        spark-defaults.conf of drivers on the edge host

A cluster started by a test has an owner (the test process); one started by
``scripts/dev-cluster up`` has none and runs until ``down``.
"""

from __future__ import annotations

import json
import os
import re

from zoo.devcluster.processes import alive, start_time
from zoo.errors import ZooValueError

#: Parent of every cluster's directory: on the root filesystem, not /tmp (which is private per host).
STATE_ROOT = "/var/tmp"
#: A cluster's directory is STATE_ROOT/DIR_PREFIX<name>.
DIR_PREFIX = "zoo-dev-cluster-"
#: Cluster names: they become parts of namespace names, so letters, digits and '_' only.
NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,24}$")


def check_name(name: str) -> str:
    """Return `name` when it is a valid cluster name; raise ZooValueError saying what is allowed."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ZooValueError(f"Expected a cluster name of 1-24 lowercase letters, digits or '_' (it becomes part "
                            f"of namespace names). Received: name={name!r}.")
    return name


def cluster_dir(name: str) -> str:
    """The directory of cluster `name`."""
    return os.path.join(STATE_ROOT, DIR_PREFIX + check_name(name))


def state_path(name: str) -> str:
    """The state file of cluster `name`."""
    return os.path.join(cluster_dir(name), "state.json")


def read_state(name: str) -> dict | None:
    """The saved state of cluster `name`, or None when there is none."""
    try:
        with open(state_path(name)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return {}  # exists but unreadable: treated as a leftover


def write_state(name: str, state: dict) -> None:
    """Save `state` for cluster `name` (atomically: a reader sees the old file or the new one)."""
    path = state_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(partial, path)


def saved_names() -> list[str]:
    """Names of the clusters that have a directory under `STATE_ROOT`."""
    names = []
    for entry in os.listdir(STATE_ROOT):
        name = entry[len(DIR_PREFIX):]
        if entry.startswith(DIR_PREFIX) and NAME_PATTERN.match(name):
            names.append(name)
    return sorted(names)


def owner_record(pid: int) -> dict:
    """What identifies process `pid` as a cluster's owner (pid and start time, so a reused pid
    does not pass for it)."""
    return {"owner_pid": pid, "owner_start": start_time(pid)}


def owner_alive(state: dict) -> bool | None:
    """Whether the owner recorded in `state` still runs; None when the cluster has no owner."""
    pid = state.get("owner_pid")
    if pid is None:
        return None
    return alive(pid) and start_time(pid) == state.get("owner_start")
