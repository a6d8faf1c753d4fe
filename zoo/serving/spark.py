"""Cluster Serving workers as one long-running Spark job: one consumer per task.

`serve_on_spark` runs a barrier stage with one task per worker of every model (``workers`` in
config.yaml). Each task runs the same `ServingWorker` loop as a local worker process, joins the
model's consumer group under its own consumer name, and returns when the model's stop key appears
(`request_stop`, or ``zoo-serving stop``). Barrier mode makes Spark refuse the job up front when
the cluster has fewer free slots than workers, instead of leaving some workers unscheduled; a
task that dies is retried with its stage, and the entries it held are reclaimed by the others.

Model paths must be readable on every executor: a URL (``s3://``, ``hdfs://``; each task fetches
the model into its local cache with the driver's storage options, see `zoo.storage`), a shared
file system, or the same path on each node.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from zoo.serving import defaults as D
from zoo.serving.config import ServingConfig, load_config
from zoo.storage import storage_options
from zoo.serving.connection import connect_config, publish_info

logger = logging.getLogger(__name__)


def _serve_tasks(config_dict: dict[str, Any], options: dict):
    """The barrier task body: a closure over plain values, importing the worker on the executor."""

    def serve(partition):
        import os
        import socket

        from pyspark import BarrierTaskContext

        from zoo.serving.config import ServingConfig
        from zoo.serving.connection import connect_config
        from zoo.serving.worker import ServingWorker
        from zoo.storage import install_storage_options

        install_storage_options(options)
        config = ServingConfig.from_dict(config_dict)
        context = BarrierTaskContext.get()
        for name, index in partition:
            consumer = (f"spark-{name}-{index}-a{context.attemptNumber()}-"
                        f"{socket.gethostname()}-{os.getpid()}")
            worker = ServingWorker(config.model(name), config.queue, connect_config(config), consumer=consumer)
            yield name, index, worker.run()

    return serve


def serve_on_spark(spark: Any, config: ServingConfig) -> list[tuple[str, int, int]]:
    """Serve every model of ``config`` from Spark tasks until stopped; blocks the calling thread.

    Returns ``(model, worker index, records answered)`` for each task once all have stopped.
    """
    client = connect_config(config)
    for model in config.models:
        client.delete(D.stop_key(model.name))
        publish_info(client, model, config.queue)
    client.close()
    tasks = [(model.name, index) for model in config.models for index in range(model.workers)]
    rdd = spark.sparkContext.parallelize(tasks, len(tasks))
    spark.sparkContext.setJobDescription(f"Zoo Cluster Serving: {len(tasks)} workers")
    return rdd.barrier().mapPartitions(_serve_tasks(config.to_dict(), storage_options())).collect()


def request_stop(config: ServingConfig) -> None:
    """Tell every worker of every model of ``config`` (local or in Spark) to finish and exit."""
    client = connect_config(config)
    for model in config.models:
        client.set(D.stop_key(model.name), "1", ex=3600)
    client.close()


def main(argv: list[str] | None = None) -> int:
    """Driver of the serving job (``python -m zoo.serving.spark --config config.yaml --master MASTER``)."""
    parser = argparse.ArgumentParser(description="Run Cluster Serving workers as a Spark job.")
    parser.add_argument("--config", required=True, help="path of config.yaml")
    parser.add_argument("--master", required=True, help="Spark master URL (local[4], spark://..., yarn, k8s://...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    from zoo.context import init_spark

    # Serving runs an RDD barrier job, whose Python workers are not the ones a warm-up starts.
    spark = init_spark(master=args.master, app_name="zoo-serving", warm_up=False)
    stopping = threading.Event()

    def on_signal(*_):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=request_stop, args=(config,), daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results = serve_on_spark(spark, config)
    for name, index, answered in results:
        logger.info("Spark worker %d of model %r answered %d requests", index, name, answered)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
