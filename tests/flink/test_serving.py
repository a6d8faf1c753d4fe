"""Cluster Serving as a Flink job (zoo/flink/serving.py), started by `zoo-serving start --engine flink`.

A real redis-server on a free loopback port, a model exported with zoo.inference.export, the CLI
of the main environment starting the job in the Flink environment, today's Python client and
HTTP frontend against it, and a task's Python worker killed with SIGKILL under load.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import torch
import yaml

from tests.conftest import ROOT, subprocess_env
from tests.flink.conftest import flink_env
from zoo.serving import InputQueue, OutputQueue
from zoo.serving import defaults as D

pytestmark = pytest.mark.slow
REQUESTS = 3000


@pytest.fixture(scope="module")
def redis_server():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    from zoo.serving.redis_server import RedisServer

    server = RedisServer(host="127.0.0.1").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from zoo.inference import InferenceModel, export

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    path = export(net, np.zeros((2, 4), np.float32), tmp_path_factory.mktemp("model") / "mlp.onnx", format="onnx")
    return path, InferenceModel().load(path)


def _cli(*args: str, flink_python: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = subprocess_env(ZOO_FLINK_PYTHON=flink_python)
    return subprocess.run([sys.executable, "-m", "zoo.serving.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_flink_job_serves_the_same_clients_and_loses_nothing_when_a_task_dies(flink_python, redis_server, model,
                                                                                 tmp_path):
    from zoo.serving.redis_server import free_port

    path, reference = model
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "mlp", "path": path, "workers": 2, "batch_size": 16}],
        "redis": {"url": redis_server.url}, "queue": {"claim_idle_ms": 1000},
        "http": {"port": free_port()}}))
    started = _cli("start", "--engine", "flink", "-c", str(config), flink_python=flink_python)
    assert started.returncode == 0, started.stdout + started.stderr
    client = redis_server.client()
    try:
        state = json.loads((tmp_path / ".zoo-serving" / "state.json").read_text())
        assert state["flink"]["role"] == "flink" and not state["workers"]

        # The HTTP frontend, unchanged, in front of the Flink job.
        http = yaml.safe_load(config.read_text())["http"]
        x = np.random.default_rng(0).random((REQUESTS, 4), dtype=np.float32)
        reply = httpx.post(f"http://127.0.0.1:{http['port']}/predict", json={"instances": x[:4].tolist()}, timeout=30)
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(np.array(reply.json()["predictions"]), reference.predict(x[:4]), atol=1e-5)

        # Under load, kill the Python worker of the task that holds unacknowledged entries.
        inputs = InputQueue(redis_server.url, "mlp")
        outputs = OutputQueue(redis_server.url, "mlp")
        sender = threading.Thread(target=lambda: [inputs.enqueue(f"r{i}", input=x[i]) for i in range(REQUESTS)])
        sender.start()
        stream = D.stream_key("mlp")
        deadline = time.monotonic() + 60
        victim = None
        while victim is None:
            assert time.monotonic() < deadline, "no task held pending entries under load"
            for entry in client.xpending_range(stream, D.CONSUMER_GROUP, "-", "+", 10):
                beat = client.get(D.heartbeat_key("mlp", entry["consumer"].decode()))
                if beat is not None:
                    victim = json.loads(beat)
                    break
        os.kill(victim["pid"], signal.SIGKILL)
        sender.join()
        got = np.stack([outputs.query(f"r{i}", timeout=120) for i in range(REQUESTS)])
        np.testing.assert_allclose(got, reference.predict(x), atol=1e-5)
        assert client.xlen(stream) == 0
        assert client.xpending(stream, D.CONSUMER_GROUP)["pending"] == 0
        # Flink's restart strategy brings the killed task back as a new attempt with its own consumer.
        restarted = victim["consumer"].replace("-a0-", "-a1-").rsplit("-", 2)[0]
        deadline = time.monotonic() + 90
        while not any(k.decode().startswith(D.heartbeat_key("mlp", restarted))
                      for k in client.scan_iter(match=D.heartbeat_pattern("mlp"))):
            assert time.monotonic() < deadline, f"the killed task {victim['consumer']} was not restarted"
            time.sleep(0.2)

        status = _cli("status", "--json", "-c", str(config), flink_python=flink_python)
        assert json.loads(status.stdout)["running"] is True
    finally:
        stopped = _cli("stop", "-c", str(config), flink_python=flink_python)
        client.close()
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / ".zoo-serving" / "state.json").exists()


def test_unreachable_redis_is_a_clear_error(flink_python, model, tmp_path):
    from zoo.serving.redis_server import free_port

    config = tmp_path / "config.yaml"
    url = f"redis://127.0.0.1:{free_port()}/0"
    config.write_text(yaml.safe_dump({"models": [{"name": "mlp", "path": model[0]}], "redis": {"url": url}}))
    proc = subprocess.run([flink_python, "-m", "zoo.flink.serving", "--config", str(config)], cwd=ROOT,
                          env=flink_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"Cannot reach Redis at {url}" in proc.stderr and "fix `redis.url`" in proc.stderr
