"""Network namespaces, the switch that joins them, link shaping, and sockets opened inside a host.

Every namespace the dev cluster makes is named ``zoo-dc-<cluster>-<host>`` (the switch is the host
``switch``). The bridge lives in the switch namespace and each host is one veth pair: ``eth0``
inside the host, a port named after the host on the bridge. Nothing is added to the namespace this
process runs in: the hosts' subnet exists only inside the cluster, so their addresses are not
reachable from here with an ordinary socket. `netns_socket` opens one inside a host instead.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time

from zoo.devcluster.processes import POLL_S, cmdline, kill_pids
from zoo.errors import DevClusterError, NamespacesUnavailableError, ZooValueError

#: Every namespace of every dev cluster starts with this; the leftover sweep looks for it.
NETNS_PREFIX = "zoo-dc-"
#: Where ``ip netns`` keeps its named namespaces.
NETNS_DIR = "/run/netns"
#: `namespaces_unavailable_reason` makes and deletes PROBE_PREFIX<pid> (no cluster has that form).
PROBE_PREFIX = NETNS_PREFIX + "probe"
#: The host name of the switch namespace (it holds the bridge).
SWITCH = "switch"
#: The bridge inside the switch namespace.
BRIDGE = "br0"
#: The interface every host has (its end of the veth pair to the switch).
HOST_IFNAME = "eth0"
#: The hosts' subnet (a /24 that exists only inside each cluster's namespaces).
SUBNET_PREFIX = "10.77.0"
SUBNET_BITS = 24
#: tc tbf's queueing limit: a packet waits at most this long before it is dropped.
SHAPING_LATENCY = "50ms"
#: Smallest tbf bucket: at least one GSO packet (64 KiB) must fit, or tbf stalls large sends.
MIN_BURST_BYTES = 64 * 1024
#: The bucket holds this much time at the shaped rate (4 ms; 500 KB at 1gbit).
BURST_S = 0.004
#: How long processes of a namespace may take to die after SIGKILL.
KILL_TIMEOUT_S = 15.0
#: Commands the dev cluster runs to make and enter hosts.
REQUIRED_TOOLS = ("ip", "tc", "nsenter", "unshare", "mount")

_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)$", re.IGNORECASE)
_RATE_FACTOR = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
                "bps": 8, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12}
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_name(cluster: str, host: str) -> str:
    """The namespace of `host` in cluster `cluster`: ``zoo-dc-<cluster>-<host>``."""
    return f"{NETNS_PREFIX}{cluster}-{host}"


def cluster_of(netns: str) -> str | None:
    """The cluster a dev-cluster namespace belongs to (None for any other namespace)."""
    if not netns.startswith(NETNS_PREFIX) or netns.count("-") != 3:
        return None
    return netns.split("-")[2]


def list_netns() -> list[str]:
    """Names of all named network namespaces (``ip netns list``), sorted."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def ip(*args: str, netns: str | None = None) -> str:
    """Run ``ip [-n netns] args`` and return its output; raise DevClusterError with its message."""
    command = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise DevClusterError(f"`{' '.join(command)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def netns_pids(netns: str) -> list[int]:
    """Live processes whose network namespace is `netns` (as ``ip netns pids``; zombies have none)."""
    try:
        target = os.stat(os.path.join(NETNS_DIR, netns))
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found = os.stat(f"/proc/{entry}/ns/net")
            except OSError:
                continue
            if (found.st_ino, found.st_dev) == (target.st_ino, target.st_dev):
                pids.append(int(entry))
    return pids


def kill_netns(netns: str, keep: list[int] = (), timeout_s: float = KILL_TIMEOUT_S) -> dict[int, list[str]]:
    """SIGKILL every process in `netns` but `keep`, again until none is left (a dying parent may
    still fork); return pid -> argv of those killed.

    Raises:
        DevClusterError: some survived `timeout_s`.
    """
    killed: dict[int, list[str]] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        targets = [pid for pid in netns_pids(netns) if pid not in keep]
        if not targets:
            return killed
        if time.monotonic() > deadline:
            raise DevClusterError(f"Processes in namespace {netns} survived SIGKILL for {timeout_s:g} s: {targets}")
        killed.update({pid: cmdline(pid) for pid in targets if pid not in killed})
        kill_pids(targets, timeout_s=POLL_S)


def namespaces_unavailable_reason() -> str | None:
    """Why this machine cannot host a dev cluster (None when it can).

    It needs root, the commands of `REQUIRED_TOOLS`, and ``ip netns add`` to work (a container
    without CAP_SYS_ADMIN / CAP_NET_ADMIN fails there); a probe namespace is made and deleted.
    """
    if os.geteuid() != 0:
        return (f"the dev cluster makes network and mount namespaces, which needs root (running as uid "
                f"{os.geteuid()}). Run it as root, e.g. in a container or VM where you are root.")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"the dev cluster needs the commands {', '.join(missing)} (not found on PATH). "
                "Install them with `apt-get install iproute2 util-linux mount`.")
    probe = f"{PROBE_PREFIX}{os.getpid()}"
    try:
        ip("netns", "add", probe)
    except DevClusterError as error:
        return f"network namespaces cannot be made here ({error}); run on a machine where `ip netns add` works"
    try:
        ip("netns", "delete", probe)
    except DevClusterError as error:
        return f"a probe namespace could not be deleted ({error})"
    return None


def require_namespaces() -> None:
    """Raise NamespacesUnavailableError with the reason when namespaces cannot be made here."""
    reason = namespaces_unavailable_reason()
    if reason:
        raise NamespacesUnavailableError(f"Cannot start a dev cluster: {reason}")


def make_switch(netns: str) -> None:
    """Create namespace `netns` holding an up bridge `BRIDGE` (the cluster's switch)."""
    ip("netns", "add", netns)
    ip("link", "add", BRIDGE, "type", "bridge", netns=netns)
    ip("link", "set", BRIDGE, "up", netns=netns)


def make_host_netns(netns: str, switch: str, port: str, address: str) -> None:
    """Create namespace `netns` with loopback up and `HOST_IFNAME` at `address`, its veth peer
    named `port` on the bridge of namespace `switch`."""
    ip("netns", "add", netns)
    ip("link", "add", port, "type", "veth", "peer", "name", HOST_IFNAME, "netns", netns, netns=switch)
    ip("link", "set", port, "master", BRIDGE, "up", netns=switch)
    ip("addr", "add", f"{address}/{SUBNET_BITS}", "dev", HOST_IFNAME, netns=netns)
    ip("link", "set", HOST_IFNAME, "up", netns=netns)
    ip("link", "set", "lo", "up", netns=netns)


def delete_netns(netns: str) -> None:
    """Delete namespace `netns` (its veth ends go with it); nothing happens when it is gone."""
    if os.path.exists(os.path.join(NETNS_DIR, netns)):
        ip("netns", "delete", netns)


def rate_bits(rate: str) -> float:
    """Bits per second of a tc rate such as ``"1gbit"``, ``"100mbit"`` or ``"10mbps"`` (bytes).

    Raises:
        ZooValueError: `rate` is not a number followed by one of tc's rate units.
    """
    match = _RATE.match(rate.strip()) if isinstance(rate, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ZooValueError(f"Expected a bandwidth as tc writes it: a positive number and a unit among "
                            f"{', '.join(_RATE_FACTOR)} (e.g. '1gbit', '100mbit'; 'mbps' is megabytes/s). "
                            f"Received: {rate!r}.")
    return float(match.group(1)) * _RATE_FACTOR[match.group(2).lower()]


def shape(netns: str, dev: str, rate: str | None) -> None:
    """Limit what `dev` in `netns` sends to `rate` with a tbf qdisc (replacing any); None removes it."""
    if rate is None:
        done = subprocess.run(["tc", "-n", netns, "qdisc", "del", "dev", dev, "root"], capture_output=True, text=True)
        if done.returncode != 0 and "No such file" not in done.stderr and "Cannot find" not in done.stderr:
            raise DevClusterError(f"Removing the shaping of {dev} in {netns} failed: {done.stderr.strip()}")
        return
    burst = max(MIN_BURST_BYTES, int(rate_bits(rate) / 8 * BURST_S))
    command = ["tc", "-n", netns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
               "burst", str(burst), "latency", SHAPING_LATENCY]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise DevClusterError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")


def netns_socket(netns: str, address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    """A TCP connection to `address` made from inside namespace `netns`.

    A socket belongs to the namespace of the thread that creates it, and a thread may join another
    network namespace on its own: a short-lived thread joins `netns` and connects, and the socket
    stays in that namespace afterwards, usable from any thread of this process.
    """
    result: dict = {}

    def connect() -> None:
        try:
            fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns into {netns}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            result["socket"] = socket.create_connection(address, timeout=timeout)
        except OSError as error:
            result["error"] = error

    thread = threading.Thread(target=connect, name=f"netns-{netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["socket"]


class NetnsHTTPConnection(http.client.HTTPConnection):
    """An ``http.client`` connection whose socket is opened inside a network namespace.

    Args:
        netns: the namespace to connect from.
        host, port, timeout: as for ``http.client.HTTPConnection``.
    """

    def __init__(self, netns: str, host: str, port: int, timeout: float = 5.0):
        super().__init__(host, port, timeout=timeout)
        self.netns = netns

    def connect(self) -> None:
        """Open the connection from inside `netns`."""
        self.sock = netns_socket(self.netns, (self.host, self.port), self.timeout)


def http_request(netns: str, method: str, host: str, port: int, path: str, body: bytes | None = None,
                 timeout: float = 5.0) -> tuple[int, bytes]:
    """Send one HTTP request from inside `netns`; return the status and the body of the reply."""
    connection = NetnsHTTPConnection(netns, host, port, timeout)
    try:
        connection.request(method, path, body=body)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()
