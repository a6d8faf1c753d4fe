"""Flink SQL and Table inference, every way Zoo offers it, in one Flink client process.

Usage: inference_cases.py RESULT.json WORKDIR. Writes, per case, the rows Flink returned (by id)
and the direct InferenceModel predictions to compare them with, or the error a bad input raised.
"""

import pathlib
import sys
import time

import numpy as np

from tests.flink.programs.common import error_text, export_models, write

ROWS = 1000


def main(result_path: str, workdir: str) -> None:
    from pyflink.table import DataTypes

    from zoo.flink import (create_model, create_model_sql, inference_function, predict, register_java_function,
                           table_environment)
    from zoo.inference import InferenceModel

    folder = pathlib.Path(workdir)
    models = export_models(folder / "models")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4))
    b = rng.normal(size=ROWS)
    rows = [(i, x[i].tolist(), float(b[i])) for i in range(ROWS)]
    schema = DataTypes.ROW([DataTypes.FIELD("id", DataTypes.BIGINT()),
                            DataTypes.FIELD("x", DataTypes.ARRAY(DataTypes.DOUBLE())),
                            DataTypes.FIELD("b", DataTypes.FLOAT())])
    out: dict = {"models": models}
    reference = InferenceModel().load(models["mlp_onnx"]).predict(x.astype(np.float32))
    two = InferenceModel().load(models["two_onnx"]).predict([x.astype(np.float32), b.astype(np.float32)])
    out["expected"] = {"mlp": reference.tolist(), "two_scores": two[0].tolist(), "two_total": two[1].tolist()}

    def by_id(frame, column):
        return {int(i): np.asarray(v, dtype=float).tolist() for i, v in zip(frame["id"], frame[column])}

    started = time.time()
    # Batch mode, SQL over a registered vectorized function; a model path relative to the working folder.
    batch = table_environment(streaming=False, parallelism=2)
    batch.create_temporary_view("t", batch.from_elements(rows, schema))
    batch.create_temporary_function("classify", inference_function(models["mlp_onnx"], batch_size=64))
    out["sql_batch"] = by_id(batch.sql_query("SELECT id, classify(x) AS y FROM t").to_pandas(), "y")
    out["first_job_s"] = time.time() - started

    # Streaming mode, one job for every other way in: the Table API's predict, SQL over a function
    # with two inputs (an array and a scalar) and two outputs (a ROW), a function declared with
    # CREATE TEMPORARY FUNCTION ... LANGUAGE PYTHON over a module, and the Java ScalarFunction.
    stream = table_environment(streaming=True, parallelism=2)
    table = stream.from_elements(rows, schema)
    stream.create_temporary_view("t", table)
    stream.create_temporary_view("p", predict(table, models["mlp_xml"], ["x"], output="scores"))
    stream.create_temporary_function("two", inference_function(models["two_onnx"]))
    module = folder / "zoo_udfs.py"
    module.write_text(f"from zoo.flink import inference_function\nclassify = inference_function({models['mlp_onnx']!r})\n")
    sys.path.insert(0, str(folder))
    stream.get_config().set("python.files", str(module))
    stream.execute_sql("CREATE TEMPORARY FUNCTION ddl_classify AS 'zoo_udfs.classify' LANGUAGE PYTHON")
    register_java_function(stream)
    frame = stream.sql_query(
        "SELECT id, scores, two(x, b).output_0 AS s, two(x, b).output_1 AS total, ddl_classify(x) AS ddl, "
        f"zoo_predict('{models['mlp_xml']}', x) AS java FROM p").to_pandas()
    out["table_api"] = by_id(frame, "scores")
    out["sql_stream_two"] = {"scores": by_id(frame, "s"), "total": by_id(frame, "total")}
    out["sql_ddl"] = by_id(frame, "ddl")
    out["java_udf"] = by_id(frame, "java")

    # CREATE MODEL + ML_PREDICT with the zoo provider, synchronous and batched (async), one job.
    out["create_model_sql"] = create_model_sql("mlp", models["mlp_xml"])
    create_model(stream, "mlp", models["mlp_xml"], batch_size=16, threads=1)
    frame = stream.sql_query(
        "SELECT id, output_0, 'sync' AS mode FROM ML_PREDICT(TABLE t, MODEL mlp, DESCRIPTOR(x)) UNION ALL "
        "SELECT id, output_0, 'async' AS mode FROM ML_PREDICT(TABLE t, MODEL mlp, DESCRIPTOR(x), "
        "MAP['async', 'true', 'max-concurrent-operations', '64'])").to_pandas()
    out["ml_predict"] = by_id(frame[frame["mode"] == "sync"], "output_0")
    out["ml_predict_async"] = by_id(frame[frame["mode"] == "async"], "output_0")

    # Bad input: each is refused before a job runs.
    errors = {}
    try:
        predict(table, models["mlp_onnx"], ["b"])
    except Exception as exc:  # noqa: BLE001 - recorded for the test to check
        errors["table_api_type"] = error_text(exc)
    try:
        batch.sql_query("SELECT classify(id) FROM t")
    except Exception as exc:  # noqa: BLE001
        errors["sql_type"] = error_text(exc)
    try:
        inference_function(str(folder / "no-such-model.onnx"))
    except Exception as exc:  # noqa: BLE001
        errors["missing_model"] = error_text(exc)
    try:
        stream.execute_sql("CREATE TEMPORARY MODEL bad INPUT (x DOUBLE) OUTPUT (y ARRAY<FLOAT>) "
                           f"WITH ('provider' = 'zoo', 'path' = '{models['mlp_xml']}')")
        stream.sql_query("SELECT * FROM ML_PREDICT(TABLE t, MODEL bad, DESCRIPTOR(b))")
    except Exception as exc:  # noqa: BLE001
        errors["ml_predict_schema"] = error_text(exc)
    try:
        create_model(stream, "no_threads", models["mlp_xml"], threads=0)
        stream.sql_query("SELECT * FROM ML_PREDICT(TABLE t, MODEL no_threads, DESCRIPTOR(x))")
    except Exception as exc:  # noqa: BLE001
        errors["ml_predict_threads"] = error_text(exc)
    out["errors"] = errors
    out["total_s"] = time.time() - started
    write(result_path, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
