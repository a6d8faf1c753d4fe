"""Shared fixtures: one local[2] SparkSession for the whole run."""

import os
import pathlib
import sys

import numpy as np
import pandas as pd
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark():
    from zoo import init_spark

    session = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


def frame_from_arrays(spark, features: np.ndarray, labels: np.ndarray, partitions: int | None = None):
    """A DataFrame with an array<double> `features` column and a double `label` column."""
    pdf = pd.DataFrame({"features": [row.astype(float) for row in features], "label": labels.astype(float)})
    df = spark.createDataFrame(pdf)
    return df.repartition(partitions) if partitions else df


def rows_in_partitions(spark, partitions: list[list[tuple]], schema: str):
    """A DataFrame whose i-th partition holds exactly `partitions[i]` (possibly empty), in order.

    No shuffle: a shuffle may deliver a partition's rows in another order on a cluster, and with
    shuffling off that order decides each training step's batch."""
    rdd = spark.sparkContext.parallelize(range(len(partitions)), len(partitions)).flatMap(lambda i: partitions[i])
    return spark.createDataFrame(rdd, schema)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python or spark-submit: this one, with the checkout first on
    PYTHONPATH and this interpreter as PYSPARK_PYTHON and PYSPARK_DRIVER_PYTHON, plus `extra`."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, **extra}
