"""Flink SQL and Table inference with Zoo models (zoo/flink/inference.py, models.py, the Java pieces).

One Flink client process (programs/inference_cases.py) runs three jobs on a real mini-cluster with
models exported by zoo.inference.export: a batch-mode SQL query over the vectorized function; one
streaming job with the Table API's predict, a two-input/two-output function, a function declared
with CREATE TEMPORARY FUNCTION ... LANGUAGE PYTHON and the Java ScalarFunction; and ML_PREDICT with
the 'zoo' provider, synchronous and batched. Every result is compared with InferenceModel.predict
on the same rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.flink.conftest import run_program

pytestmark = pytest.mark.slow
ROWS = 1000


@pytest.fixture(scope="module")
def cases(flink_python, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flink-inference")
    return run_program(flink_python, "inference_cases", folder, str(folder), timeout=400)


def _matches(got: dict, expected: list, atol: float = 1e-5) -> None:
    assert sorted(int(i) for i in got) == list(range(ROWS)), "every row answered exactly once"
    values = np.array([np.ravel(got[str(i)]) for i in range(ROWS)], dtype=float)
    np.testing.assert_allclose(values, np.asarray(expected, dtype=float).reshape(ROWS, -1), atol=atol, rtol=1e-5)


@pytest.mark.parametrize("case", ["sql_batch", "table_api", "sql_ddl"])
def test_vectorized_function_matches_inference_model(cases, case):
    """Batch-mode SQL, the Table API and a DDL-declared function give InferenceModel's predictions."""
    _matches(cases[case], cases["expected"]["mlp"])


def test_two_inputs_and_two_outputs_in_streaming_sql(cases):
    """An ARRAY column and a scalar column in, a ROW of an array and a scalar out."""
    _matches(cases["sql_stream_two"]["scores"], cases["expected"]["two_scores"])
    _matches(cases["sql_stream_two"]["total"], cases["expected"]["two_total"])


def test_java_scalar_function_matches_python(cases):
    """The Java ScalarFunction over zoo/serving_java_api, called from SQL, on 1000 of 1000 rows."""
    _matches(cases["java_udf"], cases["expected"]["mlp"])


@pytest.mark.parametrize("case", ["ml_predict", "ml_predict_async"])
def test_ml_predict_with_the_zoo_provider(cases, case):
    """CREATE MODEL ... ('provider' = 'zoo') with its schema from the model file, then ML_PREDICT."""
    assert "INPUT (`input` ARRAY<DOUBLE>) OUTPUT (`output_0` ARRAY<FLOAT>)" in cases["create_model_sql"]
    _matches(cases[case], cases["expected"]["mlp"])


def test_column_of_the_wrong_type_is_refused_before_the_job_runs(cases):
    table_api = cases["errors"]["table_api_type"]
    assert table_api["type"] == "ModelSignatureError"
    assert "Column 'b' has type FLOAT" in table_api["message"]
    assert "takes ARRAY<DOUBLE>" in table_api["message"] and "CAST the column" in table_api["message"]
    # In SQL the planner refuses it when the query is planned (sql_query), not when a job runs.
    sql = cases["errors"]["sql_type"]
    assert "ValidationException" in sql["message"] and "classify(BIGINT)" in sql["message"]


def test_model_path_that_cannot_be_read_names_the_fix(cases):
    error = cases["errors"]["missing_model"]
    assert error["type"] == "ModelPathError"
    assert "no-such-model.onnx" in error["message"] and "every TaskManager" in error["message"]


def test_ml_predict_schema_that_does_not_fit_the_model_file_is_refused(cases):
    trace = cases["errors"]["ml_predict_schema"]["trace"]
    assert "INPUT column 'x' is DOUBLE" in trace and "takes an ARRAY (a flattened sample)" in trace
    assert "zoo.flink.create_model writes them from the model file" in trace


def test_ml_predict_threads_below_one_are_refused_naming_the_option(cases):
    trace = cases["errors"]["ml_predict_threads"]["trace"]
    assert "'threads' >= 1 (or unset: all cores)" in trace and "threads=0" in trace
