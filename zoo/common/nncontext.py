"""Analytics Zoo's `zoo.common.nncontext`: its context functions as thin forms of `zoo.init_spark`.

Each returns a SparkContext, as AZ's did (`init_spark` returns the SparkSession; its
`sparkContext` is this). Zoo ships the driver's active Python environment to the executors, so
the AZ arguments that named another environment are checked, not followed; see
docs/migrating-from-analytics-zoo.md.
"""

from __future__ import annotations

import os
import sys

from zoo.context import DEFAULT_APP_NAME, init_spark
from zoo.errors import ZooValueError

__all__ = ["create_spark_conf", "init_nncontext", "init_spark_on_local", "init_spark_on_yarn", "init_spark_standalone"]

#: The Spark setting `init_spark` reads the log level from.
LOG_LEVEL_KEY = "zoo.logLevel"
#: AZ arguments that were Spark settings, by the setting they set.
AZ_CONF_ARGUMENTS = {"jars": "spark.jars", "extra_python_lib": "spark.submit.pyFiles",
                     "additional_archive": "spark.yarn.dist.archives", "spark_yarn_archive": "spark.yarn.archive",
                     "extra_executor_memory_for_ray": "spark.executor.memoryOverhead"}


def create_spark_conf():
    """An empty pyspark SparkConf (AZ's create_spark_conf added BigDL's settings; Zoo needs none)."""
    from pyspark import SparkConf

    return SparkConf()


def _conf(conf, spark_log_level: str, **az_arguments) -> dict[str, str]:
    """Spark settings from a SparkConf or dict, the log level and AZ's setting-like arguments."""
    if conf is None:
        settings = {}
    elif isinstance(conf, dict):
        settings = {str(k): str(v) for k, v in conf.items()}
    elif hasattr(conf, "getAll"):
        settings = dict(conf.getAll())
    else:
        raise ZooValueError(f"Expected `conf` to be a pyspark SparkConf or a dict of Spark settings. "
                            f"Received: {conf!r} of type {type(conf).__name__}.")
    for name, value in az_arguments.items():
        if value is not None:
            settings[AZ_CONF_ARGUMENTS[name]] = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
    settings.setdefault(LOG_LEVEL_KEY, spark_log_level)
    return settings


def _check_python(python_location: str | None) -> None:
    if python_location is not None and os.path.realpath(python_location) != os.path.realpath(sys.executable):
        raise ZooValueError(
            f"Zoo's executors run the driver's Python ({sys.executable}). Received python_location="
            f"{python_location!r}: run the driver with that interpreter instead, or leave python_location out."
        )


def init_nncontext(conf=None, spark_log_level: str = "WARN", redirect_spark_log: bool = True, **kwargs):
    """A SparkContext for Zoo, from AZ's arguments.

    Args:
        conf: a pyspark SparkConf (its spark.master and spark.app.name are used), a dict of Spark
            settings, or an application name.
        spark_log_level: Spark's log level.
        redirect_spark_log: accepted; Spark's log stays where Spark writes it.
        **kwargs: passed to `zoo.init_spark` (cluster_mode, cores, memory, num_executors, ...).
    """
    app_name = DEFAULT_APP_NAME
    if isinstance(conf, str):
        app_name, conf = conf, None
    settings = _conf(conf, spark_log_level)
    master = settings.pop("spark.master", kwargs.pop("master", "local[*]"))
    app_name = settings.pop("spark.app.name", app_name)
    return init_spark(master, conf=settings, app_name=app_name, **kwargs).sparkContext


def init_spark_on_local(cores=2, conf=None, python_location=None, spark_log_level="WARN", redirect_spark_log=True):
    """A local SparkContext with `cores` cores ("*" for all)."""
    _check_python(python_location)
    return init_spark(f"local[{cores}]", conf=_conf(conf, spark_log_level)).sparkContext


def init_spark_on_yarn(hadoop_conf, conda_name=None, num_executors=None, executor_cores=None, executor_memory="2g",
                       driver_cores=4, driver_memory="2g", extra_executor_memory_for_ray=None, extra_python_lib=None,
                       penv_archive=None, additional_archive=None, hadoop_user_name="root", spark_yarn_archive=None,
                       spark_log_level="WARN", redirect_spark_log=True, jars=None, conf=None):
    """A SparkContext on YARN in client mode, the active Python environment shipped to the executors
    (or `penv_archive`, a packed environment archive).

    Raises:
        ZooValueError: `conda_name` names an environment other than the active one.
        zoo.errors.MasterUnreachableError: the ResourceManager in `hadoop_conf` does not answer.
    """
    active = os.environ.get("CONDA_DEFAULT_ENV")
    if conda_name is not None and penv_archive is None and conda_name != active:
        raise ZooValueError(
            f"Zoo ships the active Python environment to YARN (active conda env: {active!r}). Received conda_name="
            f"{conda_name!r}: activate that environment before starting the driver, or pass penv_archive= with a "
            f"packed archive of it (conda pack -n {conda_name})."
        )
    os.environ["HADOOP_CONF_DIR"] = os.fspath(hadoop_conf)
    os.environ["HADOOP_USER_NAME"] = hadoop_user_name
    settings = _conf(conf, spark_log_level, jars=jars, extra_python_lib=extra_python_lib,
                     additional_archive=additional_archive, spark_yarn_archive=spark_yarn_archive,
                     extra_executor_memory_for_ray=extra_executor_memory_for_ray)
    return init_spark("yarn", cores=executor_cores, memory=executor_memory, conf=settings,
                      cluster_mode="yarn-client", num_executors=num_executors, driver_cores=driver_cores,
                      driver_memory=driver_memory, env_archive=penv_archive or "auto").sparkContext


def init_spark_standalone(num_executors=None, executor_cores=None, executor_memory="2g", driver_cores=4,
                          driver_memory="2g", master=None, extra_executor_memory_for_ray=None, extra_python_lib=None,
                          spark_log_level="WARN", redirect_spark_log=True, conf=None, jars=None,
                          python_location=None, enable_numa_binding=False):
    """A SparkContext on a running Spark standalone cluster at `master` (spark://host:port).

    Raises:
        ZooValueError: no `master` (AZ started a cluster itself; Zoo connects to one you start).
        zoo.errors.MasterUnreachableError: the master does not answer.
    """
    if not master:
        raise ZooValueError(
            "init_spark_standalone needs `master`, the spark://host:port URL of a running standalone master "
            "(Zoo does not start one itself; start it with Spark's sbin/start-master.sh, or try "
            "scripts/dev-cluster up for a cluster on this machine)."
        )
    if enable_numa_binding:
        raise ZooValueError("enable_numa_binding is not supported: Zoo pins threads per task "
                            "(OMP_NUM_THREADS = the task's cores) instead. Leave it False.")
    _check_python(python_location)
    settings = _conf(conf, spark_log_level, jars=jars, extra_python_lib=extra_python_lib,
                     extra_executor_memory_for_ray=extra_executor_memory_for_ray)
    return init_spark(master, cores=executor_cores, memory=executor_memory, conf=settings, cluster_mode="standalone",
                      num_executors=num_executors, driver_cores=driver_cores,
                      driver_memory=driver_memory).sparkContext
