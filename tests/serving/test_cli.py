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

from .conftest import LOOPBACK, free_port, make_certificates

REPO = pathlib.Path(__file__).resolve().parents[2]


def cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "zoo.serving.cli", *args], cwd=REPO, capture_output=True,
                            text=True, timeout=180)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.slow
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
        # the managed Redis requires the configured password, and keeps an append-only file
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host=LOOPBACK, port=redis_port).ping()
        managed = redis.Redis(host=LOOPBACK, port=redis_port, password="cli-pw")
        settings = managed.config_get("append*")
        assert (settings["appendonly"], settings["appendfsync"]) == ("yes", "everysec")
        assert cli("start", "-c", str(config_path), check=False).returncode == 1  # already running
    finally:
        cli("stop", "-c", str(config_path))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=LOOPBACK, port=redis_port, password="cli-pw", socket_connect_timeout=1).ping()
    assert cli("status", "-c", str(config_path), check=False).returncode == 3


def test_start_serves_tls_from_the_managed_redis(tmp_path, models):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    ca, cert, key = make_certificates(tmp_path)
    path, reference = models["cnn"]
    redis_port, http_port = free_port(), free_port()
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({
        "model": {"name": "cnn", "path": path, "workers": 1},
        "redis": {"port": redis_port, "password": "tls-pw", "tls_ca_cert": ca, "server_tls_cert": cert,
                  "server_tls_key": key},
        "http": {"port": http_port}}))
    cli("start", "-c", str(config_path))
    try:
        x = np.random.default_rng(1).random((2, 3, 8, 8), dtype=np.float32)
        reply = httpx.post(f"http://{LOOPBACK}:{http_port}/predict", json={"instances": x.tolist()}, timeout=20)
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(reply.json()["predictions"], reference(x), rtol=1e-4, atol=1e-5)
        url = f"rediss://{LOOPBACK}:{redis_port}/0"
        assert redis.Redis.from_url(url, password="tls-pw", ssl_ca_certs=ca).ping()
        with pytest.raises(redis.ConnectionError):  # the managed server speaks TLS only
            redis.Redis(host=LOOPBACK, port=redis_port, password="tls-pw", socket_timeout=2).ping()
    finally:
        cli("stop", "-c", str(config_path))


def test_managed_tls_settings_are_checked_before_anything_starts(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text("model:\n  name: m\n  path: m.onnx\nredis:\n  server_tls_cert: s.crt\n  server_tls_key: s.key\n")
    result = cli("start", "-c", str(config_path), check=False)
    assert result.returncode == 1 and "tls_ca_cert" in result.stderr
    config_path.write_text("model:\n  name: m\n  path: m.onnx\nredis:\n  url: redis://127.0.0.1:1/0\n"
                           "  server_tls_cert: s.crt\n  server_tls_key: s.key\n  tls_ca_cert: ca.crt\n")
    result = cli("start", "-c", str(config_path), check=False)
    assert result.returncode == 1 and "rediss://" in result.stderr
    assert not (tmp_path / ".zoo-serving").exists()


def test_start_reports_a_missing_model(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text("model:\n  name: m\n  path: missing.onnx\n")
    result = cli("start", "-c", str(config_path), check=False)
    assert result.returncode == 1 and "do not exist" in result.stderr


def test_start_checks_a_model_url_through_the_storage_layer(tmp_path, no_s3_credentials, monkeypatch):
    s3 = no_s3_credentials
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({"models": [{"name": "m", "path": f"s3://{s3.name}/none.onnx"}],
                                           "redis": {"port": free_port()}}))
    result = cli("start", "-c", str(config_path), check=False)
    assert result.returncode == 1 and "AWS_ACCESS_KEY_ID" in result.stderr
    assert "spark.hadoop.fs.s3a.access.key" in result.stderr and f"s3://{s3.name}/none.onnx" in result.stderr
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "zoo-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "zoo-test-secret")
    result = cli("start", "-c", str(config_path), check=False)
    assert result.returncode == 1
    assert f"Model file(s) ['s3://{s3.name}/none.onnx'] do not exist. Fix `path` in {config_path}" in result.stderr
    assert not (tmp_path / ".zoo-serving" / "state.json").exists()  # nothing was started


def test_init_generates_secrets_and_start_refuses_an_open_address(tmp_path):
    plain = tmp_path / "plain.yaml"
    cli("init", "-c", str(plain))
    assert yaml.safe_load(plain.read_text())["http"]["token"] is None
    secured = tmp_path / "secured.yaml"
    cli("init", "-c", str(secured), "--secrets")
    exposed = tmp_path / "exposed.yaml"
    result = cli("init", "-c", str(exposed), "--host", "0.0.0.0")  # secrets by default off loopback
    assert "readable by you only" in result.stdout
    tokens = set()
    for path, host in ((secured, "127.0.0.1"), (exposed, "0.0.0.0")):
        config = yaml.safe_load(path.read_text())
        token, password = config["http"]["token"], config["redis"]["password"]
        assert len(token) >= 40 and len(password) >= 40 and token != password
        assert config["http"]["host"] == config["redis"]["host"] == host
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        tokens.add(token)
        assert token not in result.stdout
    assert len(tokens) == 2  # fresh secrets each time
    # a frontend on every interface without a token is refused before anything starts
    open_config = tmp_path / "open.yaml"
    open_config.write_text(yaml.safe_dump({"model": {"name": "m", "path": "m.onnx"}, "http": {"host": "0.0.0.0"}}))
    result = cli("start", "-c", str(open_config), check=False)
    assert result.returncode == 1 and "http.token" in result.stderr and "allow_insecure" in result.stderr
    assert not (tmp_path / ".zoo-serving").exists()
