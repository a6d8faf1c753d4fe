"""Create a SparkSession configured for Zoo: Arrow on, Python worker reuse, per-task thread counts."""

from __future__ import annotations

import logging
import os
import sys

from zoo.errors import ZooValueError

logger = logging.getLogger(__name__)

DEFAULT_APP_NAME = "zoo"
#: Environment variables that size the native thread pools of a Python worker.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_settings(task_cores: int) -> dict[str, str]:
    """The executor environment that pins OpenMP/MKL/BLAS pools to the cores of one task.

    KMP settings follow what Analytics Zoo set for Intel OpenMP: threads stay where they are
    placed and sleep right after a parallel region, so two workers on one host do not spin
    against each other.
    """
    if task_cores < 1:
        raise ZooValueError(f"Expected task cores >= 1. Received: {task_cores}.")
    env = {name: str(task_cores) for name in THREAD_ENV_VARS}
    env.update({"KMP_BLOCKTIME": "0", "KMP_AFFINITY": "granularity=fine,compact,1,0"})
    return env


def init_spark(
    master: str = "local[*]",
    cores: int | None = None,
    memory: str | None = None,
    conf: dict[str, str] | None = None,
    app_name: str = DEFAULT_APP_NAME,
):
    """Return a SparkSession configured for Zoo (creating it, or reusing the active one).

    Args:
        master: a Spark master URL: ``local[*]``, ``local[N]``, ``local-cluster[W,C,MB]``,
            ``spark://host:port``, ``yarn`` or ``k8s://...``.
        cores: cores of each executor (``spark.executor.cores``); each training task uses
            ``spark.task.cpus`` of them. For ``local[N]`` masters N already sets the cores.
        memory: executor memory, e.g. ``"4g"`` (driver memory in local mode).
        conf: extra Spark settings; they win over Zoo's defaults.
        app_name: the Spark application name.

    Zoo turns Arrow on, reuses Python workers (so models cached per worker survive between
    tasks) and sets OMP/MKL threads on executors to the cores of one task.
    """
    from pyspark.sql import SparkSession

    if not isinstance(master, str) or not master:
        raise ZooValueError(f"Expected `master` to be a Spark master URL such as 'local[*]'. Received: {master!r}.")
    if cores is not None and (not isinstance(cores, int) or cores < 1):
        raise ZooValueError(f"Expected `cores` to be a positive int or None. Received: cores={cores!r}.")
    user_conf = dict(conf or {})
    task_cpus = int(user_conf.get("spark.task.cpus", 1))

    settings: dict[str, str] = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.python.worker.reuse": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
    }
    for name, value in thread_settings(task_cpus).items():
        settings[f"spark.executorEnv.{name}"] = value
    if cores is not None:
        settings["spark.executor.cores"] = str(cores)
    if memory is not None:
        key = "spark.driver.memory" if master.startswith("local") else "spark.executor.memory"
        settings[key] = memory
    settings.update(user_conf)

    # PySpark starts local Python workers with $PYSPARK_PYTHON; default it to this interpreter
    # so executors see the same packages as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", settings["spark.pyspark.python"])
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(user_conf.get("zoo.logLevel", "WARN"))
    logger.info("Spark %s started on %s", spark.version, master)
    return spark
