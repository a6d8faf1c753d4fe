"""Cluster Serving across hosts on the dev cluster: one Redis on the edge host, workers on two
worker hosts serving a model they fetch from s3://, a client on the edge. Killing one host's
workers (kill -9) under load loses no request: the other host's workers reclaim what the dead ones
held, and every answer is the model's own output for its input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
import torch

from tests.multihost.conftest import HERE

LOAD = os.path.join(HERE, "serving_load.py")
REQUESTS, KILL_AT = 1500, 400
MODEL = "mh-mlp"


def _worker_pids(host) -> list[int]:
    return [pid for pid, argv in host.processes().items() if "zoo.serving.worker" in " ".join(argv)]


@pytest.fixture(scope="module")
def deployment(dev_cluster, tmp_path_factory):
    """An ONNX MLP on s3://, Redis on the edge, 2 workers on each worker host; torn down after."""
    from zoo.inference import InferenceModel, export

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    folder = os.path.join(dev_cluster.shared_dir, f"serving-{uuid.uuid4().hex[:8]}")
    os.makedirs(folder)
    local = os.path.join(folder, "model.onnx")
    export(net, np.zeros((2, 8), np.float32), local, format="onnx")
    url = f"s3://zoo/models/{os.path.basename(folder)}/model.onnx"
    upload = dev_cluster.edge.run([sys.executable, "-c", "import sys\nfrom zoo import storage\n"
                                   "storage.upload(sys.argv[1], sys.argv[2])", local, url], timeout=120)
    assert upload.returncode == 0, upload.stderr[-3000:]
    inputs = np.random.default_rng(0).normal(size=(REQUESTS, 8)).astype(np.float32)
    np.save(os.path.join(folder, "inputs.npy"), inputs)
    expected = InferenceModel().load(local).predict(inputs)
    redis_url = dev_cluster.start_redis("edge")
    configs = []
    for host in dev_cluster.workers:
        config = os.path.join(folder, host.name, "config.yaml")
        os.makedirs(os.path.dirname(config))
        with open(config, "w") as f:
            f.write(f"models:\n  - name: {MODEL}\n    path: {url}\n    batch_size: 16\n    workers: 2\n"
                    f"redis:\n  url: {redis_url}\nqueue:\n  claim_idle_ms: 2000\n")
        started = host.run([sys.executable, "-m", "zoo.serving.cli", "start", "-c", config, "--no-http"], timeout=300)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        configs.append((host, config))
    try:
        yield {"folder": folder, "redis_url": redis_url, "expected": expected}
    finally:
        for host, config in configs:
            host.run([sys.executable, "-m", "zoo.serving.cli", "stop", "-c", config], timeout=120)


def test_losing_one_hosts_workers_under_load_loses_no_request(dev_cluster, deployment):
    host1, host2 = dev_cluster.workers
    assert len(_worker_pids(host1)) == 2 and len(_worker_pids(host2)) == 2
    out = os.path.join(deployment["folder"], "load.json")
    client = dev_cluster.edge.popen([sys.executable, LOAD, deployment["redis_url"], MODEL,
                                     os.path.join(deployment["folder"], "inputs.npy"), out, "--kill-at", str(KILL_AT)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in client.stdout:
        lines.append(line)
        if line.strip() == "KILL":
            killed = _worker_pids(host1)
            for pid in killed:
                os.kill(pid, 9)
            break
    assert client.wait(timeout=300) == 0, "".join(lines) + client.stdout.read()[-4000:]
    with open(out) as f:
        report = json.load(f)
    wrong = [uri for uri, value in report["results"].items()
             if not np.allclose(value, deployment["expected"][int(uri[1:])], rtol=1e-4, atol=1e-5)]
    counts = (f"tried {report['sent']}, answered {report['answered']}, lost {len(report['lost'])}, "
              f"wrong {len(wrong)}, errors {len(report['errors'])}, "
              f"duplicated {report['requests_total'] - report['sent']} (at-least-once)")
    assert len(killed) == 2 and not _worker_pids(host1), counts
    assert report["answered"] == report["sent"] == REQUESTS and not report["lost"] and not wrong \
        and not report["errors"], counts
    assert report["requests_total"] >= REQUESTS, counts
    print(counts)
