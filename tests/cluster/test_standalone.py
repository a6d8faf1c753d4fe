"""Zoo on a real multi-process Spark standalone cluster (a master and two workers on loopback).

Executors get their Python only from the environment archive the driver ships; NNClassifier
fits and transforms end to end, directly through init_spark and through zoo-submit; a
fit that loses an executor JVM resumes from its last checkpoint and ends where an
uninterrupted fit ends. Each driver runs in its own process (one SparkContext per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.cluster import driver_app
from tests.cluster.conftest import TEST_EXCLUDES, TEST_INCLUDES
from zoo.packaging import DEFAULT_EXCLUDES

pytestmark = pytest.mark.slow

pytest.importorskip("venv_pack", reason="the cluster tests ship a packed venv: pip install venv-pack")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "tests", "cluster", "driver_app.py")
#: zoo-submit as the console script runs it (`python -m zoo.submit`, from the checkout).
ZOO_SUBMIT = [sys.executable, "-m", "zoo.submit"]
DRIVER_TIMEOUT_S = 300
STEP_DELAY_S = 0.05
STEPS_PER_EPOCH = -(-driver_app.ROWS // driver_app.BATCH)


def _driver_env() -> dict:
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET"):
        env.pop(name, None)
    return env


def _run(command: list[str], out: str) -> dict:
    proc = subprocess.run(command, env=_driver_env(), capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S,
                          cwd=ROOT)
    assert proc.returncode == 0 and os.path.exists(out), \
        f"driver failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    with open(out) as f:
        result = json.load(f)
    assert "error" not in result["fit"], result["fit"]["error"]
    return result


@pytest.fixture(scope="module")
def reference(spark, tmp_path_factory):
    """The same fit on the laptop setup (local[2] in this process): what the cluster must match."""
    work = tmp_path_factory.mktemp("reference")
    model = driver_app.estimator(str(work), str(work / "checkpoints"), 0.0).fit(driver_app.dataset(spark))
    return {"params": [p.detach().numpy().ravel() for p in model.model.parameters()],
            "accuracy": driver_app.accuracy(model, driver_app.dataset(spark)),
            "steps": [h["iteration"] for h in model.history if h["event"] == "step"]}


@pytest.fixture(scope="module")
def killed_run(cluster, packed_env, tmp_path_factory):
    """init_spark(cluster_mode="standalone") with the shipped env; the fit loses rank 1's executor."""
    work = tmp_path_factory.mktemp("direct")
    out = str(work / "result.json")
    result = _run([sys.executable, DRIVER, "--out", out, "--work", str(work), "--master", cluster.url,
                   "--archive", packed_env.archive, "--py-files", ",".join(packed_env.py_files),
                   "--kill", "--delay", str(STEP_DELAY_S)], out)
    result["executor_dirs"] = cluster.executor_dirs()
    cluster.clean_work_dir()
    return result


@pytest.fixture(scope="module")
def submitted_run(cluster, packed_env, tmp_path_factory):
    """The same driver program started by zoo-submit, calling plain init_spark()."""
    work = tmp_path_factory.mktemp("submitted")
    out = str(work / "result.json")
    filters = [a for p in TEST_EXCLUDES[len(DEFAULT_EXCLUDES):] for a in ("--exclude", p)]
    filters += [a for p in TEST_INCLUDES for a in ("--include", p)]
    result = _run([*ZOO_SUBMIT, "--cluster-mode", "standalone", "--master", cluster.url,
                   "--num-executors", "2", "--executor-cores", "1", "--executor-memory", "1g", *filters,
                   DRIVER, "--out", out, "--work", str(work)], out)
    result["executor_dirs"] = cluster.executor_dirs()
    cluster.clean_work_dir()
    return result


def _assert_executors_run_the_shipped_env(result: dict, packed_env, py_files: list[str]) -> None:
    facts = result["executors"]
    assert len({f["cwd"] for f in facts}) == 2, (facts, result["probe_failed_tasks"])  # both executors
    for fact in facts:
        env_dir = os.path.join(fact["cwd"], "env")
        # The interpreter and every package come from the archive unpacked in the executor's
        # working directory (<work dir>/<app>/<executor>/env), not from the driver's venv.
        assert fact["cwd"] in result["executor_dirs"], (fact, result["executor_dirs"])
        assert fact["executable"] == os.path.join(env_dir, "bin", "python")
        assert fact["prefix"] == env_dir and fact["realpath_prefix"] == env_dir
        assert fact["torch_file"].startswith(env_dir + os.sep)
        assert os.path.realpath(sys.prefix) not in fact["torch_file"]
        # zoo is an editable install here: its source ships as a zip on the PYTHONPATH.
        assert fact["zoo_file"].split("/")[1] in [os.path.basename(p) for p in py_files], (fact, py_files)
        assert fact["zoo_file"].startswith("./spark_zoo-")
        # One core per task: OpenMP, MKL and torch use one thread; KMP as Analytics Zoo set it.
        assert fact["env"]["OMP_NUM_THREADS"] == fact["env"]["MKL_NUM_THREADS"] == "1"
        assert fact["torch_threads"] == 1
        assert fact["env"]["KMP_BLOCKTIME"] == "0"
        assert fact["env"]["KMP_AFFINITY"] == "granularity=fine,compact,1,0"
        assert fact["env"]["PYSPARK_PYTHON"] == "./env/bin/python"
    assert result["python_exec"] == "./env/bin/python"
    assert result["conf"]["spark.archives"].endswith(os.path.basename(packed_env.archive) + "#env")


def _assert_matches_reference(fit: dict, reference: dict) -> None:
    for got, want in zip(fit["params"], reference["params"]):
        np.testing.assert_allclose(np.array(got), want, rtol=1e-4, atol=1e-5)
    assert fit["accuracy"] == pytest.approx(reference["accuracy"])
    assert fit["accuracy"] > 0.95
    assert fit["rows"] == driver_app.ROWS


def test_executors_python_comes_only_from_the_shipped_archive(killed_run, packed_env):
    _assert_executors_run_the_shipped_env(killed_run, packed_env, list(packed_env.py_files))
    assert killed_run["master"].startswith("spark://127.0.0.1:")


def test_fit_survives_a_killed_executor_by_resuming_from_the_last_checkpoint(killed_run, reference):
    fit = killed_run["fit"]
    assert "killed_pid" in fit, fit.get("kill_error")
    checkpoint = int(fit["checkpoint_at_kill"].split("-")[1])
    assert checkpoint > 0 and checkpoint % STEPS_PER_EPOCH == 0
    # Spark ran the barrier stage twice: two tasks per rank (the second on a new executor).
    assert sum(m.startswith("rank0-") for m in fit["task_markers"]) == 2
    assert sum(m.startswith("rank1-") for m in fit["task_markers"]) == 2
    # The retried stage started from the checkpoint's iteration, not from 0, and went on to the end.
    starts = [h["iteration"] for h in fit["history"] if h["event"] == "start"]
    assert starts == [0, checkpoint]
    history = [h["iteration"] for h in fit["history"] if h["event"] == "step"]
    resumed = history[len(history) - history[::-1].index(checkpoint + 1) - 1:]
    assert resumed == list(range(checkpoint + 1, reference["steps"][-1] + 1))
    # The final model is the one an uninterrupted fit produces.
    _assert_matches_reference(fit, reference)


def test_zoo_submit_ships_the_env_and_fits_end_to_end(submitted_run, packed_env, reference):
    _assert_executors_run_the_shipped_env(submitted_run, packed_env,
                                          submitted_run["conf"]["spark.submit.pyFiles"].split(","))
    assert submitted_run["master"].startswith("spark://127.0.0.1:")
    # init_spark() inside the submitted driver kept the submission's settings and added Zoo's.
    assert submitted_run["conf"]["spark.cores.max"] == "2"
    assert submitted_run["conf"]["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    fit = submitted_run["fit"]
    assert [h["iteration"] for h in fit["history"] if h["event"] == "step"] == reference["steps"]
    _assert_matches_reference(fit, reference)
