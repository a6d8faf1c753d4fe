"""Streaming fit: train an NNEstimator on a Structured Streaming DataFrame, one micro-batch at a time.

`NNEstimator.fitStream(stream_df, checkpoint_location=...)` starts a query whose `foreachBatch`
trains every micro-batch as one distributed fit (`zoo.engine.launcher.run_fit`, the same barrier
stage as `fit`) that resumes from the previous micro-batch's engine checkpoint: weights, optimizer
state and position, so training continues and never restarts from scratch.

Layout under `checkpoint_location` (a path or any URL `zoo.storage` serves):
    query/                       Spark's own checkpoint (offset and commit logs)
    state/checkpoint-<iter>/     engine checkpoints (`zoo.engine.checkpoint`)
    commits/batch-<id>.json      one record per trained micro-batch: the checkpoint that holds its
                                 update, the source offsets, the publish schedule and the latest version

Exactly once: a micro-batch's update counts only once its commit record exists; the record is
written atomically (`zoo.storage.staged_files`) after the checkpoint it names. On a restart,
checkpoints newer than the last record are removed, and a micro-batch whose id is already
recorded (Spark replays the last uncommitted one with the same id) is skipped, so no update is
lost or applied twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass

from zoo import storage
from zoo.engine import checkpoint as ckpt
from zoo.engine.adapters import adapter_for, copy_model
from zoo.engine.config import CheckpointConfig
from zoo.engine.launcher import available_slots, check_slots, prepare_frame, run_fit
from zoo.engine.storage_preflight import storage_preflight
from zoo.engine.triggers import MaxEpoch
from zoo.errors import (
    PublishError, SchemaDriftError, StreamStopped, ZooTypeError, ZooValueError, check_positive_int,
)

__all__ = ["fit_stream", "StreamingFit", "BatchRecord", "Gate", "RegistryPublisher", "PublishPolicy", "PublishError"]

logger = logging.getLogger(__name__)

QUERY_DIR, STATE_DIR, COMMITS_DIR = "query", "state", "commits"
COMMIT_PREFIX = "batch-"
#: Commit records kept besides the latest one (for inspection; only the latest is read back).
KEEP_COMMITS = 5
#: Rows of the publishing micro-batch a FeatureReference (drift baseline) is built from.
REFERENCE_ROWS = 10_000


@dataclass
class BatchRecord:
    """One trained micro-batch (`StreamingFit.history`).

    Attributes:
        batch_id: Spark's micro-batch id.
        rows: rows trained on.
        loss: mean training loss over the micro-batch's steps.
        seconds: wall time from the micro-batch's arrival to its commit (publishing excluded).
        version: the version published after it, or None.
    """

    batch_id: int
    rows: int
    loss: float
    seconds: float
    version: int | None = None


@dataclass
class Gate:
    """The evaluation gate run on every published version (`zoo.registry.evaluate` + `ModelRegistry.gate`).

    Args:
        heldout: a static DataFrame of held-out rows (the feature and label columns), or a
            callable returning one, called at every judgement: a moving window of recent labelled
            events. With a window the champion is judged on the same rows as the new version
            (its figure from an older window would not be comparable).
        metric: "loss", "mse", "mae", "accuracy", or a callable(pred ndarray, label ndarray) -> float.
        tolerance: how much worse than the champion's metric a version may be and still be accepted.
        higher_is_better: default: True for "accuracy", False otherwise.
        label_col: the label column of `heldout`.
    """

    heldout: object
    metric: object = "loss"
    tolerance: float = 0.0
    higher_is_better: bool | None = None
    label_col: str = "label"

    def __post_init__(self):
        if not (hasattr(self.heldout, "sparkSession") or callable(self.heldout)):
            raise ZooTypeError(f"Expected Gate `heldout` to be a Spark DataFrame of held-out rows, or a callable "
                               f"returning one (a moving window). Received: {type(self.heldout).__name__}.")
        if not (callable(self.metric) or self.metric in ("loss", "mse", "mae", "accuracy")):
            raise ZooValueError(f"Expected Gate `metric` in ('loss', 'mse', 'mae', 'accuracy') or a callable "
                                f"(pred, label) -> float. Received: metric={self.metric!r}.")
        if not isinstance(self.tolerance, (int, float)) or not self.tolerance >= 0:
            raise ZooValueError(f"Expected Gate `tolerance` >= 0. Received: tolerance={self.tolerance!r}.")
        if self.higher_is_better is None:
            self.higher_is_better = self.metric == "accuracy"

    @property
    def moving(self) -> bool:
        """Whether the held-out rows are a window read anew at each judgement."""
        return not hasattr(self.heldout, "sparkSession")

    def rows(self):
        """The held-out DataFrame to judge on now."""
        return self.heldout() if self.moving else self.heldout

    def score(self, model, rows) -> float:
        """`model`'s metric on `rows`."""
        from zoo.registry import evaluate

        return float(evaluate(model, rows, self.metric, label_col=self.label_col))

    @property
    def metric_name(self) -> str:
        """The metric's name as recorded on the version."""
        return self.metric if isinstance(self.metric, str) else getattr(self.metric, "__name__", "metric")


class RegistryPublisher:
    """Publishes each version to a `zoo.registry.ModelRegistry` under `name` (the default publisher)."""

    def __init__(self, registry, name: str):
        self.registry = registry
        self.name = name

    def __call__(self, model, *, metrics, offsets, parent, reference) -> int:
        """`ModelRegistry.publish`; returns the new version number."""
        return self.registry.publish(self.name, model, metrics=metrics, offsets=offsets, parent=parent,
                                     reference=reference)


def _check_optional_positive(name: str, value, kind=int):
    if value is None:
        return None
    if kind is int:
        return check_positive_int(name, value)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ZooValueError(f"Expected `{name}` > 0 (seconds). Received: {name}={value!r}.")
    return float(value)


@dataclass
class PublishPolicy:
    """When to publish a version: every N trained micro-batches, every T seconds, or when
    `on_metric(history)` says so (checked after each micro-batch; any one fires)."""

    every_batches: int | None = None
    every_seconds: float | None = None
    on_metric: object = None

    def __post_init__(self):
        self.every_batches = _check_optional_positive("publish_every_batches", self.every_batches)
        self.every_seconds = _check_optional_positive("publish_every_seconds", self.every_seconds, float)
        if self.on_metric is not None and not callable(self.on_metric):
            raise ZooTypeError(f"Expected `publish_on_metric` to be a callable (history: list[BatchRecord]) -> bool. "
                               f"Received: {type(self.on_metric).__name__}.")

    @property
    def enabled(self) -> bool:
        """Whether any trigger is set."""
        return self.every_batches is not None or self.every_seconds is not None or self.on_metric is not None

    def due(self, batches_since: int, seconds_since: float, history: list[BatchRecord]) -> bool:
        """Whether to publish now, `batches_since` micro-batches and `seconds_since` seconds after the last one."""
        if self.every_batches is not None and batches_since >= self.every_batches:
            return True
        if self.every_seconds is not None and seconds_since >= self.every_seconds:
            return True
        return self.on_metric is not None and bool(self.on_metric(list(history)))


class StreamState:
    """The streaming fit's state under `location`: engine checkpoints plus the commit records."""

    def __init__(self, location: str):
        self.location = storage.resolve(location)
        self.query_dir = storage.join(self.location, QUERY_DIR)
        self.state_dir = storage.join(self.location, STATE_DIR)
        self.commits_dir = storage.join(self.location, COMMITS_DIR)

    def _commit_names(self) -> list[str]:
        if not storage.exists(self.commits_dir):
            return []
        return sorted(n for n in storage.listdir(self.commits_dir) if n.startswith(COMMIT_PREFIX) and n.endswith(".json"))

    def last_commit(self) -> dict | None:
        """The newest commit record, or None before the first micro-batch."""
        names = self._commit_names()
        return json.loads(storage.read_bytes(storage.join(self.commits_dir, names[-1]))) if names else None

    def recover(self) -> dict | None:
        """Remove checkpoints no commit record names (a micro-batch trained but not committed:
        Spark replays it), so the engine resumes from the committed state. Returns the last record."""
        record = self.last_commit()
        keep = record["checkpoint"] if record else None
        for name in ckpt.checkpoint_names(self.state_dir) if storage.exists(self.state_dir) else []:
            if name != keep:
                logger.info("Removing %s: its micro-batch was not committed and will be replayed", name)
                storage.remove(storage.join(self.state_dir, name))
        return record

    def write(self, record: dict) -> None:
        """Write (or replace) the record of micro-batch `record["batch_id"]` atomically."""
        url = storage.join(self.commits_dir, f"{COMMIT_PREFIX}{record['batch_id']:012d}.json")
        with storage.staged_files(url) as (path,):
            with open(path, "w") as f:
                json.dump(record, f)

    def commit(self, record: dict) -> None:
        """Commit a micro-batch's update, then drop the checkpoints and old records it supersedes."""
        self.write(record)
        for name in ckpt.checkpoint_names(self.state_dir):
            if name != record["checkpoint"]:
                storage.remove(storage.join(self.state_dir, name))
        for name in self._commit_names()[:-(KEEP_COMMITS + 1)]:
            storage.remove(storage.join(self.commits_dir, name))

    def model_state(self, record: dict) -> bytes:
        """The model weights of a commit record's checkpoint."""
        return storage.read_bytes(storage.join(self.state_dir, record["checkpoint"], ckpt.MODEL_FILE))

    def batch_offsets(self, batch_id: int) -> list:
        """The end offsets of micro-batch `batch_id`, one per source, from Spark's offset log (Spark
        writes it before the micro-batch runs)."""
        url = storage.join(self.query_dir, "offsets", str(batch_id))
        if not storage.exists(url):
            return []
        lines = storage.read_bytes(url).decode().splitlines()[2:]  # a version line, then the batch metadata
        return [json.loads(line) if line not in ("", "-") else None for line in lines]


def spark_location(url: str) -> str:
    """`url` as Spark's Hadoop file systems name it (s3:// is s3a:// there)."""
    return "s3a" + url[len("s3"):] if storage.scheme_of(url) == "s3" else url


def schema_of(df, names: list[str]) -> dict[str, str]:
    """Column name -> Spark type string, for `names`."""
    return {n: df.schema[n].dataType.simpleString() for n in names}


def check_schema(expected: dict[str, str], received: dict[str, str], where: str) -> None:
    """Raise SchemaDriftError naming each column whose type differs from the one the model trained on."""
    for name, kind in expected.items():
        if received.get(name) != kind:
            raise SchemaDriftError(
                f"{where}: column `{name}` has type {received.get(name, 'missing')}, but the model was trained on "
                f"{kind}. Expected the stream's columns {expected}. Received {received}. Cast the column back to "
                f"{kind}, or start a new fit with another checkpoint_location for the new schema.")


class StreamTrainer:
    """The `foreachBatch` function of a streaming fit: checks, trains and commits each micro-batch."""

    def __init__(self, estimator, columns, config, state: StreamState, publisher, policy: PublishPolicy,
                 gate: Gate | None, registry, model_name: str | None, expected_schema: dict[str, str]):
        self.estimator = estimator
        self.columns = columns
        self.config = config
        self.state = state
        self.publisher = publisher
        self.policy = policy
        self.gate = gate
        self.registry = registry
        self.model_name = model_name
        self.expected_schema = expected_schema
        self.history: list[BatchRecord] = []
        self.error: BaseException | None = None
        self.stopping = False
        #: Held while a micro-batch trains, so `StreamingFit.stop` can let it finish first.
        self.busy = threading.Lock()
        self.record = state.recover()
        self.checked_model = self.record is not None
        self._state_bytes = state.model_state(self.record) if self.record else None
        self._model = None
        self._last_publish_time = time.time()

    # ---- what the handle reads -------------------------------------------------------------
    def latest_version(self) -> int | None:
        """The last published version, or None."""
        return self.record.get("version") if self.record else None

    def latest_model(self):
        """An NNModel (NNClassifierModel) of the last committed state, or None before the first micro-batch."""
        if self._state_bytes is None:
            return None
        if self._model is None:
            adapter = adapter_for(self.estimator.model)
            trained = copy_model(adapter, self.estimator.model)
            adapter.load_state_bytes_into(trained, self._state_bytes)
            self._model = self.estimator._create_model(trained, self.columns.feature_steps, None)
        return self._model

    # ---- one micro-batch ----------------------------------------------------------------------
    def __call__(self, batch_df, batch_id: int) -> None:
        with self.busy:
            if self.stopping:
                # Raised, not skipped: a micro-batch that returns counts as done for Spark and
                # would never be replayed; this one is left for the next query.
                raise StreamStopped(f"fitStream was stopped; micro-batch {batch_id} is left for the next query.")
            try:
                self._train(batch_df, int(batch_id))
            except BaseException as exc:
                if not self.stopping:  # stop(wait=False) interrupts the micro-batch under way: not a failure
                    self.error = exc
                raise

    def _train(self, batch_df, batch_id: int) -> None:
        started = time.time()
        if self.record is not None and batch_id <= self.record["batch_id"]:
            logger.info("Micro-batch %d is already in the state (committed as %d); skipping its replay",
                        batch_id, self.record["batch_id"])
            return
        check_schema(self.expected_schema, schema_of(batch_df, self.columns.names), f"Micro-batch {batch_id}")
        estimator, columns = self.estimator, self.columns
        if not self.checked_model:
            # Once per fit: the data pass and the model's dry run. Later micro-batches get only the
            # schema check above; a bad one fails in the engine before its update is checkpointed.
            summary, sample = estimator._check_data(batch_df, columns, allow_empty=True)
            if int(summary["rows"]) == 0:
                return
            estimator._check_model_on(sample, columns, summary)
            self.checked_model = True
        elif batch_df.isEmpty():
            # Not a count: the fit reports its rows, and a count would read the micro-batch (for the
            # rate or Redis source, the source itself) once more.
            return
        epoch = self.record["epoch"] if self.record else 0
        target = MaxEpoch(epoch + estimator.getMaxEpoch())
        config = dataclasses.replace(self.config, end_trigger=target, run_id=uuid.uuid4().hex,
                                     checkpoint=dataclasses.replace(self.config.checkpoint, trigger=target))
        frame = prepare_frame(batch_df, columns.inputs, config.num_workers)
        result = run_fit(frame, columns.layout, estimator._payload(columns, config), config, started=started)
        latest = ckpt.latest_checkpoint(self.state.state_dir)
        losses = [h["loss"] for h in result.history if h.get("event") == "step"]
        entry = BatchRecord(batch_id, result.rows, float(sum(losses) / len(losses)) if losses else math.nan,
                            0.0)
        previous = self.record or {}
        record = {
            "batch_id": batch_id, "checkpoint": storage.basename(latest), "epoch": result.epoch,
            "iteration": result.iteration, "offsets": self.state.batch_offsets(batch_id),
            "rows": previous.get("rows", 0) + entry.rows, "schema": self.expected_schema,
            "version": previous.get("version"), "batches_since_publish": previous.get("batches_since_publish", 0) + 1,
        }
        self.state.commit(record)
        self.record, self._state_bytes, self._model = record, result.model_state, None
        entry.seconds = time.time() - started
        self.history.append(entry)
        since = time.time() - self._last_publish_time
        if self.publisher is not None and self.policy.due(record["batches_since_publish"], since, self.history):
            entry.version = self._publish(batch_df, record)

    # ---- publishing ------------------------------------------------------------------------------
    def _publish(self, batch_df, record: dict) -> int:
        model = self.latest_model()
        metrics = {"loss": self.history[-1].loss, "rows": float(record["rows"])}
        offsets = {"batch_id": record["batch_id"], "sources": record["offsets"]}
        try:
            gate_metric = champion_metric = None
            if self.gate is not None:
                rows = self.gate.rows()
                gate_metric = self.gate.score(model, rows)
                metrics[f"heldout_{self.gate.metric_name}"] = gate_metric
            version = int(self.publisher(model, metrics=metrics, offsets=offsets, parent=record.get("version"),
                                         reference=self._reference(batch_df)))
            if self.gate is not None:
                champion_metric = self._champion_metric(rows)
                self.registry.gate(self.model_name, version, metric=gate_metric,
                                   higher_is_better=self.gate.higher_is_better, tolerance=self.gate.tolerance,
                                   metric_name=self.gate.metric_name, champion_metric=champion_metric)
        except Exception as exc:
            raise PublishError(
                f"Publishing the model after micro-batch {record['batch_id']} failed: {type(exc).__name__}: {exc}. "
                f"The training state up to micro-batch {record['batch_id']} is committed under "
                f"{self.state.location}; fix the registry and restart fitStream with the same checkpoint_location "
                f"to continue (the next micro-batch publishes again).") from exc
        record = {**record, "version": version, "batches_since_publish": 0}
        self.state.write(record)
        self.record = record
        self._last_publish_time = time.time()
        return version

    def _champion_metric(self, rows) -> float | None:
        """The champion's metric on `rows` when the gate's window moves (None otherwise, or
        without a champion: the registry then uses the recorded figure, or accepts)."""
        if not self.gate.moving:
            return None
        champion = self.registry.champion(self.model_name)
        if champion is None:
            return None
        from zoo.registry import flavor

        resolved = self.registry.resolve(f"models:/{self.model_name}/{champion}")
        return self.gate.score(flavor.load_model(resolved.model_dir), rows)

    def _reference(self, batch_df):
        """A FeatureReference of the publishing micro-batch's features (when zoo.monitoring.drift exists)."""
        try:
            from zoo.monitoring.drift import FeatureReference
        except ImportError:
            return None
        from zoo.engine.arrow_data import read_columns

        names = self.columns.feature_cols
        table = self.columns.select(batch_df).select(*names).limit(REFERENCE_ROWS).toArrow()
        return FeatureReference.from_columns(read_columns(table.to_batches(), names))


class StreamingFit:
    """The handle of a running streaming fit (what `NNEstimator.fitStream` returns).

    Attributes:
        query: the Spark StreamingQuery.
        history: one `BatchRecord` per micro-batch trained by this query.
        checkpoint_location: where the state lives (restart with the same one to continue).
    """

    def __init__(self, query, trainer: StreamTrainer):
        self.query = query
        self._trainer = trainer
        self.checkpoint_location = trainer.state.location

    @property
    def history(self) -> list[BatchRecord]:
        """The micro-batches this query trained, in order."""
        return list(self._trainer.history)

    def latestVersion(self) -> int | None:
        """The last published version (kept across restarts), or None."""
        return self._trainer.latest_version()

    def latestModel(self):
        """An NNModel of the last committed training state, or None before the first micro-batch."""
        return self._trainer.latest_model()

    def exception(self) -> BaseException | None:
        """Why the query stopped: Zoo's own error (e.g. SchemaDriftError, PublishError) when the training
        raised it, else Spark's, else None."""
        return self._trainer.error or self.query.exception()

    def _reraise(self, call, *args):
        from pyspark.errors import StreamingQueryException

        try:
            return call(*args)
        except StreamingQueryException:
            if self._trainer.error is not None:
                raise self._trainer.error from None
            raise

    def awaitTermination(self, timeout: float | None = None):
        """Wait for the query to end (or `timeout` seconds); raises the error that stopped it."""
        return self._reraise(self.query.awaitTermination, *([] if timeout is None else [timeout]))

    def processAllAvailable(self) -> None:
        """Block until every row available now is trained (for tests and bounded sources)."""
        self._reraise(self.query.processAllAvailable)

    def stop(self, wait: bool = True) -> None:
        """Stop the query; the committed state stays under `checkpoint_location`.

        With `wait`, a micro-batch under way finishes (and publishes) first; without, it is
        interrupted, dropped and trained again by the next query."""
        self._trainer.stopping = True
        if wait:
            with self._trainer.busy:
                pass
        self.query.stop()

    @property
    def isActive(self) -> bool:
        """Whether the query is running."""
        return self.query.isActive


def _trigger_options(trigger) -> dict:
    if trigger is None:
        return {}
    if isinstance(trigger, dict) and trigger:
        return trigger
    raise ZooTypeError(f"Expected `trigger` as DataStreamWriter.trigger's keywords, e.g. "
                       f"{{'processingTime': '5 seconds'}} or {{'availableNow': True}}. Received: {trigger!r}.")


def fit_stream(estimator, stream_df, *, checkpoint_location: str, registry=None, model_name: str | None = None,
               publish_every_batches: int | None = None, publish_every_seconds: float | None = None,
               publish_on_metric=None, gate: Gate | None = None, trigger=None, initial_model=None,
               publisher=None) -> StreamingFit:
    """Start training `estimator` on `stream_df`; see `NNEstimator.fitStream`.

    Args:
        stream_df: a streaming DataFrame with the estimator's feature and label columns.
        checkpoint_location: where the state and Spark's offsets live (path or URL); restarting with
            the same one continues where the last query committed.
        registry, model_name: publish versions to this `zoo.registry.ModelRegistry` under this name.
        publish_every_batches, publish_every_seconds, publish_on_metric: when to publish (any fires):
            every N trained micro-batches, when T seconds passed since the last version, or when
            `publish_on_metric(history)` returns True. Checked after each micro-batch.
        gate: a `Gate`: each published version is evaluated on held-out rows and becomes `champion`
            only if it does not regress (needs `registry`).
        trigger: DataStreamWriter.trigger keywords, e.g. {"processingTime": "10 seconds"}.
        initial_model: an NNModel (or a torch/Keras model) whose weights start the first micro-batch
            (ignored when the checkpoint_location already holds a state).
        publisher: instead of a registry, a callable (model, *, metrics, offsets, parent, reference)
            -> version number.

    Each micro-batch is trained for `maxEpoch` passes (default 1), in batches of `batchSize`.
    """
    if not getattr(stream_df, "isStreaming", False):
        raise ZooValueError("Expected a streaming DataFrame (spark.readStream...load()). Received a static one: "
                            "call fit for it, or read the source with readStream.")
    estimator._check_model()
    if initial_model is not None:
        source = getattr(initial_model, "model", initial_model)
        estimator = estimator.copy()
        estimator.model = copy_model(adapter_for(source), source)
    policy = PublishPolicy(publish_every_batches, publish_every_seconds, publish_on_metric)
    if registry is not None and publisher is not None:
        raise ZooValueError("Give either `registry` (with `model_name`) or `publisher`, not both.")
    if registry is not None:
        if not model_name:
            raise ZooValueError("Publishing to a registry needs `model_name`: fitStream(..., registry=r, "
                                "model_name='my-model').")
        publisher = RegistryPublisher(registry, model_name)
    if policy.enabled and publisher is None:
        raise ZooValueError("A publish trigger is set but nothing to publish to: pass registry= and model_name=, "
                            "or publisher=.")
    if gate is not None and registry is None:
        raise ZooValueError("`gate` needs `registry` (it moves the registry's champion alias).")
    if publisher is not None and not policy.enabled:
        raise ZooValueError("Publishing is configured but no trigger is: set publish_every_batches, "
                            "publish_every_seconds or publish_on_metric.")
    state = StreamState(checkpoint_location)
    slots = available_slots(stream_df.sparkSession)
    training = estimator._training_config(slots)
    training = dataclasses.replace(training, validation=None,
                                   checkpoint=CheckpointConfig(state.state_dir, MaxEpoch(1), overwrite=False,
                                                               resume=True))
    config = storage_preflight(stream_df.sparkSession, training)
    check_slots(config.num_workers, slots)
    columns = estimator._plan_columns(stream_df)
    estimator._payload(columns, config)  # what goes to the executors pickles, before the query starts
    received = schema_of(stream_df, columns.names)
    record = state.last_commit()
    expected = record["schema"] if record else received
    check_schema(expected, received, f"The stream (state under {state.location})")
    trainer = StreamTrainer(estimator, columns, config, state, publisher, policy, gate, registry, model_name, expected)
    writer = stream_df.writeStream.foreachBatch(trainer).option("checkpointLocation", spark_location(state.query_dir))
    options = _trigger_options(trigger)
    if options:
        writer = writer.trigger(**options)
    return StreamingFit(writer.start(), trainer)

