"""``zoo-serving init|start|status|stop`` with a managed local redis-server and worker processes."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
import redis
import yaml

from .conftest import LOOPBACK, free_port

REPO = pathlib.Path(__file__).resolve().parents[2]


def cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "zoo.serving.cli", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=180)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_init_start_status_stop(tmp_path, models):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    path, reference = models["cnn"]
    config_path = tmp_path / "config.yaml"
    cli("init", "-c", str(config_path))
    assert cli("init", "-c", str(config_path), check=False).returncode == 1  # never overwrites silently
    config = yaml.safe_load(config_path.read_text())
    redis_port, http_port = free_port(), free_port()
    config["models"][0].update({"name": "cnn", "path": path, "workers": 2})
    config["redis"].update({"port": redis_port, "password": "cli-pw"})
    config["http"]["port"] = http_port
    config_path.write_text(yaml.safe_dump(config))
    assert cli("status", "-c", str(config_path), check=False).returncode == 3
    cli("start", "-c", str(config_path))
    state = json.loads((tmp_path / ".zoo-serving" / "state.json").read_text())
    pids = [p["pid"] for p in [*state["workers"], state["frontend"], state["redis"]]]
    try:
        status = json.loads(cli("status", "-c", str(config_path), "--json").stdout)
        assert status["running"] and status["models"][0]["live_workers"] == 2
        assert all(p["alive"] for p in status["processes"]) and len(status["processes"]) == 4
        x = np.random.default_rng(0).random((3, 3, 8, 8), dtype=np.float32)
        reply = httpx.post(f"http://{LOOPBACK}:{http_port}/predict", json={"instances": x.tolist()}, timeout=20)
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(reply.json()["predictions"], reference(x), rtol=1e-4, atol=1e-5)
        # the managed Redis requires the configured password
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=LOOPBACK, port=redis_port).ping()
        assert cli("start", "-c", str(config_path), check=False).returncode == 1  # already running
    finally:
        cli("stop", "-c", str(config_path))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=LOOPBACK, port=redis_port, password="cli-pw", socket_connect_timeout=1).ping()
    assert cli("status", "-c", str(config_path), check=False).returncode == 3


def test_start_reports_a_missing_model(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text("model:\n  name: m\n  path: missing.onnx\n")
    result = cli("start", "-c", str(config_path), check=False)
    assert result.returncode == 1 and "do not exist" in result.stderr
