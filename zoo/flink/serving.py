"""Cluster Serving as a Flink job: the same config.yaml, Redis streams, consumer group, codec and
clients as the local workers (`zoo.serving.worker`), run by Flink's tasks.

One pipeline per model, with ``workers`` parallel subtasks:

    NumberSequenceSource (a tick per turn) -> RedisServeFunction (a Python FlatMap) -> sink

Each subtask of `RedisServeFunction` is a `ServingWorker` with its own consumer name in the
model's group. A tick runs one turn of the worker's loop: heartbeat, then the entries of dead
consumers (XAUTOCLAIM) or a fresh batch (XREADGROUP, batch size or max wait), decode, predict, and
results + metrics + XACK + XDEL in one MULTI. So an entry is acknowledged only together with its
result, and the entries a failed task held stay pending in Redis until a live consumer, the
restarted task included, reclaims them: the consumer group's pending list is the job's durable
state, as a Kafka consumer group's offsets are. Flink's checkpointing is on and its restart
strategy brings a failed task back; no request depends on Flink's state to be answered.

Run by ``zoo-serving start --engine flink`` as ``python -m zoo.flink.serving --config config.yaml``
in the Flink environment; the process ends (cancelling the job) when the models' stop key appears
(``zoo-serving stop``) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time

from zoo.flink import runtime
from zoo.serving import defaults as D
from zoo.serving.config import ModelConfig, QueueConfig, ServingConfig, load_config
from zoo.serving.worker import ServingWorker

logger = logging.getLogger(__name__)

#: Checkpoint interval of the serving job (ms).
DEFAULT_CHECKPOINT_INTERVAL_MS = 5_000
#: Seconds between two restarts of a failed task.
DEFAULT_RESTART_DELAY_S = 1
#: Restarts before the job gives up.
DEFAULT_RESTART_ATTEMPTS = 1_000
#: Ticks per bundle handed to a Python worker. Each bundle costs a round trip between the JVM and
#: the Python worker (one tick per bundle cut requests/s at concurrency 1 by a third); a checkpoint
#: barrier waits for the bundle in flight: 20 turns, a few batches under load, at most 5 s (20 idle
#: blocks of 250 ms) on an idle stream, instead of PyFlink's default of 100,000.
TICKS_PER_BUNDLE = 20
#: Milliseconds after which the JVM closes a bundle even if it holds fewer ticks.
BUNDLE_TIME_MS = 100
#: Seconds between two checks of the stop key by the job's client process.
STOP_POLL_S = 0.5


def _checked_redis_client(config: ServingConfig):
    """A Redis client for `config` that answered PING; else a `ServingConfigError` naming the URL and the fix."""
    import redis

    from zoo.serving.errors import ServingConfigError
    from zoo.serving.connection import connect_config

    client = connect_config(config)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServingConfigError(
            f"Cannot reach Redis at {config.redis.effective_url} ({exc}). Start it, or fix `redis.url` (and "
            f"`redis.password`) in config.yaml; the Flink job's tasks need it too."
        ) from exc
    return client


class RedisServeFunction:
    """One subtask's serving worker, driven one turn per tick (built into a pyflink FlatMap).

    Args:
        model: the model's section of config.yaml.
        queue: the queue section.
        config: the whole config as a dict (for the Redis connection).
    """

    def __init__(self, model: ModelConfig, queue: QueueConfig, config: dict):
        self.model = model
        self.queue = queue
        self.config = config
        self.worker = None

    def open(self, runtime_context) -> None:
        """Load the model, join the consumer group and publish the model's info."""
        from zoo.serving.connection import connect_config
        from zoo.serving.worker import load_model

        config = ServingConfig.from_dict(self.config)
        consumer = (f"flink-{self.model.name}-{runtime_context.get_index_of_this_subtask()}-"
                    f"a{runtime_context.get_attempt_number()}-{socket.gethostname()}-{os.getpid()}")
        self.worker = DrivenWorker(self.model, self.queue, connect_config(config), consumer=consumer,
                                    inference_model=load_model(self.model))
        self.worker.start()
        logger.info("Flink serving task %s serving model %r", consumer, self.model.name)

    def turn(self) -> int:
        """One turn of the worker's loop; returns the records answered by it."""
        if self.worker.stopping:
            time.sleep(STOP_POLL_S)  # the client cancels the job; do not spin until then
            return 0
        before = self.worker.answered
        backoff = self.worker.turn()
        if backoff:
            time.sleep(backoff)  # Redis is away: the task waits as a worker process would
        return self.worker.answered - before

    def close(self) -> None:
        """Leave the group (when nothing is pending on this consumer) and free the model."""
        if self.worker is not None:
            self.worker.leave()
            self.worker = None


class DrivenWorker(ServingWorker):
    """A `ServingWorker` whose loop a Flink task drives one turn at a time, instead of `run`."""

    @property
    def stopping(self) -> bool:
        """Whether the model's stop key was seen."""
        return self._stop.is_set()

    def leave(self) -> None:
        """What `run` does on its way out: drop the heartbeat and an idle consumer; free the model."""
        self._teardown(owns_model=True)


def build_job(env, config: ServingConfig) -> None:
    """Add one serving pipeline per model of `config` to the StreamExecutionEnvironment `env`."""
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.datastream import FlatMapFunction
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    config_dict = config.to_dict()
    for model in config.models:
        body = RedisServeFunction(model, config.queue, config_dict)

        class Serve(FlatMapFunction):
            """pyflink's face of `RedisServeFunction`: a tick in, nothing out."""

            def open(self, runtime_context):
                body.open(runtime_context)

            def flat_map(self, value):
                body.turn()
                return iter(())

            def close(self):
                body.close()

        ticks = env.from_source(NumberSequenceSource(0, 2**63 - 2), WatermarkStrategy.no_watermarks(),
                                f"ticks-{model.name}").set_parallelism(model.workers)
        served = ticks.flat_map(Serve(), output_type=Types.LONG()).name(f"serve-{model.name}") \
            .set_parallelism(model.workers)
        served.print().name(f"done-{model.name}").set_parallelism(model.workers)


def serving_environment(config: ServingConfig, checkpoint_interval_ms: int = DEFAULT_CHECKPOINT_INTERVAL_MS):
    """A StreamExecutionEnvironment for the serving job: checkpointing on, a fixed-delay restart
    strategy, one tick per Python bundle, this environment's Python for the workers."""
    env = runtime.stream_environment(parallelism=max(m.workers for m in config.models), settings={
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": DEFAULT_RESTART_ATTEMPTS,
        "restart-strategy.fixed-delay.delay": f"{DEFAULT_RESTART_DELAY_S} s",
        "python.fn-execution.bundle.size": TICKS_PER_BUNDLE,
        "python.fn-execution.bundle.time": BUNDLE_TIME_MS,
    })
    env.enable_checkpointing(checkpoint_interval_ms)
    return env


def serve(config: ServingConfig, stop: threading.Event | None = None) -> None:
    """Run the serving job of `config` until a model's stop key appears or `stop` is set.

    Raises:
        ServingConfigError: Redis cannot be reached or a model file is missing.
        RuntimeError: the job failed for good (its restart attempts ran out).
    """
    from zoo.serving.errors import ServingConfigError

    missing = [m.path for m in config.models if not os.path.exists(m.path)]
    if missing:
        raise ServingConfigError(f"Model file(s) {missing} do not exist. Fix `path` in config.yaml.")
    client = _checked_redis_client(config)
    for model in config.models:
        client.delete(D.stop_key(model.name))
    env = serving_environment(config)
    build_job(env, config)
    job = env.execute_async(f"Zoo Cluster Serving: {[m.name for m in config.models]}")
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            if any(client.exists(D.stop_key(m.name)) for m in config.models):
                break
            status = str(job.get_job_status().result())
            if status in ("FAILED", "CANCELED", "FINISHED"):
                raise RuntimeError(f"The Flink serving job ended with status {status}; see its log.")
            stop.wait(STOP_POLL_S)
    finally:
        try:
            job.cancel().result()
        except Exception:  # the job may have ended already
            pass
        client.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the serving job's client (``python -m zoo.flink.serving --config config.yaml``)."""
    parser = argparse.ArgumentParser(description="Run Cluster Serving as a Flink job.")
    parser.add_argument("--config", required=True, help="path of config.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from zoo.flink.errors import FlinkSetupError
    from zoo.serving.errors import ServingConfigError

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        serve(load_config(args.config), stop)
    except (ServingConfigError, FlinkSetupError) as exc:
        print(f"zoo.flink.serving: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
