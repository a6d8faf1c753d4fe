"""zoo.errors: what a failed fit tells its caller, and that it survives pickling."""

import pickle

from zoo.errors import WorkerError


def test_a_failed_spark_job_says_it_is_not_a_workers_failure():
    error = WorkerError([(None, "Py4JJavaError: Job aborted due to stage failure")])
    text = str(error)
    assert text.startswith("The Spark job of the training failed before any worker reported an error")
    assert "--- the Spark job, seen from the driver ---\nPy4JJavaError: Job aborted" in text
    assert "worker -1" not in text and "worker None" not in text


def test_worker_failures_name_each_rank_and_pickle():
    error = WorkerError([(0, "Traceback ...\nValueError: bad"), (1, "Traceback ...\nKeyError: 'x'")], "validation")
    text = str(error)
    assert text.startswith("2 worker(s) failed during validation.")
    assert "--- worker 0 ---\nTraceback ...\nValueError: bad" in text and "--- worker 1 ---" in text
    copy = pickle.loads(pickle.dumps(error))
    assert copy.failures == error.failures and str(copy) == text
