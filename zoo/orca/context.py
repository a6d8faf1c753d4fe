"""`init_orca_context` / `stop_orca_context`: Analytics Zoo Orca's entry points over `zoo.init_spark`."""

from __future__ import annotations

import logging

from zoo.context import init_spark, launched_by_spark_submit
from zoo.errors import ZooValueError

logger = logging.getLogger(__name__)

#: Orca's cluster modes and the `zoo.init_spark` cluster mode each one runs as.
ORCA_CLUSTER_MODES = {"local": "local", "standalone": "standalone", "yarn-client": "yarn-client",
                      "yarn": "yarn-client", "k8s": "k8s-client", "k8s-client": "k8s-client",
                      "spark-submit": None}
#: Keyword arguments of Orca's init_orca_context that Zoo passes on to `zoo.init_spark`.
PASSED_ON = ("master", "driver_cores", "driver_memory", "conf", "env_archive")


def init_orca_context(cluster_mode: str = "local", cores=2, memory: str = "2g", num_nodes: int = 1,
                      init_ray_on_spark: bool = False, **kwargs):
    """Start (or reuse) Zoo's SparkSession the way Orca's ``init_orca_context`` did; returns its SparkContext.

    Args:
        cluster_mode: "local", "standalone" (give ``master="spark://host:port"``), "yarn-client",
            "k8s" (give ``master="k8s://..."``) or "spark-submit" (inside a driver that
            spark-submit / ``scripts/zoo-submit`` started). "yarn-cluster" is started with
            ``scripts/zoo-submit --cluster-mode yarn-cluster`` and uses "spark-submit" inside.
        cores: cores of the local master (``local[cores]``, ``"*"`` for all) or of each executor.
        memory: driver memory in local mode, executor memory on a cluster.
        num_nodes: executors to ask for on a cluster.
        init_ray_on_spark: must stay False: Zoo runs no Ray; its Orca Estimators train on Spark.
        **kwargs: master, driver_cores, driver_memory, conf, env_archive (see `zoo.init_spark`),
            and app_name.

    Raises:
        ZooValueError: an unknown cluster mode or keyword, or init_ray_on_spark=True.
    """
    if init_ray_on_spark:
        raise ZooValueError("init_ray_on_spark=True: Zoo runs no Ray cluster. Its Orca Estimators "
                            "(zoo.orca.learn.pytorch / tf2) train on Spark itself; drop init_ray_on_spark.")
    if cluster_mode not in ORCA_CLUSTER_MODES and cluster_mode != "yarn-cluster":
        raise ZooValueError(f"Expected `cluster_mode` in {sorted(ORCA_CLUSTER_MODES)}. "
                            f"Received: cluster_mode={cluster_mode!r}.")
    unknown = sorted(set(kwargs) - set(PASSED_ON) - {"app_name"})
    if unknown:
        raise ZooValueError(f"init_orca_context got keywords Zoo does not use: {unknown}. Expected only "
                            f"{sorted(PASSED_ON + ('app_name',))}; put Spark settings in conf={{...}}.")
    options = {name: kwargs[name] for name in ("conf", "driver_cores", "driver_memory", "env_archive")
               if name in kwargs}
    if "app_name" in kwargs:
        options["app_name"] = kwargs["app_name"]
    if cluster_mode == "spark-submit" or launched_by_spark_submit():
        if not launched_by_spark_submit():
            raise ZooValueError("cluster_mode='spark-submit' is for a driver that spark-submit started. Launch "
                                "the script with `scripts/zoo-submit app.py`, or pick another cluster_mode.")
        spark = init_spark(conf=options.get("conf"), app_name=options.get("app_name", "zoo"))
    elif cluster_mode == "yarn-cluster":
        spark = init_spark(cluster_mode="yarn-cluster")  # raises, saying how to submit it
    elif cluster_mode == "local":
        if num_nodes != 1:
            logger.warning("num_nodes=%s is ignored in local mode", num_nodes)
        spark = init_spark(kwargs.get("master", f"local[{cores}]"), memory=memory, **options)
    else:
        master = kwargs.get("master", "local[*]")
        spark = init_spark(master, cores=cores, memory=memory, cluster_mode=ORCA_CLUSTER_MODES[cluster_mode],
                           num_executors=num_nodes, **options)
    return spark.sparkContext


def stop_orca_context() -> None:
    """Stop the SparkSession `init_orca_context` started (nothing happens when none is active)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None:
        spark.stop()
