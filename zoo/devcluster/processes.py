"""Process helpers: free ports, liveness, process trees and killing whole process groups.

Every daemon the dev cluster starts runs in its own session (``start_new_session=True``), so one
``killpg`` reaches the daemon and whatever it forked into its group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable

from zoo.errors import DevClusterError

#: How often the helpers look again while waiting for processes to exit.
POLL_S = 0.05


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on at `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1]); None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()  # the name may itself hold spaces and ')'


def alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie (a zombie has exited already)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot): with the pid, it names one process even if
    the pid is reused later. None when the process is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def cmdline(pid: int) -> list[str]:
    """The argv of process `pid` ([] when it is gone or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def descendants(pids: Iterable[int]) -> set[int]:
    """Every live process below `pids` in the process tree (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_gone(pids: Iterable[int], timeout_s: float) -> list[int]:
    """Wait until none of `pids` is alive or `timeout_s` passed; return those still alive."""
    left = [pid for pid in pids if alive(pid)]
    deadline = time.monotonic() + timeout_s
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = [pid for pid in left if alive(pid)]
    return left


def _send(send: Callable[[int, int], None], ids: list[int], sig: int) -> None:
    """`send(id, sig)` (os.kill or os.killpg) to each of `ids` that still exists."""
    for target in ids:
        try:
            send(target, sig)
        except ProcessLookupError:
            pass


def kill_pids(pids: Iterable[int], timeout_s: float = 10.0) -> list[int]:
    """SIGKILL each of `pids` and wait for them to exit; return those still alive after `timeout_s`."""
    pids = list(pids)
    _send(os.kill, pids, signal.SIGKILL)
    return wait_gone(pids, timeout_s)


def kill_groups(leaders: Iterable[int], timeout_s: float = 15.0) -> None:
    """Stop the process groups led by `leaders`: SIGTERM to every group, wait up to `timeout_s` for
    the leaders to exit, then SIGKILL every group (whatever is left in it: forked children)."""
    leaders = list(leaders)
    _send(os.killpg, leaders, signal.SIGTERM)
    wait_gone(leaders, timeout_s)
    _send(os.killpg, leaders, signal.SIGKILL)


def log_tail(path: str, chars: int = 3000) -> str:
    """The last `chars` characters of the log at `path` (or a note that there is none)."""
    try:
        with open(path, errors="replace") as handle:
            return handle.read()[-chars:]
    except OSError:
        return f"(no log at {path})"


def wait_for(ready: Callable[[], object], what: str, procs: Iterable[subprocess.Popen] = (),
             logs: Iterable[str] = (), timeout_s: float = 60.0) -> object:
    """Poll `ready()` until it returns something true, and return that.

    An OSError from `ready` counts as not yet (a server that does not listen yet).

    Raises:
        DevClusterError: `timeout_s` passed or one of `procs` exited first; the message names
            `what`, the last error, and shows the end of each log in `logs`.
    """
    procs, logs = list(procs), list(logs)
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    exited = None
    while time.monotonic() < deadline:
        exited = next((proc for proc in procs if proc.poll() is not None), None)
        if exited is not None:
            break
        try:
            result = ready()
            if result:
                return result
        except OSError as error:
            last = error
        time.sleep(0.1)
    why = (f"exited with code {exited.returncode}" if exited is not None else f"was not ready within {timeout_s:g} s")
    shown = "".join(f"\n--- {path} ---\n{log_tail(path)}" for path in logs)
    raise DevClusterError(f"{what} {why} (last error: {last}).{shown}")
