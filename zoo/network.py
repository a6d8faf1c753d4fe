"""What Zoo asks the network before it starts a cluster session: this machine's address and
whether the Spark master (or YARN's ResourceManager) answers.

`zoo.cluster` computes the settings; this module is the part that opens sockets, so a wrong master
URL is reported in seconds, naming the URL tried, before anything is packed or started.
"""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ElementTree

from zoo.errors import MasterUnreachableError, ZooValueError

#: Seconds to wait for a TCP connection to the master before reporting it unreachable.
DEFAULT_MASTER_TIMEOUT_S = 5.0


def node_ip() -> str:
    """This machine's address as other hosts see it (for executors that call back to the driver).

    Asks the kernel which interface routes to a non-local address (no packet is sent); 127.0.0.1
    when there is no route.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _probe(host: str, port: int, timeout_s: float) -> str | None:
    """None when a TCP connection to host:port opens, else why it did not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


def _yarn_resource_manager() -> tuple[str, int] | None:
    conf_dir = os.environ.get("YARN_CONF_DIR") or os.environ.get("HADOOP_CONF_DIR")
    if not conf_dir or not os.path.isdir(conf_dir):
        raise ZooValueError(
            "YARN modes need the cluster's Hadoop configuration: set HADOOP_CONF_DIR (or YARN_CONF_DIR) "
            "to the directory holding yarn-site.xml and core-site.xml (copy it from a cluster node, "
            f"e.g. /etc/hadoop/conf). Received: HADOOP_CONF_DIR={os.environ.get('HADOOP_CONF_DIR')!r}."
        )
    site = os.path.join(conf_dir, "yarn-site.xml")
    if not os.path.isfile(site):
        return None
    props = {p.findtext("name"): p.findtext("value") for p in ElementTree.parse(site).getroot().iter("property")}
    address = props.get("yarn.resourcemanager.address")
    if not address:
        host = props.get("yarn.resourcemanager.hostname")
        return (host, 8032) if host and "$" not in host else None
    host, _, port = address.rpartition(":")
    return (host, int(port)) if host and "$" not in host and port.isdigit() else None


def check_master_reachable(master: str, timeout_s: float = DEFAULT_MASTER_TIMEOUT_S) -> None:
    """Raise MasterUnreachableError naming the URL when the master (or YARN RM) does not answer.

    Checks that a TCP connection opens: ``spark://`` masters (each of an HA list), the Kubernetes
    API server of ``k8s://`` and YARN's ResourceManager from ``$HADOOP_CONF_DIR/yarn-site.xml``.
    Local masters are not checked.
    """
    if master.startswith("spark://"):
        targets = []
        for hostport in master[len("spark://"):].split(","):
            host, _, port = hostport.rpartition(":")
            if not host or not port.isdigit():
                raise ZooValueError(f"Expected a standalone master URL spark://host:port. Received: {master!r}.")
            targets.append((host, int(port)))
        fix = ("Check that the master is running (spark-class org.apache.spark.deploy.master.Master, or "
               "$SPARK_HOME/sbin/start-master.sh; its log prints the URL to use), that host and port are "
               "right, and that no firewall blocks the port.")
    elif master.startswith("k8s://"):
        url = master[len("k8s://"):]
        scheme, _, rest = url.rpartition("://")
        hostport = rest.split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        if not host:
            host, port = hostport, ("80" if scheme == "http" else "443")
        targets = [(host, int(port))]
        fix = "Check the API server address with `kubectl cluster-info` and that this machine can reach it."
    elif master == "yarn":
        rm = _yarn_resource_manager()
        if rm is None:
            return
        targets = [rm]
        fix = ("Check yarn.resourcemanager.address in $HADOOP_CONF_DIR/yarn-site.xml and that the "
               "ResourceManager is running (`yarn node -list`).")
    else:
        return
    reasons = []
    for host, port in targets:
        reason = _probe(host, port, timeout_s)
        if reason is None:
            return
        reasons.append(f"{host}:{port}: {reason}")
    raise MasterUnreachableError(
        f"Cannot reach the Spark master at {master} (tried {'; '.join(reasons)}; timeout {timeout_s:g}s). {fix}"
    )
