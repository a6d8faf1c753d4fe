"""Predictions/s of the Java InferenceModel vs the Python InferenceModel (OpenVINO backend).

Both run the same OpenVINO IR, exported once by ``zoo.inference.export``, with the same
compile properties (LATENCY hint, one request, f32), from one caller thread, at batch sizes 1
and 32. For reference, a third column times OpenVINO's own Python API on the same compiled
settings (``InferRequest.infer``), the floor under any Python handle. Each side is measured ``--rounds`` times, alternating, and its best round is kept (the
machine is shared; the best round is the least disturbed). The Java side runs
``zoo.inference.examples.Benchmark`` from ``zoo/serving_java_api/build/zoo-inference.jar``
(built here with ``build.sh --no-test`` when missing); its JVM start and warm-up are not timed.

    .venv/bin/python bench/java_inference.py           # full run (~1.5 minutes)
    .venv/bin/python bench/java_inference.py --quick   # smoke run (~10 s)

Prints one table; the target is Java/Python >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoo.inference import InferenceModel, export

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "zoo" / "serving_java_api"
JAR = PROJECT / "build" / "zoo-inference.jar"

#: Batch sizes compared.
DEFAULT_BATCHES = (1, 32)
#: The model: an MLP of this many features, hidden units (two layers) and classes.
DEFAULT_FEATURES, DEFAULT_HIDDEN, DEFAULT_CLASSES = 64, 256, 10
#: Target ratio of Java to Python predictions/s.
TARGET_RATIO = 0.95


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(DEFAULT_FEATURES, DEFAULT_HIDDEN),
        nn.ReLU(),
        nn.Linear(DEFAULT_HIDDEN, DEFAULT_HIDDEN),
        nn.ReLU(),
        nn.Linear(DEFAULT_HIDDEN, DEFAULT_CLASSES),
    ).eval()


def _python_rate(predict, batch: int, seconds: float, warmup: float) -> float:
    """Predictions/s of ``predict(x)`` on a random float batch, one thread."""
    x = np.random.RandomState(0).randn(batch, DEFAULT_FEATURES).astype(np.float32)

    def run(duration: float) -> tuple[int, float]:
        start = time.perf_counter()
        deadline = start + duration
        calls = 0
        while True:
            for _ in range(16):
                predict(x)
            calls += 16
            now = time.perf_counter()
            if now >= deadline:
                return calls, now - start

    run(warmup)
    calls, elapsed = run(seconds)
    return calls * batch / elapsed


def _raw_openvino_request(xml: str):
    """An infer request of OpenVINO's Python API, compiled with the handles' properties."""
    import openvino as ov

    props = {"PERFORMANCE_HINT": "LATENCY", "PERFORMANCE_HINT_NUM_REQUESTS": "1", "INFERENCE_PRECISION_HINT": "f32"}
    return ov.Core().compile_model(xml, "CPU", props).create_infer_request()


def _java_rate(xml: str, batch: int, seconds: float, warmup: float) -> float:
    """Predictions/s of the Java handle, measured inside a fresh JVM."""
    env = dict(os.environ, ZOO_PYTHON=sys.executable)
    proc = subprocess.run(
        ["java", "-cp", str(JAR), "zoo.inference.examples.Benchmark", xml, str(batch), str(seconds), str(warmup)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120 + 2 * (seconds + warmup),
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"Java benchmark failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["predictions_per_s"])


def _ensure_jar() -> None:
    if JAR.is_file():
        return
    subprocess.run([str(PROJECT / "build.sh"), "--no-test"], check=True, env=dict(os.environ, ZOO_PYTHON=sys.executable))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per side (default 3, quick 1)")
    args = parser.parse_args(argv)
    seconds, warmup = (0.5, 0.3) if args.quick else (3.0, 1.0)
    rounds = args.rounds or (1 if args.quick else 3)

    _ensure_jar()
    with tempfile.TemporaryDirectory(prefix="zoo-java-bench-") as tmp:
        xml = export(_mlp(), np.zeros((2, DEFAULT_FEATURES), np.float32), os.path.join(tmp, "mlp.xml"), format="openvino")
        py_model = InferenceModel(concurrent_num=1).load_openvino(xml)
        raw_request = _raw_openvino_request(xml)
        rows = []
        for batch in DEFAULT_BATCHES:
            py_best = raw_best = java_best = 0.0
            for _ in range(rounds):
                py_best = max(py_best, _python_rate(py_model.predict, batch, seconds, warmup))
                raw_best = max(raw_best, _python_rate(lambda x: raw_request.infer([x]), batch, seconds, warmup))
                java_best = max(java_best, _java_rate(xml, batch, seconds, warmup))
            rows.append((batch, py_best, raw_best, java_best))
        py_model.release()

    print(
        f"Java vs Python InferenceModel, OpenVINO IR MLP {DEFAULT_FEATURES}-{DEFAULT_HIDDEN}-{DEFAULT_HIDDEN}-"
        f"{DEFAULT_CLASSES}, 1 thread, best of {rounds} x {seconds:g} s, {os.cpu_count()} CPUs"
    )
    print(
        f"| batch | Python InferenceModel pred/s | Java InferenceModel pred/s | Java / Python | target >= {TARGET_RATIO} "
        "| raw openvino Python pred/s | Java / raw |"
    )
    print("|------:|-----------------------------:|---------------------------:|--------------:|:--------------:|---------------------------:|-----------:|")
    for batch, py, raw, java in rows:
        ratio = java / py
        print(
            f"| {batch:5d} | {py:28,.0f} | {java:26,.0f} | {ratio:12.2f}x | {'met' if ratio >= TARGET_RATIO else 'NOT met':^14} "
            f"| {raw:26,.0f} | {java / raw:9.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
