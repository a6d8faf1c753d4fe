"""DevCluster: several real hosts on one machine, with a Spark standalone cluster, S3 and Redis.

Layout (addresses on a /24 that exists only inside the cluster's namespaces):

    edge   10.77.0.10   Spark master, drivers (client mode), S3 (moto), Redis if asked
    host1  10.77.0.11   one Spark worker (its executors and their Python workers)
    host2  10.77.0.12   one Spark worker
    ...
    switch              a namespace holding the bridge every host's eth0 is wired to
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import weakref
from dataclasses import dataclass

import zoo
from zoo.devcluster import cleanup, network, services, spark, state
from zoo.devcluster.hosts import Host, private_dir_of, start_anchor
from zoo.devcluster.processes import kill_pids, wait_for
from zoo.errors import DevClusterError, ZooValueError, check_positive_int

DEFAULT_NAME = "dev"
DEFAULT_HOSTS = 2
DEFAULT_CORES = 2
DEFAULT_MEMORY = "2g"
#: Upper bound of each host's /tmp and of its /dev/shm (tmpfs: memory is used only as files fill it).
DEFAULT_TMPFS_SIZE = "4g"
#: The most worker hosts one cluster may have.
MAX_HOSTS = 50
#: The edge host's name; worker hosts are host1, host2, ...
EDGE = "edge"
#: The last byte of the edge's address; worker host N gets EDGE_OCTET + N.
EDGE_OCTET = 10
#: How long the Spark daemons may take to come up and register.
STARTUP_TIMEOUT_S = 120.0

_SIZE = re.compile(r"^\d+[kmgt]?$", re.IGNORECASE)
#: Where the checkout that holds the running `zoo` package is: every host imports this `zoo`.
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(zoo.__file__)))


@dataclass(frozen=True)
class DevClusterConfig:
    """What a dev cluster is made of; validated when created.

    Attributes:
        name: names the cluster's namespaces and its directory /var/tmp/zoo-dev-cluster-<name>.
        hosts: how many worker hosts (one Spark worker each) besides the edge host.
        cores: cores each worker offers to executors.
        memory: memory each worker offers, and ``spark.executor.memory`` of drivers on the edge
            (one executor per worker host), e.g. ``"2g"``.
        bandwidth: shape every host's link to this rate in both directions (tc syntax, e.g.
            ``"1gbit"``); None leaves links unshaped (veth speed, several Gbit/s).
        spark: start the Spark master and workers.
        s3: start the S3 server (moto) on the edge host.
        bucket: the bucket created on the S3 server.
        tmpfs_size: the size limit of each host's private /tmp and /dev/shm.
    """

    name: str = DEFAULT_NAME
    hosts: int = DEFAULT_HOSTS
    cores: int = DEFAULT_CORES
    memory: str = DEFAULT_MEMORY
    bandwidth: str | None = None
    spark: bool = True
    s3: bool = True
    bucket: str = services.DEFAULT_BUCKET
    tmpfs_size: str = DEFAULT_TMPFS_SIZE

    def __post_init__(self):
        state.check_name(self.name)
        check_positive_int("hosts", self.hosts)
        if self.hosts > MAX_HOSTS:
            raise ZooValueError(f"Expected `hosts` <= {MAX_HOSTS}. Received: hosts={self.hosts}.")
        check_positive_int("cores", self.cores)
        for field in ("memory", "tmpfs_size"):
            value = getattr(self, field)
            if not isinstance(value, str) or not _SIZE.match(value):
                raise ZooValueError(f"Expected `{field}` as a number with an optional unit k, m, g or t (e.g. '2g'). "
                                    f"Received: {field}={value!r}.")
        if self.bandwidth is not None:
            network.rate_bits(self.bandwidth)
        if not re.match(r"^[a-z0-9][a-z0-9.-]{2,62}$", self.bucket):
            raise ZooValueError(f"Expected `bucket` to be an S3 bucket name (3-63 lowercase letters, digits, '.' "
                                f"or '-'). Received: bucket={self.bucket!r}.")


def host_names(workers: int) -> list[str]:
    """The host names of a cluster with `workers` worker hosts, edge first."""
    return [EDGE] + [f"host{i}" for i in range(1, workers + 1)]


def host_address(name: str) -> str:
    """The address of host `name` (``edge`` or ``host<N>``) on the cluster's subnet."""
    number = 0 if name == EDGE else int(name[len("host"):])
    return f"{network.SUBNET_PREFIX}.{EDGE_OCTET + number}"


class DevCluster:
    """A multi-host cluster on this machine: an edge host and `hosts` worker hosts, each a network
    namespace with private /dev/shm and /tmp, joined by a switch whose links can be shaped, running
    a Spark standalone master (edge) and one worker per worker host, plus S3 and Redis on demand.

    Build it with a `DevClusterConfig` or its fields as keywords, then `up()`; or `attach(name)`
    to one that ``scripts/dev-cluster up`` started. Processes on a host: ``cluster.host("host1").run(
    [...])``; a driver: ``cluster.edge.run([sys.executable, "job.py"])`` (the edge's environment
    points Spark at the master and S3 clients at the S3 server). The hosts' addresses are not routed
    from the namespace this process runs in: reach them from a host, or with `Host.connect`.

    Args:
        config: the cluster's configuration; or give its fields as keywords.
    """

    def __init__(self, config: DevClusterConfig | None = None, **options):
        if config is not None and options:
            raise ZooValueError(f"Expected either `config` or its fields as keywords. Received both: {sorted(options)}.")
        self.config = config or DevClusterConfig(**options)
        self.name = self.config.name
        self.python = sys.executable
        self.pythonpath = CHECKOUT
        self.hosts: dict[str, Host] = {}
        self.shaping: dict[str, str | None] = {}
        self.redis: list[dict] = []
        self._daemons: list[dict] = []
        self._children: list = []
        self._owner: dict = {}
        self._reaper_pid: int | None = None
        self._finalizer = None
        self._status = "new"

    def __repr__(self) -> str:
        return f"DevCluster({self.name!r}, hosts={list(self.hosts) or host_names(self.config.hosts)})"

    def __enter__(self) -> "DevCluster":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    # ------------------------------------------------------------------------------ layout
    @property
    def state_dir(self) -> str:
        """The cluster's directory (state, logs, conf, shared)."""
        return state.cluster_dir(self.name)

    @property
    def shared_dir(self) -> str:
        """A directory every host sees at this same path (as an NFS mount), as does this process."""
        return os.path.join(self.state_dir, "shared")

    @property
    def logs_dir(self) -> str:
        """Where the daemons' logs go (the master's, each worker's, S3's, Redis's, the anchors')."""
        return os.path.join(self.state_dir, "logs")

    @property
    def conf_dir(self) -> str:
        """The ``SPARK_CONF_DIR`` of drivers on the edge host (spark-defaults.conf)."""
        return os.path.join(self.state_dir, "conf")

    @property
    def edge(self) -> Host:
        """The edge host: Spark master, drivers and services."""
        return self.host(EDGE)

    @property
    def workers(self) -> list[Host]:
        """The worker hosts, in order (host1, host2, ...)."""
        return [host for host in self.hosts.values() if host.role == "worker"]

    @property
    def master_url(self) -> str:
        """The Spark master's URL (``spark://10.77.0.10:7077``)."""
        return spark.master_url(host_address(EDGE))

    @property
    def master_webui_url(self) -> str:
        """The master's web UI (reachable from the hosts; its JSON status is `status()["workers"]`)."""
        return f"http://{host_address(EDGE)}:{spark.MASTER_WEBUI_PORT}"

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 server's URL, or None when the cluster runs without S3."""
        return services.s3_endpoint(host_address(EDGE)) if self.config.s3 else None

    def host(self, name: str | Host) -> Host:
        """The host called `name` (a Host is returned as it is).

        Raises:
            ZooValueError: no such host; the message lists the cluster's hosts.
        """
        if isinstance(name, Host):
            return name
        if name not in self.hosts:
            known = list(self.hosts) or "none: call up() first"
            raise ZooValueError(f"Expected a host of dev cluster {self.name!r} ({known}). Received: {name!r}.")
        return self.hosts[name]

    def s3_env(self) -> dict[str, str]:
        """The environment an S3 client needs for the cluster's server (empty without S3)."""
        return services.s3_env(host_address(EDGE), self.config.bucket) if self.config.s3 else {}

    def driver_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a Spark driver on the edge host: ``MASTER`` (the master's URL),
        ``SPARK_CONF_DIR`` (master, driver address, executor memory), ``SPARK_LOCAL_IP``,
        ``PYSPARK_PYTHON``, ``PYTHONPATH`` (this checkout), the S3 variables, then `extra`.
        `Host.run` and `Host.popen` on the edge use it already."""
        return self.edge.environ(extra)

    def _host_env(self, name: str) -> dict[str, str]:
        ip = host_address(name)
        env = {
            "PATH": os.pathsep.join([os.path.dirname(self.python), os.environ.get("PATH", "/usr/bin:/bin")]),
            "PYTHONPATH": os.pathsep.join(p for p in (self.pythonpath, os.environ.get("PYTHONPATH")) if p),
            "PYSPARK_PYTHON": self.python, "PYSPARK_DRIVER_PYTHON": self.python,
            "SPARK_LOCAL_IP": ip, "SPARK_LOCAL_HOSTNAME": ip, "SPARK_LOCAL_DIRS": spark.LOCAL_DIRS,
            # The machine's hostname does not resolve to a host's address: gloo and tensorpipe
            # bind to the interface instead.
            "GLOO_SOCKET_IFNAME": network.HOST_IFNAME, "TP_SOCKET_IFNAME": network.HOST_IFNAME,
            "TMPDIR": "/tmp", "ZOO_DEV_CLUSTER": self.name, "ZOO_DEV_CLUSTER_HOST": name,
            "ZOO_DEV_CLUSTER_SHARED": self.shared_dir,
            **self.s3_env(),
        }
        if name == EDGE and self.config.spark:
            env.update(MASTER=self.master_url, SPARK_CONF_DIR=self.conf_dir)
        return env

    def _new_host(self, name: str, anchor_pid: int) -> Host:
        return Host(name, "edge" if name == EDGE else "worker", host_address(name), network.netns_name(self.name, name),
                    anchor_pid, self._host_env(name))

    # ------------------------------------------------------------------------------ state
    def _save(self) -> None:
        state.write_state(self.name, {
            "name": self.name, "status": self._status, **self._owner, "reaper_pid": self._reaper_pid,
            "python": self.python, "pythonpath": self.pythonpath, "config": dataclasses.asdict(self.config),
            "switch": network.netns_name(self.name, network.SWITCH),
            "hosts": [{"name": h.name, "role": h.role, "ip": h.ip, "netns": h.netns, "anchor_pid": h.anchor_pid}
                      for h in self.hosts.values()],
            "daemons": self._daemons, "redis": self.redis, "shaping": self.shaping,
        })

    @classmethod
    def attach(cls, name: str = DEFAULT_NAME) -> "DevCluster":
        """The running cluster `name` (started by ``scripts/dev-cluster up`` or another process).

        Raises:
            DevClusterError: no cluster of that name runs.
        """
        saved = state.read_state(name)
        if not saved or saved.get("status") != "up":
            raise DevClusterError(f"No dev cluster named {name!r} is up (no state at {state.state_path(name)}). "
                                  f"Start one with `scripts/dev-cluster up --name {name}`.")
        cluster = cls(DevClusterConfig(**saved["config"]))
        cluster.python, cluster.pythonpath = saved["python"], saved["pythonpath"]
        cluster.hosts = {h["name"]: cluster._new_host(h["name"], h["anchor_pid"]) for h in saved["hosts"]}
        cluster.shaping, cluster.redis, cluster._daemons = saved["shaping"], saved["redis"], saved["daemons"]
        cluster._owner = {key: saved[key] for key in ("owner_pid", "owner_start") if key in saved}
        cluster._reaper_pid = saved.get("reaper_pid")
        cluster._status = "up"
        return cluster

    # ------------------------------------------------------------------------------ lifecycle
    def up(self, detach: bool = False) -> "DevCluster":
        """Make the hosts and the switch, start the Spark daemons and the services, and wait until
        every worker is registered with the master. Leftovers of crashed runs are swept first.

        Args:
            detach: keep the cluster running after this process exits (``scripts/dev-cluster up``);
                by default it is torn down when this process exits, however it exits.

        Raises:
            NamespacesUnavailableError: this machine cannot make namespaces (not root, ...).
            DevClusterError: a cluster of this name runs already, or a part failed to start (the
                message shows its log); whatever had started is torn down.
        """
        network.require_namespaces()
        self._check_visible_to_hosts()
        cleanup.sweep_leftovers()  # a crashed run of this name included
        if state.read_state(self.name) is not None:
            raise DevClusterError(f"A dev cluster named {self.name!r} is already running (or starting). Stop it "
                                  f"with `scripts/dev-cluster down --name {self.name}`, or pick another name.")
        self._owner = state.owner_record(os.getpid())
        self._status = "starting"
        self._save()
        if not detach:
            reaper = cleanup.start_reaper(self.name, os.getpid(), self.pythonpath)
            self._children.append(reaper)
            self._reaper_pid = reaper.pid
            self._finalizer = weakref.finalize(self, _teardown_if_owner, self.name, os.getpid())
        try:
            self._start()
            if detach:
                self._owner = {}
            self._status = "up"
            self._save()
        except BaseException:
            self.down()
            raise
        return self

    def _check_visible_to_hosts(self) -> None:
        """Refuse a Python or checkout that the hosts cannot see (under their private /tmp)."""
        for what, path in (("the Python", self.python), ("the Zoo checkout", self.pythonpath)):
            private = private_dir_of(path)
            if private:
                raise DevClusterError(
                    f"Expected {what} the hosts run in a directory every host sees. Received: {path}, under "
                    f"{private}, which each host mounts privately. Move the checkout and its .venv outside "
                    f"/tmp and /dev/shm (e.g. under /var/tmp or your home directory).")

    def _start(self) -> None:
        for path in (self.shared_dir, self.logs_dir, self.conf_dir):
            os.makedirs(path, exist_ok=True)
        os.chmod(self.shared_dir, 0o1777)
        switch = network.netns_name(self.name, network.SWITCH)
        network.make_switch(switch)
        for name in host_names(self.config.hosts):
            netns = network.netns_name(self.name, name)
            network.make_host_netns(netns, switch, name, host_address(name))
            anchor = start_anchor(netns, self.config.tmpfs_size, self._log(f"anchor-{name}"))
            self._children.append(anchor)
            self.hosts[name] = self._new_host(name, anchor.pid)
            self._save()
        if self.config.bandwidth:
            self.shape(self.config.bandwidth)
        master = None
        if self.config.spark:
            with open(os.path.join(self.conf_dir, "spark-defaults.conf"), "w") as handle:
                handle.write(spark.spark_defaults(self.edge.ip, self.config.memory))
            master = self._daemon("master", self.edge, spark.start_master(self.edge, self._log("master")))
        if self.config.s3:
            self._daemon("s3", self.edge, services.start_s3(self.edge, self._log("s3"), self.config.bucket))
        if master is not None:
            # Workers register at start-up and retry only after several seconds: wait for the master.
            wait_for(lambda: spark.master_state(self.edge), "The Spark master", [master], [self._log("master")],
                     STARTUP_TIMEOUT_S)
            for host in self.workers:
                self._start_worker(host)
            self.wait_for_workers()

    def _log(self, name: str) -> str:
        return os.path.join(self.logs_dir, f"{name}.log")

    def _daemon(self, name: str, host: Host, proc):
        self._children.append(proc)
        self._daemons.append({"name": name, "host": host.name, "pid": proc.pid, "log": self._log(name)})
        self._save()
        return proc

    def _start_worker(self, host: Host):
        name = f"worker-{host.name}"
        proc = spark.start_worker(host, self.master_url, self.config.cores, self.config.memory, self._log(name))
        return self._daemon(name, host, proc)

    def down(self) -> None:
        """Stop everything and remove the namespaces, the veth pairs, the switch and the cluster's
        directory (the shared directory with it). Safe to call twice."""
        cleanup.teardown(self.name)
        for proc in self._children:
            proc.wait()  # reap our children: teardown killed them
        self._children.clear()
        self.hosts.clear()
        self._status = "down"
        if self._finalizer is not None:
            self._finalizer.detach()

    # ------------------------------------------------------------------------------ network
    def shape(self, rate: str | None, hosts: list[str] | None = None) -> None:
        """Limit each link of `hosts` (default: all) to `rate` in both directions: what the host
        sends (its eth0) and what it receives (the switch's port towards it). None removes it.

        Raises:
            ZooValueError: `rate` is not a tc rate such as ``"1gbit"`` or ``"100mbit"``.
        """
        if rate is not None:
            network.rate_bits(rate)
        switch = network.netns_name(self.name, network.SWITCH)
        for host in [self.host(name) for name in (hosts or list(self.hosts))]:
            network.shape(host.netns, network.HOST_IFNAME, rate)
            network.shape(switch, host.name, rate)
            self.shaping[host.name] = rate
        self._save()

    # ------------------------------------------------------------------------------ Spark
    def alive_workers(self) -> list[dict]:
        """The workers the master lists as ALIVE (host, port, cores, cores used, memory)."""
        return spark.alive_workers(spark.master_state(self.edge))

    def wait_for_workers(self, count: int | None = None, timeout_s: float = STARTUP_TIMEOUT_S) -> list[dict]:
        """Wait until `count` (default: every worker host) distinct hosts have an ALIVE worker.

        Raises:
            DevClusterError: not within `timeout_s`; the message shows the workers' logs.
        """
        count = len(self.workers) if count is None else count

        def ready():
            alive = self.alive_workers()
            return alive if len({w["host"] for w in alive}) >= count else None

        logs = [d["log"] for d in self._daemons if d["name"].startswith("worker-")]
        return wait_for(ready, f"{count} Spark worker(s) of dev cluster {self.name!r}", logs=logs, timeout_s=timeout_s)

    def executors(self, host: str | Host) -> list[dict]:
        """The executor JVMs on `host`: pid, executor id and application id of each."""
        return spark.executors(self.host(host))

    def kill_executors(self, host: str | Host) -> dict[int, list[str]]:
        """``kill -9`` every executor JVM on `host` and the Python workers under them, as when an
        executor is OOM-killed; the worker stays and the master starts new executors. Returns
        pid -> argv of what was killed (empty when no executor ran there)."""
        tree = spark.executor_tree(self.host(host))
        survivors = kill_pids(tree)
        if survivors:
            raise DevClusterError(f"Executor processes {survivors} on {self.host(host).name} survived SIGKILL.")
        return tree

    def kill_host(self, host: str | Host) -> dict[int, list[str]]:
        """``kill -9`` every process on `host`: its Spark worker, executors, Python workers and any
        service, as when the machine dies; its namespaces stay, so `restart_worker` can bring it
        back. Returns pid -> argv of what was killed."""
        host = self.host(host)
        killed = host.kill_all()
        self.redis = [r for r in self.redis if r["host"] != host.name]
        self._daemons = [d for d in self._daemons if d["host"] != host.name]
        self._save()
        return killed

    def restart_worker(self, host: str | Host, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Start a Spark worker on `host` again (after `kill_host`) and wait until it is ALIVE.

        Raises:
            DevClusterError: the host still has a worker, or the new one did not register.
        """
        host = self.host(host)
        if spark.worker_pids(host):
            raise DevClusterError(f"{host.name} still runs a Spark worker (pids {spark.worker_pids(host)}); "
                                  f"call kill_host({host.name!r}) first.")
        self._start_worker(host)

        def registered():
            return any(w["host"] == host.ip for w in self.alive_workers())

        wait_for(registered, f"The Spark worker on {host.name}", logs=[self._log(f"worker-{host.name}")],
                 timeout_s=timeout_s)

    # ------------------------------------------------------------------------------ services
    def start_redis(self, host: str | Host = EDGE, port: int = services.REDIS_PORT) -> str:
        """Start ``redis-server`` on `host`'s address and return its URL (``redis://10.77.0.10:6379``)."""
        host = self.host(host)
        name = f"redis-{host.name}-{port}"
        proc = services.start_redis(host, port, self._log(name))
        url = f"redis://{host.ip}:{port}"
        self.redis.append({"host": host.name, "port": port, "url": url, "pid": proc.pid})
        self._daemon(name, host, proc)
        return url

    # ------------------------------------------------------------------------------ status
    def status(self) -> dict:
        """Hosts (name, role, ip, alive, shaping), the master's URL and its ALIVE workers and
        applications, the S3 endpoint and bucket, Redis servers, and where state and logs are."""
        report = {
            "name": self.name, "state_file": state.state_path(self.name), "shared_dir": self.shared_dir,
            "logs_dir": self.logs_dir,
            "hosts": [{"name": h.name, "role": h.role, "ip": h.ip, "netns": h.netns, "alive": h.alive(),
                       "shaping": self.shaping.get(h.name)} for h in self.hosts.values()],
            "redis": [r["url"] for r in self.redis],
            "s3": {"endpoint": self.s3_endpoint, "bucket": self.config.bucket} if self.config.s3 else None,
        }
        if self.config.spark:
            report.update(master_url=self.master_url, master_webui=self.master_webui_url)
            try:
                master = spark.master_state(self.edge)
                report["workers"] = spark.alive_workers(master)
                report["applications"] = [{"id": a.get("id"), "name": a.get("name"), "cores": a.get("cores")}
                                          for a in master.get("activeapps", [])]
            except (OSError, DevClusterError) as error:
                report["workers"], report["master_error"] = [], str(error)
        return report


def _teardown_if_owner(name: str, owner_pid: int) -> None:
    """At exit (or when the DevCluster is collected): tear down, but only in the process that
    started the cluster (not in a forked child)."""
    if os.getpid() == owner_pid:
        cleanup.teardown(name)
