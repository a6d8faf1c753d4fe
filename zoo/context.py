"""Create a SparkSession configured for Zoo, on a laptop or a cluster, with the same code.

`init_spark` turns Arrow on, reuses Python workers, pins OpenMP/MKL threads on executors to the
cores of one task and, on a cluster, ships the driver's packed Python environment so executors
run exactly the driver's packages. The settings come from `zoo.cluster` (pure functions of the
arguments); the master is checked with `zoo.network` before anything is packed or started.
"""

from __future__ import annotations

import logging
import os

from zoo.cluster import ClusterRequest, infer_cluster_mode, zoo_defaults
from zoo.errors import ZooValueError, check_positive_int
from zoo.network import DEFAULT_MASTER_TIMEOUT_S, check_master_reachable, node_ip
from zoo.warm_up import warm_up_workers

logger = logging.getLogger(__name__)

DEFAULT_APP_NAME = "zoo"


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
        cluster_mode: one of ``zoo.cluster.CLUSTER_MODES``; default: implied by `master`. ``yarn-cluster``
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
    request = ClusterRequest(cluster_mode=mode, master=given_master, cores=cores, memory=memory,
                             num_executors=num_executors, driver_cores=driver_cores, driver_memory=driver_memory,
                             conf=conf)
    # Check the master before packing: a wrong URL should not cost a minute of packing first.
    check_master_reachable(request.spec().master, master_timeout_s)
    env = resolve_env(env_archive, mode, explicit_mode)
    spec = request.spec(env=env, driver_host=node_ip())
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
    defaults = zoo_defaults(mode, conf or {}, submitted.get("spark.task.cpus", "1"))
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
