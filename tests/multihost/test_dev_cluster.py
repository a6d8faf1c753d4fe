"""The dev cluster's promises, checked for real: private /dev/shm and /tmp per host, one shared
directory, hosts that reach each other over the switch, shaped links, a Spark standalone cluster
whose tasks run on the worker hosts (and join a gloo group across them), S3 from any host,
executors killed and replaced, and nothing left behind by `down`, the CLI or a killed owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest

from tests.multihost.conftest import CORES, HERE, HOSTS
from zoo.devcluster import DevCluster, DevClusterConfig, cli, network, sweep_leftovers
from zoo.devcluster.processes import alive, wait_for
from zoo.devcluster.spark import WORKER_CLASS
from zoo.errors import DevClusterError, NamespacesUnavailableError, ZooValueError

ROOT = os.path.dirname(os.path.dirname(HERE))
BULK = os.path.join(HERE, "bulk.py")
SCRIPT = os.path.join(ROOT, "scripts", "dev-cluster")
#: 12.5 MB: one second at 100 Mbit/s.
BULK_BYTES = 12_500_000
SHAPED_RATE, SHAPED_BITS = "100mbit", 100e6


def _cluster_netns(name: str) -> list[str]:
    """The namespaces of cluster `name` that `ip netns list` shows."""
    listed = [line.split()[0] for line in network.ip("netns", "list").splitlines() if line.strip()]
    return [ns for ns in listed if ns.startswith(f"{network.NETNS_PREFIX}{name}-")]


def _root_links() -> list[str]:
    """This (root) namespace's links, as `ip -o link` names them."""
    return sorted(line.split(":")[1].strip() for line in network.ip("-o", "link").splitlines())


# ---------------------------------------------------------------------------------- no cluster needed
def test_config_errors_name_the_field_and_the_fix():
    with pytest.raises(ZooValueError, match=r"Expected `hosts` to be a positive int\. Received: hosts=0"):
        DevClusterConfig(hosts=0)
    with pytest.raises(ZooValueError, match="lowercase letters, digits or '_'.*name='my-cluster'"):
        DevClusterConfig(name="my-cluster")
    with pytest.raises(ZooValueError, match=r"e\.g\. '1gbit'.*Received: 'fast'"):
        DevClusterConfig(bandwidth="fast")
    with pytest.raises(ZooValueError, match=r"`memory`.*e\.g\. '2g'.*memory='2 GB'"):
        DevClusterConfig(memory="2 GB")
    assert network.rate_bits("1gbit") == 1e9 and network.rate_bits("10mbps") == 80e6


def test_without_namespaces_up_and_the_cli_say_why(monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = network.namespaces_unavailable_reason()
    assert "needs root" in reason and "uid 1000" in reason
    with pytest.raises(NamespacesUnavailableError, match="needs root"):
        DevCluster(name="never").up()
    assert cli.main(["up", "--name", "never"]) == 1
    assert "needs root" in capsys.readouterr().err
    assert not _cluster_netns("never")


def test_a_python_under_a_hosts_private_tmp_is_refused_before_anything_starts():
    if network.namespaces_unavailable_reason():
        pytest.skip(network.namespaces_unavailable_reason())
    cluster = DevCluster(name="privtmp", hosts=1, spark=False, s3=False)
    cluster.python = "/tmp/checkout/.venv/bin/python"  # where a clone under /tmp puts its venv
    with pytest.raises(DevClusterError, match=r"Received: /tmp/checkout/\.venv/bin/python, under /tmp, which each "
                                              r"host mounts privately\. Move the checkout"):
        cluster.up()
    assert not _cluster_netns("privtmp") and not os.path.exists("/var/tmp/zoo-dev-cluster-privtmp")


# ---------------------------------------------------------------------------------- isolation
def test_dev_shm_and_tmp_are_private_to_each_host(dev_cluster):
    name = f"zoo-private-{uuid.uuid4().hex}"
    paths = [f"/dev/shm/{name}", f"/tmp/{name}"]
    host1, host2 = dev_cluster.workers[:2]
    host1.run(["sh", "-c", " && ".join(f"echo host1 > {p}" for p in paths)], check=True)
    seen = {host.name: host.run(["sh", "-c", "".join(f"test -e {p} && echo {p};" for p in paths) + "true"],
                                check=True).stdout.split()
            for host in (host1, host2, dev_cluster.edge)}
    assert seen == {"host1": paths, "host2": [], "edge": []}
    assert not any(os.path.exists(p) for p in paths)  # nor in the namespace pytest runs in


def test_the_shared_dir_is_the_same_on_every_host(dev_cluster):
    path = os.path.join(dev_cluster.shared_dir, f"from-host1-{uuid.uuid4().hex}")
    dev_cluster.workers[0].run(["sh", "-c", f'echo "$ZOO_DEV_CLUSTER_HOST" > {path}'], check=True)
    for host in (dev_cluster.workers[1], dev_cluster.edge):
        assert host.run(["cat", path], check=True).stdout == "host1\n"
    with open(path) as handle:
        assert handle.read() == "host1\n"


def test_each_host_has_loopback_and_eth0_only_and_reaches_the_others(dev_cluster):
    for host in dev_cluster.hosts.values():
        addresses = host.run(["ip", "-o", "-4", "addr"], check=True).stdout.split("\n")
        assert [line.split()[1:4] for line in addresses if line] == [
            ["lo", "inet", "127.0.0.1/8"], ["eth0", "inet", f"{host.ip}/24"]]
        assert "default" not in host.run(["ip", "route"], check=True).stdout  # nothing leaves the cluster
    # A listener on host2's address answers clients on host1 and on the edge, over the switch.
    host2 = dev_cluster.workers[1]
    server = host2.popen([sys.executable, "-c",
                          "import socket, os\n"
                          f"s = socket.create_server(('{host2.ip}', 7000))\n"
                          "for _ in range(2):\n"
                          "    c, peer = s.accept(); c.sendall(f'{os.environ[\"ZOO_DEV_CLUSTER_HOST\"]} saw {peer[0]}'.encode()); c.close()\n"],
                         stdout=subprocess.DEVNULL)
    client = ("import socket, time\n"
              "for _ in range(200):\n"
              "    try:\n"
              f"        print(socket.create_connection(('{host2.ip}', 7000)).recv(100).decode()); break\n"
              "    except ConnectionRefusedError: time.sleep(0.05)\n")
    try:
        for host in (dev_cluster.workers[0], dev_cluster.edge):
            assert host.run([sys.executable, "-c", client], check=True).stdout.strip() == f"host2 saw {host.ip}"
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _transfer_seconds(cluster: DevCluster) -> float:
    """Seconds host2 takes to receive `BULK_BYTES` from host1 (first byte to last)."""
    receiver, sender = cluster.workers[1], cluster.workers[0]
    args = [receiver.ip, "7001", str(BULK_BYTES)]
    receiving = receiver.popen([sys.executable, BULK, "receive", *args], stdout=subprocess.PIPE, text=True)
    try:
        sender.run([sys.executable, BULK, "send", *args], check=True, timeout=60)
        out, _ = receiving.communicate(timeout=60)
    finally:
        if receiving.poll() is None:
            os.killpg(receiving.pid, signal.SIGKILL)
            receiving.wait()
    result = json.loads(out)
    assert result["bytes"] == BULK_BYTES
    return result["seconds"]


def test_shaping_limits_a_bulk_transfer_to_the_rate(dev_cluster):
    expected = BULK_BYTES * 8 / SHAPED_BITS  # 1 s
    dev_cluster.shape(SHAPED_RATE)
    try:
        assert dev_cluster.status()["hosts"][1]["shaping"] == SHAPED_RATE
        shaped = _transfer_seconds(dev_cluster)
    finally:
        dev_cluster.shape(None)
    unshaped = _transfer_seconds(dev_cluster)
    # Headers count against the rate too (~4 %), so a transfer takes a little longer than bytes/rate;
    # the upper bound leaves room for a busy machine.
    assert 0.8 * expected < shaped < 2.5 * expected, (shaped, expected)
    assert unshaped < shaped / 3, (unshaped, shaped)
    assert dev_cluster.status()["hosts"][1]["shaping"] is None


# ---------------------------------------------------------------------------------- Spark
def test_the_master_lists_one_alive_worker_per_worker_host(dev_cluster):
    workers = dev_cluster.alive_workers()
    assert sorted(w["host"] for w in workers) == sorted(h.ip for h in dev_cluster.workers)
    assert {w["cores"] for w in workers} == {CORES}


def test_a_driver_on_the_edge_runs_tasks_on_the_worker_hosts(dev_cluster, edge_driver):
    assert edge_driver.hello["master"] == dev_cluster.master_url
    answer = edge_driver.ask(f"tasks {HOSTS * CORES}")
    worker_ips = sorted(h.ip for h in dev_cluster.workers)
    tasks = answer["tasks"]
    assert sorted(set(answer["executors"].values())) == worker_ips
    # Each task ran in the namespace of the host its executor is on, two per host (2 cores each).
    assert sorted(t["own_ip"] for t in tasks) == sorted(worker_ips * CORES)
    assert all(t["executor_address"].split(":")[0] == t["own_ip"] for t in tasks)
    assert {t["gloo_ifname"] for t in tasks} == {"eth0"}


def test_gloo_joins_one_group_across_the_worker_hosts(dev_cluster, edge_driver):
    n = HOSTS * CORES
    tasks = edge_driver.ask(f"gloo {n}")["tasks"]
    assert [t["sum"] for t in tasks] == [n * (n + 1) / 2] * n
    assert sorted({t["own_ip"] for t in tasks}) == sorted(h.ip for h in dev_cluster.workers)


def test_killed_executors_die_and_spark_starts_new_ones(dev_cluster, edge_driver):
    edge_driver.ask(f"tasks {HOSTS * CORES}")  # Python workers running under every executor
    host1 = dev_cluster.workers[0]
    old = dev_cluster.executors(host1)
    assert len(old) == 1, old
    killed = dev_cluster.kill_executors(host1)
    assert old[0]["pid"] in killed
    assert any("python" in os.path.basename(argv[0]) for argv in killed.values() if argv), killed
    assert not any(alive(pid) for pid in killed)
    new = wait_for(lambda: [e for e in dev_cluster.executors(host1) if e["pid"] not in killed],
                   "a new executor on host1", timeout_s=120)
    assert new[0]["executor_id"] != old[0]["executor_id"] and new[0]["app_id"] == old[0]["app_id"]
    answer = edge_driver.ask(f"tasks {HOSTS * CORES} {old[0]['executor_id']}")
    assert answer["executors"][new[0]["executor_id"]] == host1.ip
    assert {t["jvm_pid"] for t in answer["tasks"] if t["own_ip"] == host1.ip} == {new[0]["pid"]}


def test_a_killed_host_loses_its_worker_until_restart_worker(dev_cluster):
    host2 = dev_cluster.workers[1]
    killed = dev_cluster.kill_host(host2)
    assert any(WORKER_CLASS in argv for argv in killed.values()), killed
    assert host2.pids() == [host2.anchor_pid]  # the machine is empty, its namespaces stay
    wait_for(lambda: host2.ip not in {w["host"] for w in dev_cluster.alive_workers()},
             "the master to drop host2's worker", timeout_s=120)
    dev_cluster.restart_worker(host2)
    assert sorted(w["host"] for w in dev_cluster.alive_workers()) == sorted(h.ip for h in dev_cluster.workers)


# ---------------------------------------------------------------------------------- services
def test_s3_works_from_a_worker_host_and_the_edge(dev_cluster):
    key = f"probe/{uuid.uuid4().hex}.txt"
    put = ("import boto3, os\n"
           f"boto3.client('s3').put_object(Bucket=os.environ['ZOO_DEV_S3_BUCKET'], Key='{key}', Body=b'from host1')\n")
    get = ("import boto3, os\n"
           f"print(boto3.client('s3').get_object(Bucket=os.environ['ZOO_DEV_S3_BUCKET'], Key='{key}')['Body'].read().decode())\n")
    dev_cluster.workers[0].run([sys.executable, "-c", put], check=True)
    for host in (dev_cluster.workers[1], dev_cluster.edge):
        assert host.run([sys.executable, "-c", get], check=True).stdout == "from host1\n"
    assert dev_cluster.s3_env()["AWS_ENDPOINT_URL"] == dev_cluster.s3_endpoint == "http://10.77.0.10:9000"


def test_redis_on_one_host_answers_the_others(dev_cluster):
    pytest.importorskip("redis", reason="the Redis client comes with the serving extra: pip install 'spark-zoo[serving]'")
    host2 = dev_cluster.workers[1]
    url = dev_cluster.start_redis(host2, port=6380)
    assert url == f"redis://{host2.ip}:6380" and url in dev_cluster.status()["redis"]
    client = f"import redis; r = redis.Redis.from_url('{url}'); r.set('k', 'from edge'); print(r.get('k').decode())"
    assert dev_cluster.edge.run([sys.executable, "-c", client], check=True).stdout == "from edge\n"


# ---------------------------------------------------------------------------------- leaving nothing behind
def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_cli_up_status_exec_down_leaves_nothing_behind():
    if network.namespaces_unavailable_reason():
        pytest.skip(network.namespaces_unavailable_reason())
    name = f"cli{os.getpid()}"
    links = _root_links()
    up = _cli("up", "--name", name, "--hosts", "1", "--cores", "1", "--memory", "1g", "--no-s3", timeout=240)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "spark://10.77.0.10:7077" in up.stdout and f"exec --name {name} edge -- python" in up.stdout
        with open(f"/var/tmp/zoo-dev-cluster-{name}/state.json") as handle:
            saved = json.load(handle)
        pids = [h["anchor_pid"] for h in saved["hosts"]] + [d["pid"] for d in saved["daemons"]]
        assert saved.get("owner_pid") is None and all(alive(pid) for pid in pids)  # outlives `up`
        status = json.loads(_cli("status", "--name", name, "--json").stdout)
        assert [w["host"] for w in status["workers"]] == ["10.77.0.11"]
        on_host = _cli("exec", "--name", name, "host1", "--", "sh", "-c", "echo $SPARK_LOCAL_IP; ip -o -4 addr show eth0")
        assert on_host.stdout.startswith("10.77.0.11\n") and "inet 10.77.0.11/24" in on_host.stdout, on_host
        on_edge = _cli("exec", "--name", name, "edge", "--", "python", "-c", "import os; print(os.environ['MASTER'])")
        assert on_edge.stdout == "spark://10.77.0.10:7077\n", on_edge
        assert _root_links() == links  # nothing was added to the root namespace
    finally:
        down = _cli("down", "--name", name)
    assert down.returncode == 0 and "is down" in down.stdout, down
    assert not _cluster_netns(name)
    assert not any(alive(pid) for pid in pids)
    assert not os.path.exists(f"/var/tmp/zoo-dev-cluster-{name}")
    assert _root_links() == links
    assert _cli("status", "--name", name).returncode == 1


OWNER = """
import json, sys
from zoo.devcluster import DevCluster
cluster = DevCluster(name=sys.argv[1], hosts=1, spark=False, s3=False).up()
extra = cluster.host("host1").popen(["sleep", "600"])
print(json.dumps({"pids": [h.anchor_pid for h in cluster.hosts.values()] + [extra.pid],
                  "reaper": cluster._reaper_pid}), flush=True)
sys.stdin.read()
"""


def _start_owner(name: str) -> tuple[subprocess.Popen, dict]:
    if network.namespaces_unavailable_reason():
        pytest.skip(network.namespaces_unavailable_reason())
    owner = subprocess.Popen([sys.executable, "-c", OWNER, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    started = json.loads(owner.stdout.readline())
    assert len(_cluster_netns(name)) == 3 and all(alive(pid) for pid in started["pids"])
    return owner, started


def _kill(proc_or_pid) -> None:
    pid = proc_or_pid if isinstance(proc_or_pid, int) else proc_or_pid.pid
    os.kill(pid, signal.SIGKILL)
    if not isinstance(proc_or_pid, int):
        proc_or_pid.wait()


def test_a_killed_owner_leaves_nothing_behind():
    name = f"own{os.getpid()}"
    owner, started = _start_owner(name)
    _kill(owner)  # no atexit, no finally: the reaper tears the cluster down
    wait_for(lambda: not _cluster_netns(name) and not any(alive(p) for p in started["pids"]),
             f"the reaper of {name}", timeout_s=30)
    assert not os.path.exists(f"/var/tmp/zoo-dev-cluster-{name}")


def test_the_next_up_sweeps_what_a_killed_run_left():
    name = f"left{os.getpid()}"
    owner, started = _start_owner(name)
    _kill(started["reaper"])
    _kill(owner)
    assert len(_cluster_netns(name)) == 3  # left behind: nobody tore it down
    swept = sweep_leftovers()  # what DevCluster.up (and so the dev_cluster fixture) runs first
    assert name in swept and "has exited" in swept[name]
    assert not _cluster_netns(name) and not any(alive(p) for p in started["pids"])
    assert not os.path.exists(f"/var/tmp/zoo-dev-cluster-{name}")
