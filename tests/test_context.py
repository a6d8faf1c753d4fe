"""init_spark and the cluster settings behind it: every mode's master and conf, what ships to
executors, thread settings, the spark-submit command (zoo-submit), and errors that name the fix.

Running on a real standalone cluster is tested in tests/cluster; YARN and Kubernetes are tested
through the arguments and settings Zoo generates for them (no such cluster here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from zoo.cluster import (
    CLUSTER_DEFAULTS, HEAP_RETURN_FLAGS, KMP_SETTINGS, ClusterRequest, cluster_settings, infer_cluster_mode,
    spark_submit_args, thread_settings,
)
from zoo.context import init_spark
from zoo.errors import MasterUnreachableError, ZooValueError
from zoo.network import check_master_reachable, node_ip
from zoo.packaging import PackedEnv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: zoo-submit as the console script runs it (`python -m zoo.submit`, from the checkout).
ZOO_SUBMIT = [sys.executable, "-m", "zoo.submit"]
ENV = PackedEnv("/envs/venv-abc.tar.gz", "venv", py_files=("/envs/pyfiles/spark_zoo-1.zip",))
IMAGE = {"spark.kubernetes.container.image": "registry.example/spark-py:4.0"}


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_settings_stay_what_existing_callers_got(spark):
    spec = cluster_settings(master="local[2]", memory="2g", conf={"spark.sql.shuffle.partitions": "4"})
    assert (spec.cluster_mode, spec.master, spec.deploy_mode) == ("local", "local[2]", "client")
    assert spec.conf["spark.driver.memory"] == "2g"
    assert spec.conf["spark.pyspark.python"] == spec.conf["spark.pyspark.driver.python"] == sys.executable
    assert not set(CLUSTER_DEFAULTS) & set(spec.conf)
    assert not any("archives" in key for key in spec.conf)
    # The shared session was made by init_spark("local[2]", conf=...): the same settings are live.
    for key in ("spark.sql.execution.arrow.pyspark.enabled", "spark.python.worker.reuse",
                "spark.executorEnv.OMP_NUM_THREADS", "spark.executorEnv.KMP_BLOCKTIME"):
        assert spark.sparkContext.getConf().get(key) == spec.conf[key]


def test_python_workers_get_one_thread_per_task_core(spark):
    def probe(_):
        import os

        import torch

        yield os.environ.get("OMP_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS"), torch.get_num_threads(), \
            os.environ.get("KMP_AFFINITY")

    seen = set(spark.sparkContext.parallelize(range(2), 2).mapPartitions(probe).collect())
    assert seen == {("1", "1", 1, KMP_SETTINGS["KMP_AFFINITY"])}


def test_the_driver_jvm_runs_with_the_heap_return_flags_and_the_users_own_values_win(spark):
    arguments = list(spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
                     .getInputArguments())
    assert set(HEAP_RETURN_FLAGS) <= set(arguments), arguments
    spec = cluster_settings(master="local[2]", conf={"spark.driver.extraJavaOptions": "-Dx=1 -XX:MaxHeapFreeRatio=50"})
    assert spec.conf["spark.driver.extraJavaOptions"].split() == [
        "-Dx=1", "-XX:MaxHeapFreeRatio=50", "-XX:G1PeriodicGCInterval=10000", "-XX:MinHeapFreeRatio=10"]
    assert spec.conf["spark.executor.extraJavaOptions"].split() == list(HEAP_RETURN_FLAGS)


def test_thread_settings_follow_task_cpus_and_each_can_be_overridden():
    assert thread_settings(4) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4",
                                  "TF_NUM_INTRAOP_THREADS": "4", "TF_NUM_INTEROP_THREADS": "1",
                                  "KMP_BLOCKTIME": "0", "KMP_AFFINITY": "granularity=fine,compact,1,0"}
    conf = cluster_settings("standalone", "spark://h:7077", cores=4, conf={"spark.task.cpus": "4"}).conf
    assert conf["spark.executorEnv.OMP_NUM_THREADS"] == conf["spark.executorEnv.MKL_NUM_THREADS"] == "4"
    conf = cluster_settings("standalone", "spark://h:7077", conf={"spark.executorEnv.OMP_NUM_THREADS": "3",
                                                                  "spark.executorEnv.KMP_BLOCKTIME": "200"}).conf
    assert conf["spark.executorEnv.OMP_NUM_THREADS"] == "3" and conf["spark.executorEnv.KMP_BLOCKTIME"] == "200"
    assert conf["spark.executorEnv.MKL_NUM_THREADS"] == "1"
    with pytest.raises(ZooValueError, match="task cores >= 1"):
        thread_settings(0)


@pytest.mark.parametrize("mode, master, master_out, deploy, expected", [
    ("local", None, "local[*]", "client", {}),
    ("local-cluster", None, "local-cluster[3,2,2048]", "client", {"spark.executor.memory": "2g"}),
    ("standalone", "spark://m:7077", "spark://m:7077", "client", {"spark.cores.max": "6"}),
    ("yarn-client", None, "yarn", "client", {"spark.executor.instances": "3"}),
    ("yarn-cluster", None, "yarn", "cluster", {"spark.executor.instances": "3"}),
    ("k8s-client", "k8s://https://api:6443", "k8s://https://api:6443", "client",
     {"spark.executor.instances": "3", "spark.driver.bindAddress": "0.0.0.0", **IMAGE}),
])
def test_each_cluster_mode_resolves_to_its_master_and_resources(mode, master, master_out, deploy, expected):
    spec = cluster_settings(mode, master, cores=2, memory="2g", num_executors=3, driver_cores=1,
                            driver_memory="3g", conf=IMAGE if mode == "k8s-client" else None)
    assert (spec.cluster_mode, spec.master, spec.deploy_mode) == (mode, master_out, deploy)
    assert spec.conf["spark.driver.cores"] == "1" and spec.conf["spark.driver.memory"] == "3g"
    assert spec.conf["spark.executor.cores"] == "2"
    for key, value in expected.items():
        assert spec.conf[key] == value, key
    cluster_only = {k: spec.conf.get(k) for k in CLUSTER_DEFAULTS}
    assert cluster_only == ({k: None for k in CLUSTER_DEFAULTS} if mode == "local" else CLUSTER_DEFAULTS)


@pytest.mark.parametrize("mode, master, archive_key", [
    ("standalone", "spark://m:7077", "spark.archives"),
    ("k8s-client", "k8s://https://api:6443", "spark.archives"),
    ("yarn-client", None, "spark.yarn.dist.archives"),
    ("yarn-cluster", None, "spark.yarn.dist.archives"),
])
def test_the_packed_env_ships_and_executors_run_its_python(mode, master, archive_key):
    spec = cluster_settings(mode, master, env=ENV, conf=IMAGE if mode == "k8s-client" else None)
    other = {"spark.archives", "spark.yarn.dist.archives"} - {archive_key}
    assert spec.conf[archive_key] == "/envs/venv-abc.tar.gz#env" and not other & set(spec.conf)
    assert spec.conf["spark.pyspark.python"] == spec.conf["spark.executorEnv.PYSPARK_PYTHON"] == "./env/bin/python"
    assert spec.executor_python == "./env/bin/python"
    assert spec.py_files == ENV.py_files
    if mode == "yarn-cluster":  # the driver runs in YARN's application master, inside the archive too
        assert spec.conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./env/bin/python"
        assert "spark.pyspark.driver.python" not in spec.conf
    else:  # client mode: the driver is this process
        assert spec.conf["spark.pyspark.driver.python"] == sys.executable


def test_spark_submit_command_carries_every_setting():
    spec = cluster_settings("yarn-cluster", num_executors=4, cores=2, memory="8g", env=ENV,
                            conf={"spark.yarn.queue": "ml"})
    command = spark_submit_args(spec, "train.py", ["--epochs", "3"], "/opt/spark/bin/spark-submit",
                                ["--jars", "extra.jar"])
    assert command[:5] == ["/opt/spark/bin/spark-submit", "--master", "yarn", "--deploy-mode", "cluster"]
    assert command[-5:] == ["--jars", "extra.jar", "train.py", "--epochs", "3"]
    confs = dict(command[i + 1].split("=", 1) for i, c in enumerate(command) if c == "--conf")
    assert confs == spec.conf
    assert command[command.index("--py-files") + 1] == "/envs/pyfiles/spark_zoo-1.zip"


def _dry_run(*args: str) -> tuple[list[str], str]:
    proc = subprocess.run([*ZOO_SUBMIT, *args], capture_output=True, text=True, cwd=ROOT)
    return proc.stdout.splitlines() if proc.returncode == 0 else [], proc.stderr


def _confs(lines: list[str]) -> dict[str, str]:
    return dict(lines[i + 1].split("=", 1) for i, c in enumerate(lines) if c == "--conf")


def test_a_request_resolves_to_the_settings_of_its_named_arguments_and_the_driver_host_it_is_given():
    request = ClusterRequest(cluster_mode="k8s-client", master="k8s://https://api:6443", cores=2, num_executors=3,
                             conf=IMAGE)
    # zoo.cluster opens no socket: the driver's address is what the caller found with zoo.network.
    assert "spark.driver.host" not in request.spec().conf
    spec = request.spec(env=ENV, driver_host=node_ip())
    assert spec == cluster_settings("k8s-client", "k8s://https://api:6443", cores=2, num_executors=3, conf=IMAGE,
                                    env=ENV, driver_host=node_ip())
    assert spec.conf["spark.driver.host"] == node_ip() and spec.conf["spark.executor.instances"] == "3"
    assert spec.conf["spark.archives"] == "/envs/venv-abc.tar.gz#env"
    with pytest.raises(ZooValueError, match="Expected `num_executors` to be a positive int"):
        ClusterRequest(cluster_mode="yarn-client", num_executors=0).spec()


def test_zoo_submit_generates_yarn_cluster_arguments(tmp_path):
    archive = tmp_path / "team-env.tar.gz"
    archive.write_bytes(b"")
    lines, err = _dry_run("--cluster-mode", "yarn-cluster", "--num-executors", "4", "--executor-cores", "8",
                          "--executor-memory", "16g", "--driver-memory", "4g", "--archive", str(archive),
                          "--conf", "spark.task.cpus=8", "--conf", "spark.yarn.queue=ml", "--jars", "x.jar",
                          "--dry-run", "train.py", "--lr", "0.1")
    assert lines, err
    assert lines[0].endswith(os.path.join("bin", "spark-submit"))
    assert lines[1:5] == ["--master", "yarn", "--deploy-mode", "cluster"]
    assert lines[-5:] == ["--jars", "x.jar", "train.py", "--lr", "0.1"]
    conf = _confs(lines)
    assert conf["spark.yarn.dist.archives"] == f"{archive}#env"
    assert conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == conf["spark.executorEnv.PYSPARK_PYTHON"] == \
        conf["spark.pyspark.python"] == "./env/bin/python"
    assert (conf["spark.executor.instances"], conf["spark.executor.cores"], conf["spark.executor.memory"],
            conf["spark.driver.memory"]) == ("4", "8", "16g", "4g")
    # Eight cores per task: every thread pool sized to 8.
    assert conf["spark.executorEnv.OMP_NUM_THREADS"] == conf["spark.executorEnv.MKL_NUM_THREADS"] == "8"
    assert conf["spark.yarn.queue"] == "ml" and conf["spark.stage.maxConsecutiveAttempts"] == "4"


def test_zoo_submit_generates_k8s_client_arguments():
    lines, err = _dry_run("--cluster-mode", "k8s-client", "--master", "k8s://https://10.0.0.1:6443",
                          "--num-executors", "2", "--archive", "s3a://envs/team.tar.gz",
                          "--conf", "spark.kubernetes.container.image=registry/spark-py:4.0",
                          "--conf", "spark.kubernetes.namespace=ml", "--dry-run", "app.py")
    assert lines, err
    assert lines[1:5] == ["--master", "k8s://https://10.0.0.1:6443", "--deploy-mode", "client"]
    conf = _confs(lines)
    assert conf["spark.archives"] == "s3a://envs/team.tar.gz#env"
    assert conf["spark.kubernetes.container.image"] == "registry/spark-py:4.0"
    assert conf["spark.kubernetes.namespace"] == "ml" and conf["spark.executor.instances"] == "2"
    assert conf["spark.pyspark.driver.python"] == sys.executable
    assert conf["spark.driver.bindAddress"] == "0.0.0.0" and conf["spark.driver.host"]


def test_zoo_submit_is_installed_as_a_console_script():
    script = os.path.join(os.path.dirname(sys.executable), "zoo-submit")
    assert os.access(script, os.X_OK), f"{script} is missing: reinstall Zoo (pip install -e .)"
    proc = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "spark-submit that packs the active Python environment" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--deploy-mode", "cluster", "app.py"], "Use --cluster-mode"),
    (["--cluster-mode", "yarn-client", "--no-pack"], "Expected the application file"),
    (["--conf", "novalue", "--no-pack", "app.py"], "--conf takes KEY=VALUE"),
    (["--archive", "a.tar.gz", "--no-pack", "app.py"], "contradict"),
    (["--cluster-mode", "mesos", "--no-pack", "app.py"], "Expected `cluster_mode` to be one of"),
    (["--cluster-mode", "standalone", "--no-pack", "app.py"], "spark://host:port"),
    (["--cluster-mode", "k8s-client", "--master", "k8s://https://a:1", "--no-pack", "app.py"],
     "spark.kubernetes.container.image"),
    (["--master", "yarn", "--num-executors", "two", "--no-pack", "app.py"], "whole number"),
])
def test_zoo_submit_rejects_bad_command_lines_with_the_fix(args, message):
    proc = subprocess.run([*ZOO_SUBMIT, *args, "--dry-run"], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_unreachable_standalone_master_is_reported_with_the_url_tried():
    port = closed_port()
    url = f"spark://127.0.0.1:{port}"
    with pytest.raises(MasterUnreachableError) as info:
        init_spark(cluster_mode="standalone", master=url, env_archive=None, master_timeout_s=2)
    message = str(info.value)
    assert f"Cannot reach the Spark master at {url}" in message
    assert f"127.0.0.1:{port}" in message and "refused" in message.lower()
    assert "start-master.sh" in message
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(MasterUnreachableError, match=r"no-such-host\.invalid:7077"):
        check_master_reachable("spark://no-such-host.invalid:7077", timeout_s=2)
    with pytest.raises(MasterUnreachableError, match=f"k8s://https://127.0.0.1:{port}.*kubectl cluster-info"):
        init_spark(cluster_mode="k8s-client", master=f"k8s://https://127.0.0.1:{port}", conf=IMAGE,
                   env_archive=None, master_timeout_s=2)


def test_zoo_submit_reports_an_unreachable_master_before_packing():
    url = f"spark://127.0.0.1:{closed_port()}"
    proc = subprocess.run([*ZOO_SUBMIT, "--cluster-mode", "standalone", "--master", url, "app.py"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and f"Cannot reach the Spark master at {url}" in proc.stderr, proc.stderr
    assert "Packing" not in proc.stderr


def test_yarn_needs_its_configuration_and_a_reachable_resource_manager(tmp_path, monkeypatch):
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    with pytest.raises(ZooValueError, match="set HADOOP_CONF_DIR"):
        init_spark(cluster_mode="yarn-client", env_archive=None)
    port = closed_port()
    (tmp_path / "yarn-site.xml").write_text(
        "<configuration><property><name>yarn.resourcemanager.address</name>"
        f"<value>127.0.0.1:{port}</value></property></configuration>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    with pytest.raises(MasterUnreachableError, match=f"master at yarn \\(tried 127.0.0.1:{port}"):
        init_spark(cluster_mode="yarn-client", env_archive=None, master_timeout_s=2)


def test_yarn_cluster_from_a_running_python_points_to_zoo_submit():
    with pytest.raises(ZooValueError, match="zoo-submit --cluster-mode yarn-cluster"):
        init_spark(cluster_mode="yarn-cluster")


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ZooValueError, match="Expected `cluster_mode` to be one of"):
        cluster_settings("mesos")
    with pytest.raises(ZooValueError, match="spark://host:port"):
        cluster_settings("standalone", "local[*]")
    with pytest.raises(ZooValueError, match="k8s://https://host:6443"):
        cluster_settings("k8s-client", "spark://m:7077")
    with pytest.raises(ZooValueError, match="Expected `num_executors` to be a positive int"):
        cluster_settings("yarn-client", num_executors=0)
    with pytest.raises(ZooValueError, match="memory like '512m'"):
        cluster_settings("local-cluster", memory="lots")
    with pytest.raises(ZooValueError, match="Expected `master` to be a Spark master URL"):
        infer_cluster_mode("mesos://m:5050")
    with socket.socket() as listener:  # something answers on the port, so init_spark gets past the check
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(ZooValueError, match="Expected `env_archive`"):
            init_spark(cluster_mode="standalone", master=f"spark://127.0.0.1:{listener.getsockname()[1]}",
                       env_archive=3)
    assert infer_cluster_mode("local") == infer_cluster_mode("local[4]") == "local"
    assert infer_cluster_mode("local-cluster[2,1,1024]") == "local-cluster"
    assert infer_cluster_mode("yarn") == "yarn-client" and infer_cluster_mode("k8s://https://a:1") == "k8s-client"
