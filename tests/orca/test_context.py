"""init_orca_context / stop_orca_context over zoo.init_spark."""

import subprocess
import sys

import pytest

from tests.conftest import subprocess_env
from zoo.errors import ZooValueError
from zoo.orca import init_orca_context


def test_init_orca_context_returns_the_active_sessions_context(spark):
    sc = init_orca_context(cluster_mode="local", cores=2, memory="1g")

    assert sc is spark.sparkContext
    assert sc.master == "local[2]"


@pytest.mark.parametrize("kwargs, message", [
    ({"init_ray_on_spark": True}, "runs no Ray"),
    ({"cluster_mode": "mesos"}, r"Expected `cluster_mode` in .*Received: cluster_mode='mesos'"),
    ({"object_store_memory": "1g"}, r"keywords Zoo does not use: \['object_store_memory'\]"),
    ({"cluster_mode": "spark-submit"}, "zoo-submit"),
])
def test_init_orca_context_refuses_what_zoo_does_not_run(kwargs, message):
    with pytest.raises(ZooValueError, match=message):
        init_orca_context(**kwargs)


@pytest.mark.slow
def test_stop_orca_context_stops_the_session():
    script = ("from pyspark.sql import SparkSession\n"
              "from zoo.orca import init_orca_context, stop_orca_context\n"
              "sc = init_orca_context(cores=1, memory='1g', conf={'spark.ui.enabled': 'false'})\n"
              "assert SparkSession.getActiveSession() is not None\n"
              "stop_orca_context()\n"
              "assert SparkSession.getActiveSession() is None and sc._jsc is None\n"
              "stop_orca_context()\n"  # nothing active: nothing to do
              "print('stopped')\n")
    result = subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("stopped")
