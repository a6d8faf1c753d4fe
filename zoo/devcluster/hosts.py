"""The hosts of a dev cluster: a network namespace plus a mount namespace with private /dev/shm and
/tmp, kept alive by one anchor process, and entered with ``nsenter``.

Every host runs the same OS image (this machine's root filesystem: the same Python, venv, Java and
checkout at the same paths) and sees the cluster's shared directory, as nodes see an NFS mount;
only /tmp and /dev/shm (tmpfs mounts of their own) and the network are the host's own.
"""

from __future__ import annotations

import os
import socket
import subprocess

from zoo.devcluster import network
from zoo.devcluster.processes import alive, cmdline, kill_groups, wait_for
from zoo.errors import DevClusterError

#: The directories every host has its own tmpfs for.
PRIVATE_DIRS = ("/dev/shm", "/tmp")


def private_dir_of(path: str) -> str | None:
    """The directory of `PRIVATE_DIRS` that holds `path` (so each host sees its own), or None."""
    path = os.path.abspath(path)
    return next((d for d in PRIVATE_DIRS if path == d or path.startswith(d + os.sep)), None)
#: How long an anchor may take to make its namespace and mounts.
ANCHOR_TIMEOUT_S = 15.0
#: Default time limit of `Host.run`.
DEFAULT_RUN_TIMEOUT_S = 120.0
#: Variables of this process that must not reach processes on a host: they point at this
#: process's own Spark driver or at directories the host cannot see.
UNSHARED_VARIABLES = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_CONF_DIR", "MASTER", "TMPDIR")


def start_anchor(netns: str, tmpfs_size: str, log_path: str) -> subprocess.Popen:
    """Start the process that holds a host's mount namespace: it enters `netns`, unshares the mount
    namespace (private propagation, so nothing leaks back), mounts a fresh tmpfs of `tmpfs_size` on
    each of `PRIVATE_DIRS` and sleeps. Returns once it sleeps; its pid is what `Host` enters."""
    mounts = " && ".join(f"mount -t tmpfs -o size={tmpfs_size},mode=1777 zoo-dc{path.replace('/', '-')} {path}"
                         for path in PRIVATE_DIRS)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, "unshare", "--mount", "--propagation", "private",
                                 "--", "sh", "-c", f"{mounts} && exec sleep infinity"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    # ip, unshare and sh each exec the next, so the Popen pid ends up as the sleeping anchor.
    try:
        wait_for(lambda: os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == "sleep",
                 f"The anchor of namespace {netns} (it mounts tmpfs on {', '.join(PRIVATE_DIRS)})", [proc], [log_path],
                 ANCHOR_TIMEOUT_S)
    except DevClusterError:
        kill_groups([proc.pid], timeout_s=1)
        proc.wait()
        raise
    return proc


class Host:
    """One machine of a dev cluster: its own network (``eth0`` at `ip`, loopback) and its own
    /dev/shm and /tmp, over the same root filesystem as every other host.

    Processes started with `run` or `popen` enter both namespaces through the anchor process, so a
    Spark worker, the executors it forks, a server and a test's client script on one host share its
    network and memory, and no other host's.

    Args:
        name: the host's name in the cluster (``edge``, ``host1``, ...).
        role: ``"edge"`` (master, drivers, services) or ``"worker"`` (one Spark worker).
        ip: its address on the cluster's subnet.
        netns: its network namespace.
        anchor_pid: the process whose namespaces the host's processes enter.
        env: variables every process on the host gets, over this process's environment.
    """

    def __init__(self, name: str, role: str, ip: str, netns: str, anchor_pid: int, env: dict[str, str]):
        self.name, self.role, self.ip, self.netns, self.anchor_pid = name, role, ip, netns, anchor_pid
        self.env = dict(env)

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ip={self.ip!r}, netns={self.netns!r})"

    def alive(self) -> bool:
        """True while the host's anchor (and so its namespaces) exists."""
        return alive(self.anchor_pid)

    def environ(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process on this host: this process's, less `UNSHARED_VARIABLES`,
        then the host's variables, then `env`."""
        base = {key: value for key, value in os.environ.items() if key not in UNSHARED_VARIABLES}
        return {**base, **self.env, **(env or {})}

    def command(self, argv: list[str], cwd: str | None = None) -> list[str]:
        """`argv` wrapped to run on this host (``nsenter`` into its network and mount namespaces),
        in `cwd` (default: this process's directory, which must not be private to a host)."""
        if not self.alive():
            raise DevClusterError(f"Host {self.name} is gone (its anchor process {self.anchor_pid} exited); "
                                  "start the cluster again (`scripts/dev-cluster up`).")
        cwd = cwd or os.getcwd()
        private = private_dir_of(cwd)
        if private:
            raise DevClusterError(f"Expected a working directory that every host sees. Received: {cwd}, under "
                                  f"{private}, which is private to each host. Pass cwd= (or cd) to a directory "
                                  "outside /tmp and /dev/shm, e.g. the cluster's shared directory.")
        return ["nsenter", "-t", str(self.anchor_pid), "-n", "-m", f"--wd={cwd}", "--", *argv]

    def popen(self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
              **kwargs) -> subprocess.Popen:
        """Start `argv` on this host in the background, in its own session and process group
        (stop it with ``os.killpg(proc.pid, ...)``). Other keywords go to ``subprocess.Popen``."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.command(argv, cwd), env=self.environ(env), start_new_session=True, **kwargs)

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float | None = DEFAULT_RUN_TIMEOUT_S,
            cwd: str | None = None, input: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """Run `argv` on this host and wait; return its CompletedProcess with stdout and stderr as text.

        Raises:
            subprocess.TimeoutExpired: it ran past `timeout` s (its whole process group is killed).
            subprocess.CalledProcessError: with `check`, it exited non-zero.
        """
        proc = self.popen(argv, env, cwd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_groups([proc.pid], timeout_s=0)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, out, err) from None
        except BaseException:
            kill_groups([proc.pid], timeout_s=0)
            proc.wait()
            raise
        done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
        if check:
            done.check_returncode()
        return done

    def pids(self) -> list[int]:
        """Every live process on this host (its anchor included)."""
        return network.netns_pids(self.netns)

    def processes(self) -> dict[int, list[str]]:
        """pid -> argv of every live process on this host (its anchor included)."""
        return {pid: cmdline(pid) for pid in self.pids()}

    def kill_all(self, keep_anchor: bool = True) -> dict[int, list[str]]:
        """SIGKILL every process on this host but its anchor (and the anchor too unless
        `keep_anchor`); return pid -> argv of those killed."""
        return network.kill_netns(self.netns, keep=[self.anchor_pid] if keep_anchor else [])

    def connect(self, port: int, address: str | None = None, timeout: float = 5.0) -> socket.socket:
        """A TCP connection from inside this host to `address` (default: its own ip) and `port`.
        This is how code in the root namespace talks to services on the cluster."""
        return network.netns_socket(self.netns, (address or self.ip, port), timeout)

    def http(self, port: int, path: str = "/", method: str = "GET", body: bytes | None = None,
             address: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
        """One HTTP request from inside this host to `address` (default: its own ip); returns the
        status and the body of the reply."""
        return network.http_request(self.netns, method, address or self.ip, port, path, body, timeout)
