"""The engine on local-cluster[2,1,1024]: executors in their own processes, a crashed worker."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

JOB = os.path.join(os.path.dirname(__file__), "local_cluster_job.py")


@pytest.fixture(scope="module")
def findings():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, JOB], capture_output=True, text=True, timeout=540, cwd=root,
                          env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_executors_are_separate_processes(findings):
    assert len(findings["executor_pids"]) == 2 and findings["driver_pid"] not in findings["executor_pids"]


def test_a_retried_stage_resumes_from_the_checkpoint_and_matches_an_uninterrupted_fit(findings):
    assert findings["crashed"]
    # The first attempt started at 0; Spark retried the stage and it resumed after epoch 1 (20 steps).
    assert findings["starts"] == [0, 20]
    assert findings["last_step"] == 80
    assert findings["max_weight_difference"] < 1e-6
    assert findings["accuracy"] > 0.95
