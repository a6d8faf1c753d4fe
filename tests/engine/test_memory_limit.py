"""cachingSample="DISK" trains on a partition three times the memory Spark gives a Python worker.

Spark enforces `spark.executor.pyspark.memory` on each Python worker as an address-space limit
(RLIMIT_AS, pyspark's `setup_memory_limits`); `spark.python.worker.memory` only sets when
aggregations spill, and is not a limit. memory_limit_job.py runs the limited fits on
local-cluster[1,1,1024] in its own process (one SparkContext per process); the unlimited
in-memory fit of the same rows runs here, on local[2].
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, subprocess_env
from tests.engine.memory_limit_job import WIDTH, fit, frame

JOB = os.path.join(os.path.dirname(__file__), "memory_limit_job.py")
#: spark.executor.pyspark.memory in MiB: torch, Arrow and the process group take about 1.2 GiB
#: of address space in a training worker before any data.
LIMIT_MIB = 1400
ROWS = 3 * LIMIT_MIB * (1 << 20) // (WIDTH * 4)
STEPS = 60


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_disk_fit_trains_on_three_times_the_workers_memory_limit_like_an_in_memory_fit_and_a_memory_fit_fails(
        spark):
    done = subprocess.run([sys.executable, JOB, "--rows", str(ROWS), "--limit-mb", str(LIMIT_MIB),
                           "--steps", str(STEPS), "--caching", "DISK", "MEMORY"],
                          capture_output=True, text=True, timeout=840, cwd=ROOT, env=subprocess_env())
    assert done.returncode == 0, done.stderr[-4000:]
    limited = json.loads(done.stdout.strip().splitlines()[-1])
    on_disk, in_memory = limited["fits"]
    assert limited["data_mib"] >= 3 * LIMIT_MIB
    assert "error" not in on_disk, on_disk["error"]
    assert on_disk["peak_kb"]["VmPeak"] <= LIMIT_MIB * 1024, "the limit was not in force"
    assert "MemoryError" in in_memory.get("error", ""), f"cachingSample=MEMORY did not run out of memory: {in_memory}"

    unlimited = fit(frame(spark, ROWS), "MEMORY", STEPS)
    assert "error" not in unlimited, unlimited["error"]
    for got, want in zip(on_disk["weights"], unlimited["weights"]):
        np.testing.assert_array_equal(got, want)
    assert on_disk["loss"] < 1e-3, f"the model did not learn (loss {on_disk['loss']})"
