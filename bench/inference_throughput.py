"""Inference throughput: Zoo's InferenceModel backends and NNModel.transform against their peers.

One run prints one table:

* InferenceModel per backend (torch, OpenVINO, ONNX Runtime) on a small CNN and an MLP:
  batch-1 latency and batch-32 throughput, each as a ratio against calling the torch module
  directly (``torch.inference_mode``) in the same process.
* Spark rows/s of ``NNModel.transform`` with each backend against
  ``pyspark.ml.functions.predict_batch_udf`` running the same torch module (local[2]).

Targets: OpenVINO >= 1.5x torch throughput on the CNN; NNModel.transform (torch) >= 1.0x
predict_batch_udf. Usage::

    .venv/bin/python bench/inference_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from zoo.inference import InferenceModel
from zoo.inference.config import FRAMEWORK_BACKENDS

IMAGE = (1, 28, 28)
FEATURES = int(np.prod(IMAGE))
BACKENDS = FRAMEWORK_BACKENDS["torch"]


class CNN(torch.nn.Module):
    """An MNIST-sized CNN; takes flat 784-float rows (as in a DataFrame array column)."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        )
        self.head = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x.reshape(-1, *IMAGE)), 1))


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    )


def _time(fn, repeats: int) -> list[float]:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _compare(subject, peer, repeats: int, rounds: int = 3) -> tuple[float, float]:
    """Seconds per call of ``subject`` and ``peer``: median per round, best round, rounds interleaved
    so both see the same machine load."""
    subject_best = peer_best = float("inf")
    for _ in range(rounds):
        peer_best = min(peer_best, statistics.median(_time(peer, repeats)))
        subject_best = min(subject_best, statistics.median(_time(subject, repeats)))
    return subject_best, peer_best


def local_rows(name: str, module: torch.nn.Module, quick: bool) -> list[tuple]:
    """(measurement, subject, value, unit, peer value, ratio) rows for one model."""
    rng = np.random.default_rng(0)
    one = rng.standard_normal((1, FEATURES)).astype(np.float32)
    batch = rng.standard_normal((32, FEATURES)).astype(np.float32)
    repeats_1, repeats_32 = (30, 10) if quick else (200, 40)

    def direct(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    rows = []
    for backend in BACKENDS:
        handle = InferenceModel.from_torch(module, batch, backend=backend)
        latency, peer_latency = _compare(lambda: handle.predict(one), lambda: direct(one), repeats_1)
        per_batch, peer_per_batch = _compare(lambda: handle.predict(batch), lambda: direct(batch), repeats_32)
        rows.append((f"{name} batch-1 latency", f"InferenceModel[{backend}]", latency * 1e3, "ms", peer_latency * 1e3, peer_latency / latency))
        rows.append((f"{name} batch-32 throughput", f"InferenceModel[{backend}]", 32 / per_batch, "rows/s", 32 / peer_per_batch, peer_per_batch / per_batch))
        handle.release()
    return rows


def spark_rows(module: torch.nn.Module, quick: bool) -> list[tuple]:
    """NNModel.transform per backend vs predict_batch_udf, rows/s over one DataFrame."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import ArrayType, FloatType

    from zoo import init_spark

    spark = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    n = 2000 if quick else 20000
    data = np.random.default_rng(1).standard_normal((n, FEATURES)).astype(np.float32)
    df = spark.createDataFrame([(i, row.tolist()) for i, row in enumerate(data)], "id long, features array<float>")
    df = df.repartition(2).cache()
    df.count()

    def rate(make_df) -> float:
        make_df().write.format("noop").mode("overwrite").save()  # warm: workers build and cache models
        best = min(_time(lambda: make_df().write.format("noop").mode("overwrite").save(), 1 if quick else 2))
        return n / best

    def make_predict_fn():
        import torch as _torch

        model = module.eval()

        def predict(x):
            with _torch.inference_mode():
                return model(_torch.from_numpy(x)).numpy()

        return predict

    udf = predict_batch_udf(
        make_predict_fn, return_type=ArrayType(FloatType()), batch_size=32, input_tensor_shapes=[[FEATURES]]
    )
    peer = rate(lambda: df.select("id", udf("features").alias("prediction")))
    rows, notes = [], []
    try:
        from zoo.nnframes import NNModel
    except ImportError as exc:
        NNModel = None
        missing = f"zoo.nnframes not importable ({exc})"
    if NNModel is not None and not hasattr(NNModel, "setBackend"):
        NNModel, missing = None, "NNModel.setBackend not implemented yet"
    for backend in BACKENDS:
        subject = f"NNModel.transform[{backend}]"
        if NNModel is None:
            rows.append(("Spark CNN transform", subject, float("nan"), "rows/s", peer, float("nan")))
            notes.append(f"{subject}: not measured: {missing}")
            continue
        model = NNModel(model=module, featuresCol="features", predictionCol="prediction", batchSize=32).setBackend(backend)
        value = rate(lambda: model.transform(df))
        rows.append(("Spark CNN transform", subject, value, "rows/s", peer, value / peer))
    spark.stop()
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (fewer repeats, 2,000 rows)")
    parser.add_argument("--no-spark", action="store_true", help="skip the Spark rows")
    args = parser.parse_args()
    torch.manual_seed(0)
    cnn, dense = CNN().eval(), mlp().eval()
    rows = local_rows("CNN", cnn, args.quick) + local_rows("MLP", dense, args.quick)
    notes: list[str] = []
    if not args.no_spark:
        spark_table, notes = spark_rows(cnn, args.quick)
        rows += spark_table
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; peer = torch module called directly "
          f"(latency/throughput) or predict_batch_udf (Spark); ratio > 1 means Zoo is faster")
    header = ("measurement", "subject", "value", "unit", "peer", "ratio")
    print(f"| {header[0]:<26} | {header[1]:<30} | {header[2]:>10} | {header[3]:<8} | {header[4]:>10} | {header[5]:>6} |")
    print(f"|{'-' * 28}|{'-' * 32}|{'-' * 12}|{'-' * 10}|{'-' * 12}|{'-' * 8}|")
    for what, subject, value, unit, peer, ratio in rows:
        print(f"| {what:<26} | {subject:<30} | {value:>10.2f} | {unit:<8} | {peer:>10.2f} | {ratio:>5.2f}x |")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
