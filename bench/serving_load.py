"""Load test of Cluster Serving against Ray Serve serving the same small CNN on this machine.

One table, one run: requests/s and p50/p99 latency at concurrency 1, 8 and 32, through HTTP and
through the Python client (Zoo: `InputQueue.predict`; Ray Serve: a `DeploymentHandle`), with the
Zoo/Ray ratios. Both sides get the same model (TorchScript), one worker/replica with one torch
thread, the same max batch size and the same batch wait. They run one after the other, never at
once. Every load loop is bounded by a request count and a time limit.

    .venv/bin/python bench/serving_load.py            # full run
    .venv/bin/python bench/serving_load.py --quick    # smoke run

Needs redis-server (apt) and, for the peer, ``ray[serve]`` (extra ``bench``); without Ray the
table shows Zoo's figures alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOOPBACK = "127.0.0.1"
CONCURRENCY = (1, 8, 32)
BATCH_SIZE = 32
BATCH_WAIT_MS = 5
INPUT_SHAPE = (3, 32, 32)


def build_model(folder: str) -> str:
    """A small CNN (two conv layers, 10 classes) saved as TorchScript."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(32, 10),
    ).eval()
    path = os.path.join(folder, "cnn.pt")
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, *INPUT_SHAPE)), path)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# ---- load generators (shared by both systems) ---------------------------------------------------

def summarise(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"rps": len(ordered) / elapsed, "p50": 1000 * statistics.median(ordered),
            "p99": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "n": len(ordered)}


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while True:
        size = int((await reader.readline()).strip(), 16)
        parts.append(await reader.readexactly(size + 2))
        if size == 0:
            return status, b"".join(parts)


def http_load(url: str, concurrency: int, total: int, time_limit: float, body: bytes) -> dict[str, float]:
    """``concurrency`` keep-alive connections POST ``body`` until ``total`` answers or ``time_limit`` s.

    A minimal HTTP/1.1 client on asyncio streams: general clients (httpx) cost more CPU per request
    than the servers measured here, which would make the load generator the bottleneck.
    """
    from urllib.parse import urlparse

    parsed = urlparse(url)
    request = (f"POST {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def run():
        latencies: list[float] = []
        sent = 0
        start = time.perf_counter()
        deadline = start + time_limit

        async def loop():
            nonlocal sent
            reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
            try:
                while sent < total and time.perf_counter() < deadline:
                    sent += 1
                    begin = time.perf_counter()
                    writer.write(request)
                    status, reply = await _read_response(reader)
                    if status != 200:
                        raise RuntimeError(f"{url} answered {status}: {reply[:200]!r}")
                    latencies.append(time.perf_counter() - begin)
            finally:
                writer.close()

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return summarise(latencies, time.perf_counter() - start)

    return asyncio.run(run())


def thread_load(call, concurrency: int, total: int, time_limit: float) -> dict[str, float]:
    """``concurrency`` threads run ``call()`` until ``total`` answers or ``time_limit`` seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = {"sent": 0}
    start = time.perf_counter()
    deadline = start + time_limit
    errors: list[BaseException] = []

    def loop():
        while time.perf_counter() < deadline:
            with lock:
                if counter["sent"] >= total:
                    return
                counter["sent"] += 1
            begin = time.perf_counter()
            try:
                call()
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return
            with lock:
                latencies.append(time.perf_counter() - begin)

    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return summarise(latencies, time.perf_counter() - start)


# ---- Zoo Cluster Serving -------------------------------------------------------------------------

def measure_zoo(model_path: str, plan, x: np.ndarray, body: bytes, folder: str) -> dict:
    from zoo.serving import InputQueue
    from zoo.serving.config import ServingConfig, save_config
    from zoo.serving.redis_server import RedisServer

    results = {}
    server = RedisServer(host=LOOPBACK).start()
    http_port = free_port()
    config = ServingConfig.from_dict({
        "model": {"name": "cnn", "path": model_path, "batch_size": BATCH_SIZE, "max_batch_wait_ms": BATCH_WAIT_MS,
                  "workers": 1, "threads_per_worker": 1},
        "redis": {"url": server.url}, "http": {"host": LOOPBACK, "port": http_port},
    })
    config_path = os.path.join(folder, "config.yaml")
    save_config(config, config_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    processes = [subprocess.Popen([sys.executable, "-m", "zoo.serving.worker", "--config", config_path], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, "-m", "zoo.serving.frontend", "--config", config_path], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        queue = InputQueue(server.url, "cnn")
        deadline = time.monotonic() + 120
        while True:  # ready when the worker answers and the frontend is up
            try:
                queue.predict(x, timeout=5)
                import httpx

                if httpx.get(f"http://{LOOPBACK}:{http_port}/health").status_code == 200:
                    break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        url = f"http://{LOOPBACK}:{http_port}/predict"
        http_load(url, 8, 200, 10, body)  # warm-up
        for concurrency, total, limit in plan:
            results[("HTTP", concurrency)] = http_load(url, concurrency, total, limit, body)
        thread_load(lambda: queue.predict(x, timeout=30), 8, 200, 10)
        for concurrency, total, limit in plan:
            results[("client", concurrency)] = thread_load(lambda: queue.predict(x, timeout=30), concurrency, total, limit)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        server.stop()
    return results


# ---- Ray Serve -----------------------------------------------------------------------------------

def measure_ray(model_path: str, plan, x: np.ndarray, body: bytes) -> dict:
    import ray
    from ray import serve
    from starlette.requests import Request

    @serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 1}, max_ongoing_requests=256)
    class CNN:
        def __init__(self, path: str):
            import torch

            torch.set_num_threads(1)
            self.torch = torch
            self.model = torch.jit.load(path).eval()

        @serve.batch(max_batch_size=BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_MS / 1000)
        async def predict(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
            with self.torch.inference_mode():
                out = self.model(self.torch.from_numpy(np.stack(arrays))).numpy()
            return list(out)

        async def __call__(self, request: Request):
            document = await request.json()
            array = np.asarray(document["instances"][0], dtype=np.float32)
            return {"predictions": [(await self.predict(array)).tolist()]}

    results = {}
    http_port = free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        serve.start(http_options={"host": LOOPBACK, "port": http_port})
        handle = serve.run(CNN.bind(model_path), name="cnn", route_prefix="/predict")
        url = f"http://{LOOPBACK}:{http_port}/predict"
        method = handle.predict
        method.remote(x).result()
        http_load(url, 8, 200, 10, body)  # warm-up
        for concurrency, total, limit in plan:
            results[("HTTP", concurrency)] = http_load(url, concurrency, total, limit, body)
        thread_load(lambda: method.remote(x).result(), 8, 200, 10)
        for concurrency, total, limit in plan:
            results[("client", concurrency)] = thread_load(lambda: method.remote(x).result(), concurrency, total, limit)
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args()
    per = (60, 5.0) if args.quick else (None, None)
    # (concurrency, request count, time limit in seconds)
    plan = [(c, per[0] or {1: 400, 8: 2000, 32: 4000}[c], per[1] or {1: 15.0, 8: 20.0, 32: 25.0}[c]) for c in CONCURRENCY]
    x = np.random.default_rng(0).random(INPUT_SHAPE, dtype=np.float32)
    body = ('{"instances": [' + str(x.tolist()) + "]}").encode()
    with tempfile.TemporaryDirectory() as folder:
        model_path = build_model(folder)
        zoo = measure_zoo(model_path, plan, x, body, folder)
        try:
            import ray  # noqa: F401
            from ray import serve  # noqa: F401

            peer = measure_ray(model_path, plan, x, body)
        except ImportError as exc:
            print(f"Ray Serve is not installed ({exc}); pip install 'ray[serve]'. Showing Zoo alone.")
            peer = {}
    print(f"\nCluster Serving vs Ray Serve: small CNN {list(INPUT_SHAPE)}, batch {BATCH_SIZE}, wait "
          f"{BATCH_WAIT_MS} ms, 1 worker x 1 thread, {os.cpu_count()} cores"
          f"{' (quick run)' if args.quick else ''}")
    header = (f"{'path':<7}{'conc':>5} | {'zoo req/s':>10}{'p50 ms':>8}{'p99 ms':>8} | "
              f"{'ray req/s':>10}{'p50 ms':>8}{'p99 ms':>8} | {'req/s x':>8}{'p99 x':>7}")
    print(header)
    print("-" * len(header))
    for (path, concurrency), mine in zoo.items():
        theirs = peer.get((path, concurrency))
        if theirs:
            print(f"{path:<7}{concurrency:>5} | {mine['rps']:>10.0f}{mine['p50']:>8.1f}{mine['p99']:>8.1f} | "
                  f"{theirs['rps']:>10.0f}{theirs['p50']:>8.1f}{theirs['p99']:>8.1f} | "
                  f"{mine['rps'] / theirs['rps']:>8.2f}{mine['p99'] / theirs['p99']:>7.2f}")
        else:
            print(f"{path:<7}{concurrency:>5} | {mine['rps']:>10.0f}{mine['p50']:>8.1f}{mine['p99']:>8.1f} | "
                  f"{'-':>10}{'-':>8}{'-':>8} | {'-':>8}{'-':>7}")
    if peer:
        print("\nreq/s x = Zoo / Ray throughput (target >= 1.0 at concurrency 32); "
              "p99 x = Zoo / Ray p99 latency (target <= 1.0 at concurrency 1).")
        for path in ("HTTP", "client"):
            throughput = zoo[(path, 32)]["rps"] / peer[(path, 32)]["rps"]
            tail = zoo[(path, 1)]["p99"] / peer[(path, 1)]["p99"]
            print(f"{path}: throughput at 32 = {throughput:.2f}x ({'met' if throughput >= 1 else 'NOT met'}), "
                  f"p99 at 1 = {tail:.2f}x ({'met' if tail <= 1 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
