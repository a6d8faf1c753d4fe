"""Start the executors' Python workers in the background, with torch and the engine imported.

A fit runs in Python workers that Spark forks on first use; importing torch and the engine there
costs seconds. `init_spark` calls `warm_up_workers`, which runs one tiny job (one task per slot)
in a background thread while the caller goes on loading data. Spark keeps the workers for
reuse (``spark.python.worker.reuse``), so the first fit finds them ready.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)

#: The job group of the warm-up job, so it can be told apart in the Spark UI.
WARM_UP_JOB_GROUP = "zoo-warm-up"

_latest: threading.Thread | None = None


def _import_training_modules(batches):
    """Executor side: import what every fit's barrier task imports."""
    import pyarrow as pa
    import torch

    from zoo.engine.launcher import import_worker_modules

    import_worker_modules()
    for _ in batches:
        pass
    yield pa.RecordBatch.from_pydict({"torch": [torch.__version__]})


def warm_up_workers(spark) -> threading.Thread:
    """Start one Python worker per task slot in a background thread; returns the thread.

    Failures are logged, never raised: the warm-up only saves time, and the session may be
    stopped while it runs.
    """
    from zoo.engine.launcher import available_slots

    sc = spark.sparkContext
    slots = max(1, available_slots(spark))

    def run():
        try:
            sc.setJobGroup(WARM_UP_JOB_GROUP, "Zoo: start Python workers and import torch", interruptOnCancel=False)
            # The same kind of job as a fit (a mapInArrow over a DataFrame): Spark keeps a separate
            # pool of Python workers per kind, and the fit must find these in its pool.
            spark.range(slots, numPartitions=slots).mapInArrow(_import_training_modules, "torch string").collect()
        except Exception as exc:  # the session was stopped, or an executor cannot import torch yet
            logger.debug("Warming up Python workers did not finish: %s", exc)

    global _latest
    thread = threading.Thread(target=run, name="zoo-warm-up", daemon=True)
    thread.start()
    _latest = thread
    return thread


def wait_for_warm_up(timeout_s: float | None = None) -> bool:
    """Block until the latest warm-up has finished (or `timeout_s` passed); True when it has.

    For code that needs every executor idle right away, such as a job that must see a task on
    each executor; a fit does not need it.
    """
    if _latest is None:
        return True
    _latest.join(timeout_s)
    return not _latest.is_alive()
