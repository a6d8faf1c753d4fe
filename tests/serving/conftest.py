"""Fixtures of the Cluster Serving tests: small torch models saved as TorchScript, worker threads
and an HTTP frontend on loopback (the real redis-server, `redis_server` and `redis_client`, is
in tests/conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

pytest.importorskip("redis", reason="Cluster Serving tests need the serving extra: pip install 'spark-zoo[serving]'")
pytest.importorskip("fastapi", reason="Cluster Serving tests need the serving extra: pip install 'spark-zoo[serving]'")
torch = pytest.importorskip("torch")

from zoo.devcluster.processes import free_port  # noqa: E402,F401 - the serving tests import it from here
from zoo.serving.config import ServingConfig  # noqa: E402
from zoo.serving.connection import connect_config  # noqa: E402
from zoo.serving.worker import ServingWorker  # noqa: E402

LOOPBACK = "127.0.0.1"


def make_certificates(folder):
    """A throwaway CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("the TLS test needs the openssl command: apt-get install openssl")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=zoo-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "1", "-extfile", "san.ext")
    return str(folder / "ca.crt"), str(folder / "server.crt"), str(folder / "server.key")


class TinyCNN(torch.nn.Module):
    """3x8x8 images -> 10 scores."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(x.flatten(1))


class ByteSum(torch.nn.Module):
    """uint8 codes [B, L] -> [B, 2]: the sum of the codes and the count of non-zero codes."""

    def forward(self, codes):
        x = codes.to(torch.float32)
        return torch.stack([x.sum(1), (x > 0).to(torch.float32).sum(1)], 1)


class TwoInputs(torch.nn.Module):
    """(a [B, 4], b [B, 4]) -> a * 2 + b."""

    def forward(self, a, b):
        return a * 2 + b


class Gated(torch.nn.Module):
    """[B, 4] -> x * 2; takes a few hundred milliseconds when a value exceeds 1000, so that a test
    can see which worker holds such a request (and kill it, as a request that kills workers would)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.eye(256) * 0.5)

    def forward(self, x):
        if bool((x > 1000).any()):
            y = torch.ones(64, 256)
            for _ in range(2000):
                y = torch.tanh(y @ self.weight)
            return x * 2 + y.sum() * 0
        return x * 2


def _save(module, example, path) -> str:
    torch.manual_seed(0)
    module.eval()
    scripted = torch.jit.trace(module, example)
    torch.jit.save(scripted, str(path))
    return str(path)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """name -> (path of the TorchScript file, reference callable on a numpy batch)."""
    folder = tmp_path_factory.mktemp("serving-models")
    torch.manual_seed(0)
    cnn = TinyCNN().eval()
    byte_sum, two = ByteSum().eval(), TwoInputs().eval()
    saved = {
        "cnn": (_save(cnn, torch.zeros(1, 3, 8, 8), folder / "cnn.pt"), cnn),
        "bytes": (_save(byte_sum, torch.zeros(1, 16, dtype=torch.uint8), folder / "bytes.pt"), byte_sum),
        "two": (_save(two, (torch.zeros(1, 4), torch.zeros(1, 4)), folder / "two.pt"), two),
    }
    gated = Gated().eval()
    torch.jit.save(torch.jit.script(gated), str(folder / "gated.pt"))
    saved["gated"] = (str(folder / "gated.pt"), gated)

    def reference(module):
        def run(*arrays):
            with torch.no_grad():
                return module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]).numpy()
        return run

    return {name: (path, reference(module)) for name, (path, module) in saved.items()}


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory):
    """name -> path of a float32 ONNX model on [?, 4] (declares its signature): ``double`` (x + x)
    and ``log`` (log x: NaN and -Infinity for inputs <= 0)."""
    onnx = pytest.importorskip("onnx", reason="the ONNX models need the inference extra: pip install 'spark-zoo[inference]'")
    from onnx import TensorProto, helper

    folder = tmp_path_factory.mktemp("serving-onnx")
    paths = {}
    for name, node in (("double", helper.make_node("Add", ["x", "x"], ["y"])),
                       ("log", helper.make_node("Log", ["x"], ["y"]))):
        graph = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        paths[name] = str(folder / f"{name}.onnx")
        onnx.save(model, paths[name])
    return paths


def make_config(redis_url: str, models: list[dict], **sections) -> ServingConfig:
    """A ServingConfig for the test Redis; ``sections`` are queue=..., http=..."""
    return ServingConfig.from_dict({"models": models, "redis": {"url": redis_url}, **sections})


class WorkerThreads:
    """Starts worker threads (``start(config, model_name=None, count=1)``) and stops them all."""

    def __init__(self):
        self.running: list[tuple[ServingWorker, threading.Thread]] = []

    def __call__(self, config: ServingConfig, model_name: str | None = None, count: int = 1):
        model = config.model(model_name)
        client = connect_config(config)
        started = []
        for _ in range(count):
            worker = ServingWorker(model, config.queue, connect_config(config),
                                   consumer=f"test-{model.name}-{len(self.running)}")
            thread = threading.Thread(target=worker.run, daemon=True)
            thread.start()
            self.running.append((worker, thread))
            started.append(worker)
        deadline = time.monotonic() + 30
        while len(list(client.scan_iter(match=f"zoo:serving:{model.name}:worker:*"))) < count:
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.02)
        client.close()
        return started

    def stop_all(self):
        for worker, _ in self.running:
            worker.stop()
        for _, thread in self.running:
            thread.join(timeout=10)
        self.running.clear()


@pytest.fixture
def start_workers(redis_client):
    """Worker threads for a config; stopped when the test ends."""
    threads = WorkerThreads()
    yield threads
    threads.stop_all()


@pytest.fixture
def http_frontend():
    """Run the HTTP frontend of a config on a free loopback port: http_frontend(config) -> base URL."""
    import uvicorn

    from zoo.serving.frontend import create_app

    servers = []

    def start(config: ServingConfig) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(config), host=LOOPBACK, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "HTTP frontend did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://{LOOPBACK}:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
