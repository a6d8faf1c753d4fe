"""The spark-submit examples of scripts/examples, run for real with spark-submit on local[2]:
training writes a model that batch inference reads; start_serving answers a request from Redis."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import subprocess_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "scripts" / "examples"
SUBMIT_TIMEOUT_S = 300


def spark_submit() -> str:
    path = pathlib.Path(sys.executable).parent / "spark-submit"
    if not path.exists():
        pytest.skip(f"spark-submit not found beside {sys.executable}: pip install pyspark")
    return str(path)


def submit(script: str, *args: str, wait: bool = True):
    """Run `spark-submit --master local[2] scripts/examples/<script> args`."""
    env = subprocess_env()
    command = [spark_submit(), "--master", "local[2]", "--conf", "spark.ui.enabled=false",
               str(EXAMPLES / script), *args]
    if not wait:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_S)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


@pytest.mark.slow
def test_train_then_batch_inference(tmp_path, spark):
    model_dir, test_set, output = tmp_path / "model", tmp_path / "test.parquet", tmp_path / "predictions.parquet"
    out = submit("train_classifier.py", "--model-out", str(model_dir), "--test-out", str(test_set),
                 "--rows", "1500", "--epochs", "4")
    assert "held-out accuracy" in out and (model_dir / "metadata").is_dir()
    out = submit("batch_inference.py", "--model", str(model_dir), "--input", str(test_set), "--output", str(output))
    predictions = spark.read.parquet(str(output))
    held_out = spark.read.parquet(str(test_set))
    assert predictions.count() == held_out.count() > 0
    accuracy = predictions.selectExpr("avg(cast(prediction = label as double))").first()[0]
    assert accuracy > 0.8  # the generated classes are well separated
    assert f"accuracy {accuracy:.4f}" in out


def test_start_serving_answers_a_request_then_stops(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("redis", reason="serving needs the serving extra: pip install 'spark-zoo[serving]'")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    from zoo.serving import InputQueue
    from zoo.serving import defaults as D
    from zoo.serving.config import ServingConfig
    from zoo.serving.redis_server import RedisServer
    from zoo.serving.spark import request_stop

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)).eval()
    path = str(tmp_path / "model.pt")
    torch.jit.save(torch.jit.trace(module, torch.zeros(1, 4)), path)
    with RedisServer(host="127.0.0.1") as server:
        job = submit("start_serving.py", "--model", path, "--redis-url", server.url, "--name", "example",
                     "--workers", "2", wait=False)
        try:
            client = server.client()
            deadline = time.monotonic() + SUBMIT_TIMEOUT_S
            while len(list(client.scan_iter(match=D.heartbeat_pattern("example")))) < 2:
                assert job.poll() is None, f"start_serving.py exited early:\n{job.stdout.read()[-5000:]}"
                assert time.monotonic() < deadline, "serving workers did not start"
                time.sleep(0.2)
            x = np.random.default_rng(0).random(4, dtype=np.float32)
            got = InputQueue(server.url, "example").predict(x, timeout=30)
            with torch.no_grad():
                expected = module(torch.from_numpy(x[None]))[0].numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
            request_stop(ServingConfig.from_dict({"models": [{"name": "example", "path": path}],
                                                  "redis": {"url": server.url}}))
            out, _ = job.communicate(timeout=120)
            assert job.returncode == 0, out[-5000:]
            assert "requests answered per worker" in out
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()


@pytest.mark.slow
def test_the_online_learning_loop_recovers_from_a_concept_drift(tmp_path):
    pytest.importorskip("mlflow", reason="the registry needs MLflow: pip install 'spark-zoo[registry]'")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    plot = tmp_path / "loop.png"
    seconds = 60
    out = submit("online_learning.py", "--workdir", str(tmp_path / "loop"), "--seconds", str(seconds), "--plot", str(plot))
    before = float(re.search(r"accuracy before the drift ([\d.]+)", out).group(1))
    assert before > 0.9, out
    # The served accuracy per 5 s: it dips after the drift, then recovers as new versions swap in.
    buckets = [(float(start), float(accuracy)) for start, accuracy in re.findall(r"^\s+(\d+)\s+([\d.]+)\s+\[", out, re.M)]
    after = [accuracy for start, accuracy in buckets if start >= seconds / 2]
    assert min(after) < before - 0.2 and after[-1] > min(after) + 0.15, out
    statuses = re.findall(r"^v(\d+): (\w+)", out, re.MULTILINE)
    assert len(statuses) >= 3 and statuses[0] == ("1", "retired"), out  # streaming versions replaced the first
    assert sum(status == "champion" for _, status in statuses) == 1, out
    assert re.search(r"freshness: median [\d.]+ s", out), out
    assert plot.stat().st_size > 0
