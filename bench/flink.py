"""Zoo on Flink against its peers, measured in the same run: one table.

- Flink SQL inference against a plain Python loop calling the same InferenceModel (1 thread) with
  the same batch size: ML_PREDICT with Zoo's model provider (OpenVINO IR, 1 thread) on a small
  and a wider MLP, and the vectorized Python function (ONNX); parallelism 1, steady-state rows/s
  from two job sizes (the difference of their times), job start-up reported apart, with two
  ceilings: Flink's Python UDF path with a function that computes nothing, and the source alone.
- The Java ScalarFunction against the Python function on the same OpenVINO IR file.
- Flink Cluster Serving (1 worker) against Zoo's local serving worker (1 worker): requests/s and
  p99 through the Python client at concurrency 1 and 32, same model, batch and wait.
- Flink training (2 workers) against the Spark engine (NNEstimator, local[2]) on the same model
  and data: steady-state samples/s as the engine measures it.

Each comparison is repeated (``--repeats``, default 3): the table shows the best run and the
spread (min-max) of the ratio, since this shared 2-core machine is noisy.

    .venv-flink/bin/python bench/flink.py            # ~10 min
    .venv-flink/bin/python bench/flink.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

FEATURES = 64
WIDE = 1024
BATCH = 1000
SERVING_BATCH = 32
SERVING_WAIT_MS = 5
TRAIN_ROWS = 60_000
TRAIN_EPOCHS = 3


def build_mlp(hidden: int = 256) -> torch.nn.Module:
    """MLP 64-hidden-hidden-10 with fixed weights."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, 10)).eval()


def features(rows: int) -> np.ndarray:
    """`rows` random samples of FEATURES values in [0, 1), the Python loop's input."""
    return np.random.default_rng(0).random((rows, FEATURES), dtype=np.float32)


def create_source(t_env, rows: int) -> None:
    """View `v(x)`: `rows` rows of an ARRAY<DOUBLE> of FEATURES values in [0, 1), computed in SQL
    from a sequence. Flink's datagen with random ARRAY<DOUBLE> fields makes only about 200k rows/s
    here (a boxed random number per element), which would cap every query below the models."""
    values = ", ".join(f"CAST(MOD(id * {2 * i + 7}, 1000) AS DOUBLE) / 1000" for i in range(FEATURES))
    t_env.execute_sql("DROP TEMPORARY VIEW IF EXISTS v")
    t_env.execute_sql("DROP TEMPORARY TABLE IF EXISTS ids")
    t_env.execute_sql(f"CREATE TEMPORARY TABLE ids (id BIGINT) WITH ('connector' = 'datagen', "
                      f"'number-of-rows' = '{rows}', 'rows-per-second' = '1000000000', "
                      f"'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{rows}')")
    t_env.execute_sql(f"CREATE TEMPORARY VIEW v AS SELECT ARRAY[{values}] AS x FROM ids")


def timed_job(t_env, rows: int, expression: str, result_type: str = "ARRAY<FLOAT>") -> float:
    """Seconds to run INSERT INTO a blackhole sink `expression` (a query over `v`) on `rows` rows."""
    create_source(t_env, rows)
    t_env.execute_sql("DROP TEMPORARY TABLE IF EXISTS sink")
    t_env.execute_sql(f"CREATE TEMPORARY TABLE sink (y {result_type}) WITH ('connector' = 'blackhole')")
    start = time.perf_counter()
    t_env.execute_sql(f"INSERT INTO sink {expression}").wait()
    return time.perf_counter() - start


def steady_and_startup(t_env, small: int, expression: str, result_type: str = "ARRAY<FLOAT>") -> tuple[float, float]:
    """(steady rows/s, start-up s) of a job, from its times on `small` and 5 x `small` rows."""
    large = 5 * small
    t_small = timed_job(t_env, small, expression, result_type)
    t_large = timed_job(t_env, large, expression, result_type)
    steady = (large - small) / max(t_large - t_small, 1e-9)
    return steady, max(t_small - small / steady, 0.0)


def python_loop(model_path: str, rows: int) -> float:
    """Rows/s of a plain loop calling InferenceModel (1 thread) on batches of BATCH rows."""
    from zoo.inference import InferenceModel

    model = InferenceModel().load(model_path, intra_op_threads=1) if model_path.endswith(".onnx") else \
        InferenceModel().load(model_path, threads=1)
    x = features(rows)
    model.predict(x[:BATCH])
    start = time.perf_counter()
    for i in range(0, rows, BATCH):
        model.predict(x[i:i + BATCH])
    return rows / (time.perf_counter() - start)


# ---- inference ------------------------------------------------------------------------------------

def _noop_function():
    """A vectorized function with the model function's columns (ARRAY<DOUBLE>[64] in,
    ARRAY<FLOAT>[10] out) that computes nothing: what Flink's Python UDF path costs alone."""
    import pandas as pd
    from pyflink.table import DataTypes
    from pyflink.table.udf import udf

    def noop(x):
        return pd.Series([np.zeros(10, np.float32)] * len(x))

    return udf(noop, result_type=DataTypes.ARRAY(DataTypes.FLOAT()), func_type="pandas")


def _ml_predict(t_env, name: str, path: str) -> str:
    """Register `path` as SQL model `name` (1 thread, batches of BATCH); the query predicting `v`."""
    from zoo.flink import create_model
    from zoo.flink.inference import model_signature

    create_model(t_env, name, path, batch_size=BATCH, max_wait_ms=5, threads=1)
    output = model_signature(path).outputs[0].name
    return f"SELECT `{output}` FROM ML_PREDICT(TABLE v, MODEL {name}, DESCRIPTOR(x), MAP['async', 'true'])"


def measure_inference(models: dict, scale: float, repeats: int) -> dict:
    """Steady rows/s (and start-up) of each SQL query, and of the Python loops, `repeats` times.
    Each query's small job is sized to about a second of work (`scale` shrinks them)."""
    from zoo.flink import inference_function, register_java_function, table_environment

    t_env = table_environment(streaming=True, parallelism=1)
    t_env.get_config().set("python.fn-execution.arrow.batch.size", str(BATCH))
    t_env.get_config().set("table.exec.async-ml-predict.max-concurrent-operations", str(2 * BATCH))
    t_env.create_temporary_function("py_onnx", inference_function(models["onnx"], batch_size=BATCH,
                                                                   intra_op_threads=1))
    t_env.create_temporary_function("py_xml", inference_function(models["xml"], batch_size=BATCH, threads=1))
    register_java_function(t_env)
    t_env.create_temporary_function("noop", _noop_function())
    queries = {
        "ml_predict": (_ml_predict(t_env, "mlp", models["xml"]), 400_000, "ARRAY<FLOAT>"),
        "ml_predict_wide": (_ml_predict(t_env, "mlp_wide", models["xml_wide"]), 80_000, "ARRAY<FLOAT>"),
        "udf": ("SELECT py_onnx(x) FROM v", 100_000, "ARRAY<FLOAT>"),
        "py_xml": ("SELECT py_xml(x) FROM v", 100_000, "ARRAY<FLOAT>"),
        "noop": ("SELECT noop(x) FROM v", 100_000, "ARRAY<FLOAT>"),
        "java": (f"SELECT zoo_predict('{models['xml']}', x) FROM v", 10_000, "ARRAY<FLOAT>"),
        "source": ("SELECT x FROM v", 1_000_000, "ARRAY<DOUBLE>"),
    }
    loops = {"loop": models["onnx"], "loop_xml": models["xml"], "loop_xml_wide": models["xml_wide"]}
    runs: dict[str, list] = {name: [] for name in [*queries, *loops]}
    for query, _, result_type in queries.values():  # the gateway, the first Python workers, the JIT
        timed_job(t_env, 2000, query, result_type)
    for _ in range(repeats):
        for name, (query, small, result_type) in queries.items():
            runs[name].append(steady_and_startup(t_env, int(small * scale), query, result_type))
        for name, path in loops.items():
            runs[name].append(python_loop(path, 500_000 if "wide" not in name else 100_000))
    return runs


# ---- serving --------------------------------------------------------------------------------------

def _serve(config_path: str, engine: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    module = "zoo.flink.serving" if engine == "flink" else "zoo.serving.worker"
    log = open(f"{config_path}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", module, "--config", config_path], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _wait_until_it_answers(queue, x, process: subprocess.Popen, log: str, timeout_s: float = 300) -> None:
    """Block until the serving process answers a request; fail with its log if it dies first."""
    from zoo.serving.errors import ResultTimeoutError

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the serving process exited with {process.returncode}:\n"
                               + pathlib.Path(log).read_text()[-3000:])
        try:
            queue.predict(x, timeout=5)
            return
        except ResultTimeoutError:
            if time.monotonic() > deadline:
                raise


def measure_serving(model_path: str, plan, folder: str) -> dict:
    from serving_load import thread_load

    from zoo.serving import InputQueue
    from zoo.serving.config import ServingConfig, save_config
    from zoo.serving.redis_server import RedisServer

    x = features(1)[0]
    results = {}
    server = RedisServer(host="127.0.0.1").start()
    try:
        for engine in ("local", "flink"):
            server.client().flushall()
            config = ServingConfig.from_dict({
                "model": {"name": "mlp", "path": model_path, "batch_size": SERVING_BATCH,
                          "max_batch_wait_ms": SERVING_WAIT_MS, "workers": 1, "threads_per_worker": 1},
                "redis": {"url": server.url}})
            config_path = os.path.join(folder, f"serving-{engine}.yaml")
            save_config(config, config_path)
            process = _serve(config_path, engine)
            try:
                queue = InputQueue(server.url, "mlp")
                _wait_until_it_answers(queue, x, process, f"{config_path}.log")
                thread_load(lambda: queue.predict(x, timeout=30), 8, 300, 10)  # warm-up
                for concurrency, total, limit in plan:
                    results[(engine, concurrency)] = thread_load(lambda: queue.predict(x, timeout=30), concurrency,
                                                                 total, limit)
                queue.close()
            finally:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    finally:
        server.stop()
    return results


# ---- training -------------------------------------------------------------------------------------

def flink_training(rows: int) -> float:
    """Steady samples/s of zoo.flink.fit with 2 workers (the engine's own measure)."""
    from pyflink.common import Types
    from train_throughput import GLOBAL_BATCH, make_data, mlp

    from zoo.flink import fit, stream_environment

    x, y = make_data(rows, 32)
    env = stream_environment(parallelism=2)
    data = env.from_collection([(row.tolist(), float(label)) for row, label in zip(x, y)],
                               type_info=Types.TUPLE([Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.DOUBLE()]))
    torch.manual_seed(0)
    _, result = fit(data, mlp(), torch.nn.CrossEntropyLoss(), feature_cols=[0], label_col=1, batch_size=GLOBAL_BATCH,
                    epochs=TRAIN_EPOCHS, optim_method=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                    num_workers=2, label_preprocessing=lambda v: v.astype(np.int64))
    return result.samples_per_second


def spark_training(rows: int) -> float:
    """Steady samples/s of NNEstimator with 2 workers on local[2] (run in a child process)."""
    from train_throughput import mlp, make_data, zoo_fit

    from zoo import init_spark

    spark = init_spark("local[2]")
    x, y = make_data(rows, 32)
    samples_per_second = zoo_fit(spark, mlp, x, y, TRAIN_EPOCHS).fit_samples_per_second
    spark.stop()
    return samples_per_second


def measure_training(rows: int, repeats: int) -> dict:
    runs = {"flink": [], "spark": []}
    for _ in range(repeats):
        runs["flink"].append(flink_training(rows))
        child = subprocess.run([sys.executable, __file__, "--spark-training", str(rows)], capture_output=True,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
        if child.returncode != 0:
            raise RuntimeError(f"the Spark training run failed:\n{child.stderr[-3000:]}")
        runs["spark"].append(json.loads(child.stdout.strip().splitlines()[-1])["samples_per_second"])
    return runs


# ---- the table ------------------------------------------------------------------------------------

def _best_and_spread(pairs: list[tuple[float, float]], higher_is_better: bool = True) -> tuple[float, float, str]:
    """(subject of the best run, peer of that run, "min-max" of the ratio) over (subject, peer) runs."""
    ratios = [s / p for s, p in pairs]
    best = max(range(len(pairs)), key=lambda i: ratios[i] if higher_is_better else -ratios[i])
    return pairs[best][0], pairs[best][1], f"{min(ratios):.2f}-{max(ratios):.2f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spark-training", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spark_training is not None:
        print(json.dumps({"samples_per_second": spark_training(args.spark_training)}))
        return 0
    repeats = 1 if args.quick else args.repeats
    scale = 0.25 if args.quick else 1.0
    plan = [(1, 200, 5), (32, 1000, 10)] if args.quick else [(1, 1000, 15), (32, 6000, 20)]
    rows = 10_000 if args.quick else TRAIN_ROWS
    from zoo.inference import export

    with tempfile.TemporaryDirectory() as folder:
        x = features(4)
        models = {"onnx": export(build_mlp(), x, os.path.join(folder, "mlp.onnx"), format="onnx"),
                  "xml": export(build_mlp(), x, os.path.join(folder, "mlp.xml"), format="openvino"),
                  "xml_wide": export(build_mlp(WIDE), x, os.path.join(folder, "mlp_wide.xml"), format="openvino")}
        inference = measure_inference(models, scale, repeats)
        serving = measure_serving(models["onnx"], plan, folder)
        training = measure_training(rows, repeats)

    lines = [f"Zoo on Flink vs peers, same run, best of {repeats} (ratio spread over the runs), 2 CPUs",
             "| measurement | Zoo on Flink | peer | ratio (best) | spread | target |",
             "|---|---:|---:|---:|---:|---|"]
    for name, loop_name, label in (
            ("ml_predict_wide", "loop_xml_wide", f"MLP 64-{WIDE}-{WIDE}-10"),
            ("ml_predict", "loop_xml", "MLP 64-256-256-10")):
        sql, loop, spread = _best_and_spread([(q[0], p) for q, p in zip(inference[name], inference[loop_name])])
        lines.append(f"| SQL inference, ML_PREDICT (zoo provider, OpenVINO IR, 1 thread, batch {BATCH}, p=1), "
                     f"{label} vs Python loop (same file) | {sql:,.0f} rows/s | {loop:,.0f} rows/s | "
                     f"{sql / loop:.2f}x | {spread} | >= 0.9x |")
    udf, loop, spread = _best_and_spread([(u[0], p) for u, p in zip(inference["udf"], inference["loop"])])
    lines.append(f"| SQL inference, Python UDF (ONNX MLP 64-256-256-10, batch {BATCH}, p=1) vs Python loop (ONNX) | "
                 f"{udf:,.0f} rows/s | {loop:,.0f} rows/s | {udf / loop:.2f}x | {spread} | |")
    startup = min(u[1] for u in inference["ml_predict"])
    py_startup = min(u[1] for u in inference["udf"])
    lines.append(f"| SQL inference job start-up (reported apart): ML_PREDICT / Python UDF | {startup:.1f} s / "
                 f"{py_startup:.1f} s | | | | |")
    noop = max(n[0] for n in inference["noop"])
    lines.append(f"| Flink's Python UDF path alone (no-op function, same columns) | {noop:,.0f} rows/s | {loop:,.0f} rows/s | "
                 f"{noop / loop:.2f}x | | (Python UDF ceiling) |")
    source = max(n[0] for n in inference["source"])
    lines.append(f"| The query's source alone (features computed in SQL, no model) | {source:,.0f} rows/s | | | | |")
    java, py, spread = _best_and_spread([(j[0], p[0]) for j, p in zip(inference["java"], inference["py_xml"])])
    lines.append(f"| Java UDF (one row per call) vs Python UDF (OpenVINO IR, same file) | {java:,.0f} rows/s | "
                 f"{py:,.0f} rows/s | {java / py:.2f}x | {spread} | |")
    for concurrency, _, _ in plan:
        flink, local = serving[("flink", concurrency)], serving[("local", concurrency)]
        lines.append(f"| Cluster Serving req/s, concurrency {concurrency} (client, 1 worker) | {flink['rps']:,.0f} | "
                     f"{local['rps']:,.0f} | {flink['rps'] / local['rps']:.2f}x | | >= 0.8x |")
        lines.append(f"| Cluster Serving p99 ms, concurrency {concurrency} | {flink['p99']:.1f} | {local['p99']:.1f} | "
                     f"{flink['p99'] / local['p99']:.2f}x | | |")
    flink, spark, spread = _best_and_spread(list(zip(training["flink"], training["spark"])))
    lines.append(f"| Training samples/s, MLP 32-128-64-10, {rows:,} rows x {TRAIN_EPOCHS} ep, 2 workers vs Spark engine | "
                 f"{flink:,.0f} | {spark:,.0f} | {flink / spark:.2f}x | {spread} | >= 0.8x |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
