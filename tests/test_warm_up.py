"""init_spark's warm-up: the first fit finds Python workers with torch already imported."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from zoo import init_spark
    from zoo.warm_up import warm_up_workers

    def torch_loaded(batches):
        for _ in batches:
            pass
        yield pa.RecordBatch.from_pydict({"loaded": ["torch" in sys.modules]})

    def check(spark):
        rows = spark.range(2, numPartitions=2).mapInArrow(torch_loaded, "loaded boolean").collect()
        return [row.loaded for row in rows]

    spark = init_spark("local[2]", warm_up=False)
    print("before", check(spark))
    warm_up_workers(spark).join(timeout=300)
    print("after", check(spark))
    spark.stop()
""")


@pytest.mark.slow
def test_warm_up_imports_torch_in_the_workers_a_fit_reuses():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("before", "after")))
    assert lines["before"] == "[False, False]"
    assert lines["after"] == "[True, True]"
