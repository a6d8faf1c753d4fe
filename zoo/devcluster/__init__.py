"""A multi-host cluster on one machine, for trying and testing what Zoo does across hosts.

Each host is a Linux network namespace plus a mount namespace with its own /dev/shm and /tmp,
so processes on one host cannot see another host's shared memory or scratch files; the hosts
are wired to a switch (a bridge in a namespace of its own) over links that can be shaped to a
bandwidth. The edge host runs the Spark standalone master, the drivers (client mode) and an S3
server; each worker host runs one Spark worker. Every host runs the same OS image (this
machine's root filesystem) and sees one shared directory at the same path, as an NFS mount.

    from zoo.devcluster import DevCluster

    with DevCluster(hosts=2, cores=2, memory="2g") as cluster:        # needs root
        cluster.host("host1").run(["ip", "addr"])
        cluster.edge.run([sys.executable, "my_job.py"])              # a driver on the edge host
        cluster.shape("100mbit")

From a shell: ``scripts/dev-cluster up|status|exec|shape|down`` (`zoo.devcluster.cli`).
"""

from zoo.devcluster.cleanup import sweep_leftovers, teardown
from zoo.devcluster.cluster import DevCluster, DevClusterConfig, host_address
from zoo.devcluster.hosts import Host
from zoo.devcluster.network import namespaces_unavailable_reason
from zoo.errors import DevClusterError, NamespacesUnavailableError

__all__ = ["DevCluster", "DevClusterConfig", "Host", "DevClusterError", "NamespacesUnavailableError",
           "host_address", "namespaces_unavailable_reason", "sweep_leftovers", "teardown"]
