"""The Spark settings of a deployment, computed from its arguments alone: no network, no Spark.

`cluster_settings` turns a cluster mode and its resources into the master URL and Spark settings
(a `ClusterSpec`); `ClusterRequest` holds those arguments by name, as `zoo.context.init_spark`
and ``zoo-submit`` (`zoo.submit`) take them from their callers; `spark_submit_args` writes a spec
as a spark-submit command. Everything here is a pure function of its arguments (and of
``sys.executable``): probing the master and finding this machine's address is `zoo.network`'s job.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields

from zoo.errors import ZooValueError, check_positive_int

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


@dataclass(kw_only=True)
class ClusterRequest:
    """The deployment a caller asks for, by name: the arguments of `cluster_settings` but the
    environment to ship (packed only once the request is known to be valid) and the driver's
    address (found by `zoo.network`), which `spec` takes.

    `zoo.context.init_spark` builds one from its arguments and ``zoo-submit`` from its command
    line; both then resolve it with `spec`. Fields are keyword-only, so none is passed by position.

    Attributes:
        cluster_mode: one of ``CLUSTER_MODES``; None: implied by `master`.
        master: the master URL (required for standalone and k8s-client).
        cores, memory: each executor's cores and memory (driver memory in local mode).
        num_executors: how many executors.
        driver_cores, driver_memory: the driver's resources.
        conf: extra Spark settings; they win over Zoo's.
    """

    cluster_mode: str | None = None
    master: str | None = None
    cores: int | None = None
    memory: str | None = None
    num_executors: int | None = None
    driver_cores: int | None = None
    driver_memory: str | None = None
    conf: dict[str, str] | None = None

    def spec(self, env=None, driver_host: str | None = None) -> ClusterSpec:
        """`cluster_settings` of this request, shipping `env` (a `zoo.packaging.PackedEnv` or None).

        Raises:
            ZooValueError: the request names an unknown mode, a bad master or bad resources.
        """
        arguments = {f.name: getattr(self, f.name) for f in fields(self)}
        return cluster_settings(**arguments, env=env, driver_host=driver_host)


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


def zoo_defaults(cluster_mode: str, conf: dict, default_task_cpus: str = "1") -> dict[str, str]:
    """Zoo's base Spark settings: Arrow, worker reuse, cluster defaults, JVMs that return their heap when idle
    (``HEAP_RETURN_FLAGS`` added to the user's Java options) and thread pools sized to
    the cores of one task (``spark.task.cpus`` of `conf`, else `default_task_cpus`).

    `cluster_settings` starts from these; a driver that spark-submit started adds those the
    submission did not set.
    """
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


def cluster_settings(cluster_mode: str | None = None, master: str | None = None, cores: int | None = None,
                     memory: str | None = None, num_executors: int | None = None,
                     driver_cores: int | None = None, driver_memory: str | None = None,
                     conf: dict[str, str] | None = None, env=None,
                     env_alias: str = DEFAULT_ENV_ALIAS, driver_host: str | None = None) -> ClusterSpec:
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
        driver_host: k8s-client only: the address executors call the driver back on
            (``spark.driver.host``), as `zoo.network.node_ip` finds it; None leaves it to Spark.
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
    settings = zoo_defaults(cluster_mode, user_conf)
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
        if driver_host is not None:
            settings["spark.driver.host"] = driver_host
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


