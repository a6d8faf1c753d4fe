"""cachingSample="DISK" trains on a partition three times the memory Spark gives a Python worker.

Spark enforces `spark.executor.pyspark.memory` on each Python worker as an address-space limit
(RLIMIT_AS, pyspark's `setup_memory_limits`); `spark.python.worker.memory` only sets when
aggregations spill, and is not a limit. memory_limit_job.py runs the limited fits on
local-cluster[1,1,1024] in its own process (one SparkContext per process); the unlimited
in-memory fit of the same data is compared on smaller data in test_disk_samples.py.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env
from tests.engine.memory_limit_job import WIDTH

JOB = os.path.join(os.path.dirname(__file__), "memory_limit_job.py")
#: spark.executor.pyspark.memory in MiB: torch, Arrow and the process group take about 1.2 GiB
#: of address space in a training worker before any data.
LIMIT_MIB = 1400
ROWS = 3 * LIMIT_MIB * (1 << 20) // (WIDTH * 4)
STEPS = 60


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_disk_fit_trains_on_three_times_the_workers_memory_limit():
    # The same fit with cachingSample="MEMORY" runs out of memory (bench/memory.py --limit-mib
    # shows it), and DISK equals MEMORY bit for bit (tests/engine/test_disk_samples.py): neither
    # is repeated here, where each pass over 4 GiB costs minutes.
    done = subprocess.run([sys.executable, JOB, "--rows", str(ROWS), "--limit-mb", str(LIMIT_MIB),
                           "--steps", str(STEPS), "--caching", "DISK"],
                          capture_output=True, text=True, timeout=840, cwd=ROOT, env=subprocess_env())
    assert done.returncode == 0, done.stderr[-4000:]
    limited = json.loads(done.stdout.strip().splitlines()[-1])
    (on_disk,) = limited["fits"]
    assert limited["data_mib"] >= 3 * LIMIT_MIB
    assert "error" not in on_disk, on_disk["error"]
    assert on_disk["peak_kb"]["VmPeak"] <= LIMIT_MIB * 1024, "the limit was not in force"
    assert on_disk["loss"] < 1e-3, f"the model did not learn (loss {on_disk['loss']})"
