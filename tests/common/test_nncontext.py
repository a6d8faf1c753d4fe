"""zoo.common.nncontext: AZ's context functions reach init_spark with AZ's arguments."""

import pytest
from pyspark import SparkContext

from zoo.common.nncontext import (
    create_spark_conf, init_nncontext, init_spark_on_local, init_spark_on_yarn, init_spark_standalone,
)
from zoo.devcluster.processes import free_port
from zoo.errors import MasterUnreachableError, ZooValueError


def test_init_nncontext_and_on_local_return_the_spark_context(spark):
    sc = init_nncontext(create_spark_conf().setMaster("local[2]").setAppName("az"))
    assert isinstance(sc, SparkContext) and sc is spark.sparkContext
    assert init_spark_on_local(cores=2) is spark.sparkContext


def test_standalone_without_a_master_says_to_start_one():
    with pytest.raises(ZooValueError, match="spark://host:port"):
        init_spark_standalone(num_executors=1, executor_cores=1)


def test_standalone_with_a_dead_master_names_it():
    master = f"spark://127.0.0.1:{free_port()}"
    with pytest.raises(MasterUnreachableError, match=master):
        init_spark_standalone(num_executors=1, executor_cores=1, master=master)


def test_yarn_reads_the_resource_manager_from_hadoop_conf(tmp_path, monkeypatch):
    monkeypatch.setenv("HADOOP_CONF_DIR", "unset")  # restored after the test: the call sets it
    monkeypatch.setenv("HADOOP_USER_NAME", "unset")
    port = free_port()
    (tmp_path / "yarn-site.xml").write_text(
        "<configuration><property><name>yarn.resourcemanager.address</name>"
        f"<value>127.0.0.1:{port}</value></property></configuration>")
    with pytest.raises(MasterUnreachableError, match=str(port)):
        init_spark_on_yarn(str(tmp_path), num_executors=1, executor_cores=1)


def test_yarn_with_another_conda_env_says_how_to_ship_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CONDA_DEFAULT_ENV", raising=False)
    with pytest.raises(ZooValueError, match="conda pack -n other"):
        init_spark_on_yarn(str(tmp_path), conda_name="other", num_executors=1, executor_cores=1)
