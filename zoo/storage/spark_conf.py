"""What the active SparkContext says about storage, read without ever importing pyspark.

The driver has a SparkContext; executors' Python workers do not. When pyspark was never imported
there is no SparkContext, so this module looks in ``sys.modules`` instead of importing it.
"""

from __future__ import annotations

import sys


def active_context():
    """The active SparkContext of this process (the driver), or None (an executor, or no Spark)."""
    pyspark = sys.modules.get("pyspark")
    if pyspark is None:
        return None
    return getattr(pyspark, "SparkContext", None) and pyspark.SparkContext._active_spark_context


def hadoop_setting(name: str) -> str | None:
    """A setting of the active SparkContext's Hadoop configuration (``spark.hadoop.<name>`` in the
    Spark conf, core-site.xml, or set at run time), or None without a SparkContext or value."""
    sc = active_context()
    if sc is None:
        return None
    try:
        value = sc._jsc.hadoopConfiguration().get(name)
    except Exception:  # noqa: BLE001 - a stopping JVM: fall back to the Spark conf the user wrote
        value = sc.getConf().get(f"spark.hadoop.{name}", None)
    return None if value is None else str(value).strip()
