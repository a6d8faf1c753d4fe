"""Create a SparkSession configured for Zoo, on a laptop or a cluster, with the same code.

`init_spark` turns Arrow on, reuses Python workers, pins OpenMP/MKL threads on executors to the
cores of one task and, on a cluster, ships the driver's packed Python environment so executors
run exactly the driver's packages. `cluster_settings` computes the master URL and Spark
settings of a cluster mode without starting anything; `spark_submit_args` turns the same
settings into a spark-submit command (what ``zoo-submit``, `zoo.submit`, runs).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

from zoo.errors import MasterUnreachableError, ZooValueError, check_positive_int
from zoo.warm_up import warm_up_workers

logger = logging.getLogger(__name__)

DEFAULT_APP_NAME = "zoo"
#: Environment variables that size the native thread pools of a Python worker (torch sizes its
#: intra-op pool from OMP_NUM_THREADS, and the training engine sets torch threads from it).
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
#: TensorFlow runs independent ops of a step side by side in this many threads; one per worker
#: keeps workers sharing a host from oversubscribing its cores.
TF_INTEROP_THREADS = "1"
#: Intel OpenMP settings as Analytics Zoo set them: threads stay where they are placed and sleep
#: right after a parallel region, so workers sharing a host do not spin against each other.
KMP_SETTINGS = {"KMP_BLOCKTIME": "0", "KMP_AFFINITY": "granularity=fine,compact,1,0"}
#: The deployments `init_spark` and ``zoo-submit`` know.
CLUSTER_MODES = ("local", "local-cluster", "standalone", "yarn-client", "yarn-cluster", "k8s-client")
#: The directory name executors unpack the shipped environment archive into.
DEFAULT_ENV_ALIAS = "env"
#: Seconds to wait for a TCP connection to the master before reporting it unreachable.
DEFAULT_MASTER_TIMEOUT_S = 5.0
#: Workers and cores of a ``local-cluster`` built from `num_executors`/`cores` when not given.
DEFAULT_LOCAL_CLUSTER = (2, 1, 1024)
#: Spark settings for every cluster mode (not local). Training runs as one barrier stage that
#: needs all its task slots at once, so the driver waits for every executor before it starts;
#: a failed barrier stage is retried (from the last checkpoint) up to maxConsecutiveAttempts.
CLUSTER_DEFAULTS = {
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
    "spark.speculation": "false",
    "spark.task.maxFailures": "4",
    "spark.stage.maxConsecutiveAttempts": "4",
}

#: JVM flags that let the driver's and executors' JVMs hand heap back to the system once a fit is
#: over: G1 runs a concurrent cycle after 10 s without a collection and then uncommits the heap
#: beyond MaxHeapFreeRatio percent free (70 by default, at which a JVM that cached data keeps what
#: the fit's Arrow conversion grew it by). bench/memory.py measures the effect.
HEAP_RETURN_FLAGS = ("-XX:G1PeriodicGCInterval=10000", "-XX:MaxHeapFreeRatio=30", "-XX:MinHeapFreeRatio=10")
JAVA_OPTIONS_KEYS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")


def with_heap_return(java_options: str) -> str:
    """`java_options` with each of ``HEAP_RETURN_FLAGS`` appended that it does not set itself."""
    given = java_options.split()
    missing = [flag for flag in HEAP_RETURN_FLAGS
               if not any(option.startswith(flag.split("=")[0] + "=") for option in given)]
    return " ".join(given + missing)


@dataclass
class ClusterSpec:
    """What a cluster mode resolves to.

    Attributes:
        cluster_mode: one of ``CLUSTER_MODES``.
        master: the Spark master URL.
        deploy_mode: ``"client"`` or ``"cluster"``.
        conf: the Spark settings, Zoo's defaults overlaid with the user's.
        py_files: zips to put on the executors' PYTHONPATH (editable packages of the env).
    """

    cluster_mode: str
    master: str
    deploy_mode: str
    conf: dict[str, str]
    py_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def executor_python(self) -> str:
        """The interpreter executors run (inside the shipped archive, or a path): ``spark.pyspark.python``."""
        return self.conf.get("spark.pyspark.python", "")


def thread_settings(task_cores: int) -> dict[str, str]:
    """The executor environment that pins OpenMP/MKL/BLAS pools to the cores of one task.

    KMP settings follow what Analytics Zoo set for Intel OpenMP (see ``KMP_SETTINGS``). Each
    variable can be overridden with ``conf={"spark.executorEnv.<NAME>": value}``.
    """
    if task_cores < 1:
        raise ZooValueError(f"Expected task cores >= 1. Received: {task_cores}.")
    env = {name: str(task_cores) for name in THREAD_ENV_VARS}
    env["TF_NUM_INTEROP_THREADS"] = TF_INTEROP_THREADS
    env.update(KMP_SETTINGS)
    return env


def infer_cluster_mode(master: str) -> str:
    """The cluster mode a master URL implies (``spark://`` -> standalone, ``yarn`` -> yarn-client, ...)."""
    if master == "local" or master.startswith("local["):
        return "local"
    if master.startswith("local-cluster["):
        return "local-cluster"
    if master.startswith("spark://"):
        return "standalone"
    if master == "yarn":
        return "yarn-client"
    if master.startswith("k8s://"):
        return "k8s-client"
    raise ZooValueError(
        f"Expected `master` to be a Spark master URL: local[*], local[N], local-cluster[W,C,MB], "
        f"spark://host:port, yarn or k8s://https://host:port. Received: {master!r}."
    )


def _memory_mb(memory: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", str(memory).lower())
    if not match:
        raise ZooValueError(f"Expected memory like '512m' or '2g'. Received: {memory!r}.")
    factor = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024 * 1024}[match.group(2)]
    return max(1, int(int(match.group(1)) * factor))


def _zoo_defaults(cluster_mode: str, conf: dict, default_task_cpus: str = "1") -> dict[str, str]:
    """Zoo's base Spark settings: Arrow, worker reuse, cluster defaults, JVMs that return their heap when idle
    (``HEAP_RETURN_FLAGS`` added to the user's Java options) and thread pools sized to
    the cores of one task (``spark.task.cpus`` of `conf`, else `default_task_cpus`)."""
    task_cpus = int(conf.get("spark.task.cpus", default_task_cpus))
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.reuse": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
        "spark.ui.showConsoleProgress": "false",
    }
    if cluster_mode != "local":
        settings.update(CLUSTER_DEFAULTS)
    for key in JAVA_OPTIONS_KEYS:
        settings[key] = with_heap_return(conf.get(key, ""))
    for name, value in thread_settings(task_cpus).items():
        settings[f"spark.executorEnv.{name}"] = value
    return settings


def _resolve_master(cluster_mode: str, master: str | None, num_executors, cores, memory) -> str:
    if cluster_mode == "local":
        return master if master and infer_cluster_mode(master) == "local" else "local[*]"
    if cluster_mode == "local-cluster":
        if master and master.startswith("local-cluster["):
            return master
        workers, worker_cores, worker_mb = DEFAULT_LOCAL_CLUSTER
        mb = _memory_mb(memory) if memory else worker_mb
        return f"local-cluster[{num_executors or workers},{cores or worker_cores},{mb}]"
    if cluster_mode == "standalone":
        if not master or not master.startswith("spark://"):
            raise ZooValueError(f"cluster_mode='standalone' needs `master` set to the standalone master URL "
                                f"spark://host:port (the master's log prints it). Received: master={master!r}.")
        return master
    if cluster_mode in ("yarn-client", "yarn-cluster"):
        return "yarn"
    if not master or not master.startswith("k8s://"):
        raise ZooValueError(f"cluster_mode='k8s-client' needs `master` set to the Kubernetes API server, "
                            f"e.g. k8s://https://host:6443 (see `kubectl cluster-info`). Received: master={master!r}.")
    return master


def _node_ip() -> str:
    """This machine's address as other hosts see it (for executors that call back to the driver)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def cluster_settings(cluster_mode: str | None = None, master: str | None = None, cores: int | None = None,
                     memory: str | None = None, num_executors: int | None = None,
                     driver_cores: int | None = None, driver_memory: str | None = None,
                     conf: dict[str, str] | None = None, env=None,
                     env_alias: str = DEFAULT_ENV_ALIAS) -> ClusterSpec:
    """The master URL and Spark settings of a deployment; starts nothing.

    Args:
        cluster_mode: one of ``CLUSTER_MODES``; default: implied by `master`.
        master: the master URL (required for standalone and k8s-client).
        cores, memory: each executor's cores and memory (driver memory in local mode).
        num_executors: how many executors (``spark.executor.instances``; ``spark.cores.max`` on
            standalone; the worker count of local-cluster).
        driver_cores, driver_memory: the driver's resources.
        conf: extra Spark settings; they win over Zoo's.
        env: a `zoo.packaging.PackedEnv` to ship to executors, or None to ship nothing.
        env_alias: the directory executors unpack `env` into.
    """
    for name, value in (("cores", cores), ("num_executors", num_executors), ("driver_cores", driver_cores)):
        check_positive_int(name, value, allow_none=True)
    if cluster_mode is None:
        cluster_mode = infer_cluster_mode(master or "local[*]")
    if cluster_mode not in CLUSTER_MODES:
        raise ZooValueError(f"Expected `cluster_mode` to be one of {CLUSTER_MODES}. Received: {cluster_mode!r}.")
    user_conf = {str(k): str(v) for k, v in (conf or {}).items()}
    master = _resolve_master(cluster_mode, master, num_executors, cores, memory)
    local = cluster_mode == "local"
    deploy_mode = "cluster" if cluster_mode == "yarn-cluster" else "client"
    settings = _zoo_defaults(cluster_mode, user_conf)
    if cores is not None:
        settings["spark.executor.cores"] = str(cores)
    if memory is not None:
        settings["spark.driver.memory" if local else "spark.executor.memory"] = memory
    if num_executors is not None and cluster_mode in ("yarn-client", "yarn-cluster", "k8s-client"):
        settings["spark.executor.instances"] = str(num_executors)
    if num_executors is not None and cluster_mode == "standalone":
        settings["spark.cores.max"] = str(num_executors * (cores or 1))
    if driver_cores is not None:
        settings["spark.driver.cores"] = str(driver_cores)
    if driver_memory is not None:
        settings["spark.driver.memory"] = driver_memory
    if cluster_mode == "k8s-client":
        if "spark.kubernetes.container.image" not in user_conf:
            raise ZooValueError(
                "cluster_mode='k8s-client' needs the executors' container image. Pass "
                "conf={'spark.kubernetes.container.image': '<registry>/spark-py:<spark version>'} "
                "(an image with Spark and the same Python version as the driver)."
            )
        settings["spark.driver.host"] = _node_ip()
        settings["spark.driver.bindAddress"] = "0.0.0.0"

    py_files: tuple[str, ...] = ()
    if env is not None and not local:
        executor_python = env.executor_python(env_alias)
        shipped = f"{env.archive}#{env_alias}"
        key = "spark.yarn.dist.archives" if cluster_mode.startswith("yarn") else "spark.archives"
        settings[key] = shipped
        settings["spark.pyspark.python"] = executor_python
        settings["spark.executorEnv.PYSPARK_PYTHON"] = executor_python
        if cluster_mode == "yarn-cluster":
            settings["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = executor_python
        else:
            settings["spark.pyspark.driver.python"] = sys.executable
        py_files = tuple(env.py_files)
    else:
        executor_python = user_conf.get("spark.pyspark.python", sys.executable)
        settings["spark.pyspark.python"] = executor_python
        settings["spark.pyspark.driver.python"] = sys.executable
    settings.update(user_conf)
    for key in JAVA_OPTIONS_KEYS:
        settings[key] = with_heap_return(settings.get(key, ""))
    return ClusterSpec(cluster_mode, master, deploy_mode, settings, py_files)


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


def spark_submit_args(spec: ClusterSpec, app: str, app_args: list[str] | tuple[str, ...] = (),
                      spark_submit: str = "spark-submit", extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The spark-submit command line for `spec`: master, deploy mode, every setting as ``--conf``.

    Args:
        spec: from `cluster_settings`.
        app: the Python file to run; `app_args` follow it.
        spark_submit: the spark-submit executable.
        extra: further spark-submit options passed through as they are (``--jars x.jar``).
    """
    command = [spark_submit, "--master", spec.master, "--deploy-mode", spec.deploy_mode]
    for key in sorted(spec.conf):
        command += ["--conf", f"{key}={spec.conf[key]}"]
    if spec.py_files:
        command += ["--py-files", ",".join(spec.py_files)]
    return command + list(extra) + [app] + list(app_args)


def launched_by_spark_submit() -> bool:
    """True inside a driver that spark-submit (or zoo-submit) started: its JVM is already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


_python_set_by_zoo: str | None = None


def _set_executor_python(executor_python: str, force: bool) -> None:
    """PySpark takes the executors' interpreter from $PYSPARK_PYTHON when the SparkContext starts."""
    global _python_set_by_zoo
    current = os.environ.get("PYSPARK_PYTHON")
    if force or current is None or current == _python_set_by_zoo:
        if force and current not in (None, executor_python, _python_set_by_zoo):
            logger.warning("Overriding PYSPARK_PYTHON=%s with %s: executors run the shipped environment",
                           current, executor_python)
        os.environ["PYSPARK_PYTHON"] = executor_python
        _python_set_by_zoo = executor_python


def resolve_env(env_archive, cluster_mode: str, explicit_mode: bool, **pack_options):
    """The PackedEnv to ship (or None) for the `env_archive` argument of init_spark.

    `pack_options` (cache_dir, format, exclude, include) go to `zoo.packaging.pack_env` when it packs.
    """
    from zoo import packaging

    if env_archive is None or cluster_mode == "local":
        return None
    if isinstance(env_archive, packaging.PackedEnv):
        return env_archive
    if env_archive == "auto":
        # Pack only when the caller named a cluster mode; a bare master URL keeps the old behaviour
        # (executors run this interpreter's path), and local-cluster runs on this machine anyway.
        if not explicit_mode or cluster_mode == "local-cluster":
            return None
        return packaging.pack_env(**pack_options)
    if env_archive == "pack":
        return packaging.pack_env(**pack_options)
    if isinstance(env_archive, str):
        return packaging.given_archive(env_archive)
    raise ZooValueError(f"Expected `env_archive` to be 'auto', 'pack', None, an archive path or URL, or a "
                        f"zoo.packaging.PackedEnv. Received: {env_archive!r}.")


def init_spark(
    master: str = "local[*]",
    cores: int | None = None,
    memory: str | None = None,
    conf: dict[str, str] | None = None,
    app_name: str = DEFAULT_APP_NAME,
    *,
    cluster_mode: str | None = None,
    num_executors: int | None = None,
    driver_cores: int | None = None,
    driver_memory: str | None = None,
    env_archive="auto",
    master_timeout_s: float = DEFAULT_MASTER_TIMEOUT_S,
    warm_up: bool = True,
):
    """Return a SparkSession configured for Zoo (creating it, or reusing the active one).

    Args:
        master: a Spark master URL: ``local[*]``, ``local[N]``, ``local-cluster[W,C,MB]``,
            ``spark://host:port``, ``yarn`` or ``k8s://...``. With `cluster_mode` it may be left
            out where the mode implies it (local, local-cluster, yarn).
        cores: cores of each executor (``spark.executor.cores``); each training task uses
            ``spark.task.cpus`` of them. For ``local[N]`` masters N already sets the cores.
        memory: executor memory, e.g. ``"4g"`` (driver memory in local mode).
        conf: extra Spark settings; they win over Zoo's defaults.
        app_name: the Spark application name.
        cluster_mode: one of ``CLUSTER_MODES``; default: implied by `master`. ``yarn-cluster``
            runs the driver on the cluster, so it is started with ``zoo-submit``.
        num_executors: how many executors to ask for.
        driver_cores, driver_memory: the driver's resources.
        env_archive: the Python environment executors run. ``"auto"`` (default): when
            `cluster_mode` names standalone, yarn or k8s, pack the active venv/conda env (cached)
            and ship it; otherwise executors run this interpreter's path. ``"pack"``: always pack
            and ship. ``None``: ship nothing. A path or URL: ship that archive. A
            `zoo.packaging.PackedEnv` (from `zoo.packaging.pack_env` with your own filters).
        master_timeout_s: how long to wait for the master to answer before reporting it.
        warm_up: start the executors' Python workers in the background, with torch imported,
            while the caller loads data, so the first fit does not wait for them (see
            `zoo.warm_up`).

    Zoo turns Arrow on, reuses Python workers (so models cached per worker survive between
    tasks) and sets OMP/MKL threads on executors to the cores of one task. Inside a driver that
    spark-submit or zoo-submit started, the submitted master and resources win and nothing is
    packed: init_spark only adds Zoo's settings that the submission did not set.

    Raises:
        MasterUnreachableError: the master does not answer; the message names the URL tried.
        zoo.packaging.PackagingError: the environment could not be packed.
    """
    from pyspark.sql import SparkSession

    if not isinstance(master, str) or not master:
        raise ZooValueError(f"Expected `master` to be a Spark master URL such as 'local[*]'. Received: {master!r}.")
    check_positive_int("cores", cores, allow_none=True)
    if launched_by_spark_submit():
        ignored = {name: value for name, value in (
            ("master", None if master == "local[*]" else master), ("cores", cores), ("memory", memory),
            ("cluster_mode", cluster_mode), ("num_executors", num_executors), ("driver_cores", driver_cores),
            ("driver_memory", driver_memory)) if value is not None}
        if ignored:
            logger.warning("spark-submit started this driver: its settings win and %s are ignored", ignored)
        spark = _init_submitted(conf, app_name)
        if warm_up:
            warm_up_workers(spark)
        return spark
    explicit_mode = cluster_mode is not None
    mode = cluster_mode or infer_cluster_mode(master)
    if mode == "yarn-cluster":
        raise ZooValueError(
            "cluster_mode='yarn-cluster' runs the driver inside YARN, so it cannot start from this "
            "process. Launch the same script with `zoo-submit --cluster-mode yarn-cluster app.py`; "
            "inside it, init_spark() picks up the submitted settings."
        )
    given_master = None if explicit_mode and master == "local[*]" and mode != "local" else master
    settings = {"cluster_mode": mode, "master": given_master, "cores": cores, "memory": memory,
                "num_executors": num_executors, "driver_cores": driver_cores, "driver_memory": driver_memory,
                "conf": conf}
    # Check the master before packing: a wrong URL should not cost a minute of packing first.
    check_master_reachable(cluster_settings(**settings).master, master_timeout_s)
    env = resolve_env(env_archive, mode, explicit_mode)
    spec = cluster_settings(**settings, env=env)
    _set_executor_python(spec.executor_python, force=env is not None)
    builder = SparkSession.builder.master(spec.master).appName(app_name)
    for key, value in spec.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for path in spec.py_files:
        spark.sparkContext.addPyFile(path)
    spark.sparkContext.setLogLevel((conf or {}).get("zoo.logLevel", "WARN"))
    logger.info("Spark %s started on %s (%s)%s", spark.version, spec.master, mode,
                f", executors run {spec.executor_python} from {env.archive}" if env else "")
    if warm_up:
        warm_up_workers(spark)
    return spark


def _init_submitted(conf: dict[str, str] | None, app_name: str):
    """init_spark inside a driver started by spark-submit: keep the submission, add Zoo's defaults."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    SparkContext._ensure_initialized()
    submitted = SparkConf()
    master = submitted.get("spark.master", "local[*]")
    mode = infer_cluster_mode(master)
    if mode.startswith("yarn") and submitted.get("spark.submit.deployMode", "client") == "cluster":
        mode = "yarn-cluster"
    defaults = _zoo_defaults(mode, conf or {}, submitted.get("spark.task.cpus", "1"))
    builder = SparkSession.builder.appName(submitted.get("spark.app.name", app_name))
    for key, value in defaults.items():
        if not submitted.contains(key):
            builder = builder.config(key, value)
    for key, value in (conf or {}).items():
        builder = builder.config(str(key), str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel((conf or {}).get("zoo.logLevel", "WARN"))
    logger.info("Spark %s started by spark-submit on %s (%s)", spark.version, master, mode)
    return spark
