"""Training inside Flink operators on Zoo's engine (flink-ai-extended's design).

`fit` runs ``num_workers`` parallel subtasks of one keyed operator (the worker role); the job's
client is the application master (`zoo.flink.coordinator`). Each worker buffers the samples
routed to it and runs Zoo's own `WorkerLoop`: the same adapters, `StepPlan`, sharded optimizer
and aggregators (shared memory on one host, hierarchical or gloo across hosts) as a Spark fit.

Routing: every row gets the key of one worker (round robin), computed with Flink's own key-group
assignment so that key i lands on subtask i; one marker record per worker makes sure every
subtask holds a key (and so a timer) even when no row reaches it.

- **Bounded mode** (`fit`): when the input ends, the final watermark fires each worker's
  event-time timer; the workers meet, train for the configured epochs, and rank 0 leaves the
  trained weights with the coordinator, which `fit` loads into a copy of the model.
- **Stream mode** (`fit_stream`): every ``round_interval_s`` each worker's processing-time timer
  fires; the workers agree on how many new samples arrived, train one pass over them (one epoch
  of a `WorkerLoop` that keeps its weights and optimizer state), and every ``version_every``
  rounds rank 0 emits a model version (see `VERSION_FIELDS`), also written under `versions_dir`.

On a task failure Flink's restart strategy restarts the group (its tasks form one failover
region); the new attempt meets under a new rendezvous prefix and resumes from the fit's latest
Zoo checkpoint (`WorkerLoop.resume_if_retried`). Flink checkpointing stays off for training: a
worker blocked in a collective would hold up the barriers, and the bounded input is read again
from the start on a restart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.engine.config import CheckpointConfig, TrainingConfig
from zoo.engine.launcher import FitResult
from zoo.engine.triggers import MaxEpoch, Trigger
from zoo.errors import ZooValueError
from zoo.flink import runtime

logger = logging.getLogger(__name__)

#: Event time of the bounded-mode timer: fires on the final watermark, after the last row.
END_OF_INPUT = 2**63 - 2
#: Fields of a model-version record of stream mode, in order.
VERSION_FIELDS = ("version", "iteration", "state", "path", "metrics")
#: Marker payload kind (one per worker, never a sample).
_MARKER = "zoo-marker"


def worker_keys(num_workers: int, max_parallelism: int) -> list[int]:
    """For each subtask i of a keyed operator with `num_workers` subtasks, an int key Flink sends
    to subtask i (PyFlink keys a stream by ``Row(key)``; the assignment is Flink's own, asked of
    the JVM so it cannot drift from it)."""
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    assign = gateway.jvm.org.apache.flink.runtime.state.KeyGroupRangeAssignment
    keys: dict[int, int] = {}
    candidate = 0
    while len(keys) < num_workers:
        row = gateway.jvm.org.apache.flink.types.Row.withPositions(1)
        row.setField(0, gateway.jvm.java.lang.Integer.valueOf(candidate))
        keys.setdefault(int(assign.assignKeyToParallelOperator(row, max_parallelism, num_workers)), candidate)
        candidate += 1
    return [keys[i] for i in range(num_workers)]


class SampleEncoder:
    """Row -> (worker key, pickled (features as float32 arrays, label)), the workers in turn (a
    Flink map). It runs with the input's parallelism, so a parallelism-1 input sends row j to
    worker j % num_workers, in order."""

    def __init__(self, feature_index: list[int], label_index: int | None, keys: list[int]):
        self.feature_index = feature_index
        self.label_index = label_index
        self.keys = keys
        self.count = 0

    def __call__(self, row) -> tuple[int, bytes]:
        """Encode one row and pick its worker."""
        features = [np.asarray(row[i], dtype=np.float32) for i in self.feature_index]
        label = None if self.label_index is None else np.asarray(row[self.label_index], dtype=np.float32)
        key = self.keys[self.count % len(self.keys)]
        self.count += 1
        return key, pickle.dumps((features, label), protocol=pickle.HIGHEST_PROTOCOL)


@dataclass
class StreamOptions:
    """How a stream-mode fit turns its stream into rounds and versions.

    Attributes:
        round_interval_s: seconds between two training rounds.
        min_samples: samples (over all workers) a round needs; fewer wait for the next round.
        version_every: rounds between two model versions.
        versions_dir: where versions are written as files (None: only the stream).
    """

    round_interval_s: float = 1.0
    min_samples: int = 1
    version_every: int = 1
    versions_dir: str | None = None

    def __post_init__(self):
        if not self.round_interval_s > 0:
            raise ZooValueError(f"Expected `round_interval_s` > 0. Received: {self.round_interval_s!r}.")
        if not isinstance(self.version_every, int) or self.version_every < 1:
            raise ZooValueError(f"Expected `version_every` >= 1. Received: {self.version_every!r}.")


class TrainingWorker:
    """The worker role: one subtask's buffer, process group and `WorkerLoop` (run by Flink).

    Args:
        payload: cloudpickled {"model", "criterion", "config"} (the model as the adapter pickles it).
        store_address, progress_address: the coordinator's services.
        num_workers: parallel subtasks.
        threads: torch intra-op threads per worker.
        stream: `StreamOptions` in stream mode, None in bounded mode.
    """

    def __init__(self, payload: bytes, store_address, progress_address, num_workers: int, threads: int,
                 stream: StreamOptions | None):
        self.payload = payload
        self.store_address = tuple(store_address)
        self.progress_address = tuple(progress_address)
        self.num_workers = num_workers
        self.threads = threads
        self.stream = stream
        self.features: list[list[np.ndarray]] = []
        self.labels: list[np.ndarray] = []
        self.loop = None
        self.rounds = 0
        self.version = 0

    # ---- lifecycle ---------------------------------------------------------------------------
    def open(self, runtime_context) -> None:
        """Import the engine (about 2 s, so not during the first step) and note who this worker is."""
        from zoo.engine.launcher import import_worker_modules

        import_worker_modules()
        import cloudpickle
        import torch

        torch.set_num_threads(self.threads)
        self.rank = runtime_context.get_index_of_this_subtask()
        self.attempt = runtime_context.get_attempt_number()
        loaded = cloudpickle.loads(self.payload)
        self.model, self.criterion, self.config = loaded["model"], loaded["criterion"], loaded["config"]
        self.feature_steps, self.label_step = loaded["feature_steps"], loaded["label_step"]
        torch.manual_seed(self.config.seed)

    def add(self, record) -> bool:
        """Buffer one (key, payload) record; True when it is this worker's marker (time to set its timer)."""
        item = pickle.loads(record[1])
        if isinstance(item, tuple) and len(item) == 2 and item[0] == _MARKER:
            return True
        features, label = item
        self.features.append(features)
        self.labels.append(label)
        return False

    def _local_data(self):
        """The buffered rows as the loop's samples, through the fit's preprocessing (by default
        nnframes': a number becomes a [1] tensor, an array stays flat, as in `NNEstimator`)."""
        from zoo.engine.loop import LocalData
        from zoo.nnframes.preprocessing import SampleBuilder, ScalarToTensor, SeqToTensor

        columns = len(self.feature_steps)
        if not self.features:
            return LocalData([np.zeros(0, np.float32)] * columns, np.zeros(0, np.float32))
        raw = [np.stack([f[i] for f in self.features]) for i in range(columns)]
        labels = np.stack(self.labels)

        def step(given, array):
            return given if given is not None else (ScalarToTensor() if array.ndim == 1 else SeqToTensor())

        build = SampleBuilder([step(g, a) for g, a in zip(self.feature_steps, raw)], step(self.label_step, labels))
        inputs, target = build(raw, labels)
        return LocalData(list(inputs), target)

    def _start(self, data):
        """Meet the other workers and build the loop (resuming from a checkpoint of this fit)."""
        from zoo.engine.adapters import adapter_for
        from zoo.engine.loop import WorkerLoop
        from zoo.engine.progress import ProgressClient
        from zoo.flink.coordinator import rendezvous

        self.reporter = ProgressClient(self.progress_address, self.rank)
        topology, self.store = rendezvous(self.store_address, self.config.run_id, self.attempt, self.rank,
                                          self.num_workers)
        adapter = adapter_for(self.model)
        self.loop = WorkerLoop(adapter, adapter.Trainable(self.model, self.criterion), self.config, data, None,
                               topology, self.reporter if self.rank == 0 else None)
        self.loop.resume_if_retried()

    def _fail(self, exc: BaseException) -> None:
        """Report the failure and leave the group at once, so the peers' collectives fail fast and
        Flink restarts the group instead of waiting for gloo's timeout."""
        from zoo.engine.collective import destroy_process_group

        if getattr(self, "reporter", None) is not None:
            self.reporter.error(exc)
        destroy_process_group()

    # ---- bounded mode ------------------------------------------------------------------------
    def train_to_end(self) -> None:
        """Bounded mode: train on everything buffered; rank 0 leaves the result in the coordinator's store."""
        from zoo.engine.collective import destroy_process_group
        from zoo.flink.coordinator import result_key

        try:
            self._start(self._local_data())
            self.loop.run()
            if self.rank == 0:
                loop = self.loop
                result = {"state": loop.trainable.state_bytes(), "epoch": loop.epoch, "iteration": loop.iteration,
                          "samples_per_second": float(loop.samples_per_second), "rows": loop.rows,
                          "profile": loop.profiles,
                          "topology": loop.topology.describe(loop.transport, self.config.gradient_compression)}
                self.store.set(result_key(self.config.run_id), pickle.dumps(result))
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            destroy_process_group()
            if getattr(self, "reporter", None) is not None:
                self.reporter.close()

    # ---- stream mode -------------------------------------------------------------------------
    def train_round(self):
        """Stream mode: one pass over the samples that arrived since the last round (if there are
        enough over all workers); returns a version record (rank 0, every `version_every` rounds) or None."""
        from zoo.engine.collective import all_gather_objects

        try:
            if self.loop is None:
                self._start(self._local_data())
            total = sum(all_gather_objects(len(self.labels)))
            if total < max(self.stream.min_samples, 1):
                return None
            self.loop.data = self._local_data()
            self.features, self.labels = [], []
            self.loop.config.end_trigger = MaxEpoch(self.loop.epoch + 1)
            self.loop.run()
            self.rounds += 1
            if self.rounds % self.stream.version_every:
                return None
            if self.config.checkpoint is not None:
                self.loop.save_checkpoint(0)
            self.version += 1
            if self.rank != 0:
                return None
            return self._version_record(total)
        except BaseException as exc:
            self._fail(exc)
            raise

    def _version_record(self, samples: int):
        loop = self.loop
        state = loop.trainable.state_bytes()
        metrics = {"loss": loop.loss, "epoch": loop.epoch, "samples": samples, "round": self.rounds,
                   "samples_per_second": loop.samples_per_second, "time": time.time()}
        path = ""
        if self.stream.versions_dir:
            path = write_version(self.stream.versions_dir, self.version, loop.iteration, state, metrics)
        from pyflink.common import Row

        record = Row(self.version, loop.iteration, state, path, json.dumps(metrics))
        record.set_field_names(list(VERSION_FIELDS))
        return record


def as_bytes(state) -> bytes:
    """The weights of a result or version record as bytes (Flink hands a BYTE array to Python as
    signed ints; Java sees a byte[])."""
    if isinstance(state, (bytes, bytearray, memoryview)):
        return bytes(state)
    return np.asarray(state, dtype=np.int8).tobytes()


def write_version(folder: str, version: int, iteration: int, state: bytes, metrics: dict) -> str:
    """Write one model version as ``<folder>/version-<n>/{model.pt, meta.json}`` (atomically:
    staged, then renamed), and return its folder. model.pt is the adapter's `state_bytes`
    (a torch state_dict for torch models); meta.json holds version, iteration and metrics."""
    final = os.path.join(folder, f"version-{version:06d}")
    staging = os.path.join(folder, f".staging-{uuid.uuid4().hex}")
    os.makedirs(staging)
    with open(os.path.join(staging, "model.pt"), "wb") as f:
        f.write(state)
    with open(os.path.join(staging, "meta.json"), "w") as f:
        json.dump({"version": version, "iteration": iteration, "metrics": metrics}, f)
    os.rename(staging, final)
    return final


# ---------------------------------------------------------------------------------- the job
def _column_indexes(data, feature_cols, label_col) -> tuple[Any, list[int], int | None]:
    """(a DataStream of rows, feature column indexes, label column index) for a Table or DataStream."""
    if hasattr(data, "get_schema"):
        names = list(data.get_schema().get_field_names())
        t_env = getattr(data, "_t_env", None)
        if t_env is None or not hasattr(t_env, "to_data_stream"):
            raise ZooValueError("Expected a Table of a StreamTableEnvironment (StreamTableEnvironment.create(env)) "
                                "or a DataStream. Create the table with a StreamTableEnvironment.")
        stream = t_env.to_data_stream(data)
    else:
        names, stream = None, data

    def index(column) -> int:
        if isinstance(column, int):
            return column
        if names is None:
            raise ZooValueError(f"A DataStream has no column names: give `feature_cols`/`label_col` as positions. "
                                f"Received {column!r}.")
        if column not in names:
            raise ZooValueError(f"Column {column!r} is not in the table. Its columns: {names}.")
        return names.index(column)

    return stream, [index(c) for c in feature_cols], None if label_col is None else index(label_col)


def _environment(rows):
    """The StreamExecutionEnvironment a DataStream belongs to."""
    from pyflink.datastream import StreamExecutionEnvironment

    return StreamExecutionEnvironment(rows._j_data_stream.getExecutionEnvironment())


def _coordinator_host(env) -> str:
    """Loopback for a local mini-cluster; else this host's address, which TaskManagers reach."""
    import socket

    target = env._j_stream_execution_environment.getConfiguration().toMap().get("execution.target")
    if target in (None, "local", ""):
        return "127.0.0.1"
    return socket.gethostbyname(socket.gethostname())


def _configure(env, restart_attempts: int) -> None:
    """Configure `env` for training: Flink's Python workers on this interpreter, one process per
    subtask (two ranks must not share a process), and a fixed-delay restart strategy."""
    from pyflink.common import Configuration

    conf = Configuration()
    runtime.configure(conf)
    conf.set_string("restart-strategy.type", "fixed-delay" if restart_attempts else "none")
    conf.set_string("restart-strategy.fixed-delay.attempts", str(max(restart_attempts, 1)))
    conf.set_string("restart-strategy.fixed-delay.delay", "1 s")
    env.configure(conf)


def _build(data, model, criterion, feature_cols, label_col, config: TrainingConfig, threads: int,
           stream: StreamOptions | None, coordinator, feature_steps: list, label_step):
    """Add the worker operator to the job; returns its output DataStream."""
    import cloudpickle
    from pyflink.common import Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.java_gateway import get_gateway

    from zoo.engine.adapters import adapter_for, for_workers

    rows, feature_index, label_index = _column_indexes(data, feature_cols, label_col)
    adapter = adapter_for(model)
    payload = cloudpickle.dumps({"model": for_workers(adapter, model), "criterion": criterion, "config": config,
                                 "feature_steps": feature_steps, "label_step": label_step})
    n = config.num_workers
    assign = get_gateway().jvm.org.apache.flink.runtime.state.KeyGroupRangeAssignment
    max_parallelism = int(assign.computeDefaultMaxParallelism(n))
    keys = worker_keys(n, max_parallelism)
    worker = TrainingWorker(payload, coordinator.store_address, coordinator.progress.address, n, threads, stream)
    record_type = Types.TUPLE([Types.INT(), Types.PICKLED_BYTE_ARRAY()])
    parallelism = rows._j_data_stream.getParallelism()
    encoded = rows.map(SampleEncoder(feature_index, label_index, keys), output_type=record_type) \
        .set_parallelism(parallelism)
    markers = _markers(rows, keys, record_type).set_parallelism(parallelism)
    routed = encoded.union(markers).key_by(_key, key_type=Types.INT())

    if stream is None:
        class Train(KeyedProcessFunction):
            """Bounded mode: buffer, then train when the final watermark fires the timer."""

            def open(self, runtime_context):
                worker.open(runtime_context)

            def process_element(self, value, ctx):
                if worker.add(value):
                    ctx.timer_service().register_event_time_timer(END_OF_INPUT)

            def on_timer(self, timestamp, ctx):
                worker.train_to_end()
                return iter(())

        output_type = Types.LONG()
    else:
        interval_ms = int(stream.round_interval_s * 1000)

        class Train(KeyedProcessFunction):
            """Stream mode: buffer, and train a round on every processing-time tick."""

            def open(self, runtime_context):
                worker.open(runtime_context)

            def process_element(self, value, ctx):
                if worker.add(value):
                    now = ctx.timer_service().current_processing_time()
                    ctx.timer_service().register_processing_time_timer(now + interval_ms)

            def on_timer(self, timestamp, ctx):
                ctx.timer_service().register_processing_time_timer(timestamp + interval_ms)
                record = worker.train_round()
                if record is not None:
                    yield record

        output_type = Types.ROW_NAMED(list(VERSION_FIELDS), [Types.LONG(), Types.LONG(),
                                                             Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.STRING(),
                                                             Types.STRING()])
    return routed.process(Train(), output_type=output_type).name("zoo-fit-workers") \
        .set_parallelism(n).set_max_parallelism(max_parallelism)


def _markers(rows, keys: list[int], record_type):
    """One marker record per worker, keyed to it, of the samples' record type."""
    from pyflink.common import Types

    indexes = _environment(rows).from_collection(list(range(len(keys))), type_info=Types.INT())
    return indexes.map(_Marker(keys), output_type=record_type)


class _Marker:
    """Worker index -> (its key, the encoded marker)."""

    def __init__(self, keys: list[int]):
        self.keys = keys

    def __call__(self, index: int) -> tuple[int, bytes]:
        """The marker record of worker `index`."""
        return self.keys[index], pickle.dumps((_MARKER, index))


def _key(record) -> int:
    """The worker key of an encoded record."""
    return record[0]


def _config(batch_size, end_trigger, optim_method, learning_rate, num_workers, checkpoint_dir,
            checkpoint_trigger, gradient_compression, transport, seed, shuffle, show_progress) -> TrainingConfig:
    from zoo.engine.triggers import EveryEpoch

    checkpoint = None if checkpoint_dir is None else CheckpointConfig(
        checkpoint_dir, checkpoint_trigger or EveryEpoch())
    return TrainingConfig(batch_size=batch_size, end_trigger=end_trigger, optim_method=optim_method,
                          learning_rate=learning_rate, num_workers=num_workers, checkpoint=checkpoint,
                          gradient_compression=gradient_compression, transport=transport, seed=seed,
                          shuffle=shuffle, show_progress=show_progress, run_id=uuid.uuid4().hex)


def _preprocessing(columns: list, feature_preprocessing, label_preprocessing) -> tuple[list, Any]:
    """(one Preprocessing or None per feature column, the label's or None), checked here."""
    from zoo.nnframes.preprocessing import to_preprocessing

    steps = feature_preprocessing if isinstance(feature_preprocessing, (list, tuple)) else \
        [feature_preprocessing] * len(columns)
    if len(steps) != len(columns):
        raise ZooValueError(f"Expected one feature preprocessing per feature column ({len(columns)}). "
                            f"Received {len(steps)}.")
    return ([None if p is None else to_preprocessing(p) for p in steps],
            None if label_preprocessing is None else to_preprocessing(label_preprocessing))


def _checked_columns(feature_cols, label_col) -> list:
    columns = [feature_cols] if isinstance(feature_cols, (str, int)) else list(feature_cols or [])
    if not columns:
        raise ZooValueError("Expected `feature_cols`: one column (or position) per model input. Received none.")
    return columns


def fit(data, model, criterion, *, feature_cols, label_col, batch_size: int = 32, epochs: int = 1,
        end_trigger: Trigger | None = None, optim_method: Any = None, learning_rate: float = 1e-3,
        num_workers: int = 2, threads_per_worker: int = 1, checkpoint_dir: str | None = None,
        checkpoint_trigger: Trigger | None = None, restart_attempts: int = 3, gradient_compression: str = "none",
        transport: str = "auto", shuffle: bool = True, seed: int = 42, show_progress: bool = False,
        feature_preprocessing=None, label_preprocessing=None):
    """Train `model` on a bounded Table or DataStream with `num_workers` Flink subtasks.

    Runs the job of `data`'s environment to completion and returns ``(fitted, result)``: a copy
    of `model` with the trained weights, and the engine's `FitResult` (history, throughput,
    topology, per-step profile).

    Args:
        data: a Table of a StreamTableEnvironment, or a DataStream of rows (then columns are positions).
        model, criterion: a torch.nn.Module (or Keras 3 model) and its loss, as for `NNEstimator`.
        feature_cols: one column (or position) per model input: numbers or arrays of numbers.
        label_col: the label column (or position).
        batch_size: global batch size (summed over workers).
        epochs: epochs, unless `end_trigger` says otherwise.
        end_trigger: when to stop (`zoo.engine` triggers).
        optim_method: the model framework's optimizer, as `NNEstimator`'s optimMethod (default its SGD).
        learning_rate: given to an optimizer class.
        num_workers: parallel training subtasks (the Flink job needs that many slots).
        threads_per_worker: torch intra-op threads per worker.
        checkpoint_dir: where Zoo checkpoints go (a path every TaskManager sees); a restarted
            group resumes from the latest checkpoint of this fit.
        checkpoint_trigger: when to write one (default every epoch).
        restart_attempts: Flink restarts of the group before the fit fails.
        gradient_compression, transport, shuffle, seed: as for `NNEstimator`.
        show_progress: a tqdm bar in this process.
        feature_preprocessing: one `zoo.nnframes` Preprocessing (or callable) per feature column,
            or None for the default (a number -> a [1] tensor, an array -> flat), as `NNEstimator`.
        label_preprocessing: the same for the label (default: a [1] float tensor; for
            CrossEntropyLoss give e.g. ``lambda y: numpy.int64(y)``; a callable runs on each row).

    Raises:
        WorkerError: the job failed for good; carries the workers' tracebacks.
    """
    from zoo.engine.adapters import adapter_for, copy_model
    from zoo.errors import WorkerError
    from zoo.flink.coordinator import Coordinator, result_key

    runtime.prepare()
    columns = _checked_columns(feature_cols, label_col)
    optim_method = optim_method or adapter_for(model).default_optimizer()
    config = _config(batch_size, end_trigger or MaxEpoch(epochs), optim_method, learning_rate,
                     num_workers, checkpoint_dir, checkpoint_trigger, gradient_compression, transport, seed,
                     shuffle, show_progress)
    started = time.time()
    rows = data if not hasattr(data, "get_schema") else None
    env = _environment(rows if rows is not None else _column_indexes(data, columns, label_col)[0])
    _configure(env, restart_attempts)
    with Coordinator(_coordinator_host(env), show_progress) as coordinator:
        output = _build(data, model, criterion, columns, label_col, config, threads_per_worker, None, coordinator,
                        *_preprocessing(columns, feature_preprocessing, label_preprocessing))
        output.print().name("zoo-fit-end")  # the workers emit nothing: their result goes to the coordinator
        try:
            env.execute("Zoo fit on Flink")
        except Exception as exc:
            failures = coordinator.progress.failures
            raise WorkerError(failures or [(None, f"{type(exc).__name__}: {exc}")], job="Flink") from exc
        result = pickle.loads(coordinator.store.get(result_key(config.run_id)))
    state = result["state"]
    adapter = adapter_for(model)
    fitted = copy_model(adapter, model)
    adapter.load_state_bytes_into(fitted, state)
    progress = coordinator.progress
    first_step = progress.first_step_at or time.time()
    result = FitResult(state, result["epoch"], result["iteration"], progress.history, startup_s=first_step - started,
                       duration_s=time.time() - started, samples_per_second=result["samples_per_second"],
                       rows=result["rows"], topology=result["topology"], profile=result["profile"])
    return fitted, result


@dataclass
class StreamFit:
    """A stream-mode fit added to a Flink job: `versions` is the DataStream of model versions
    (fields `VERSION_FIELDS`); run the job (``versions.execute_and_collect()``, or a sink and
    ``env.execute``), and `close` when it is done."""

    versions: Any
    coordinator: Any

    @property
    def history(self) -> list[dict]:
        """Steps and rounds reported by rank 0 so far."""
        return self.coordinator.progress.history

    def close(self) -> None:
        """Stop the coordinator's services."""
        self.coordinator.close()


def fit_stream(data, model, criterion, *, feature_cols, label_col, batch_size: int = 32, optim_method: Any = None,
               learning_rate: float = 1e-3, num_workers: int = 2, threads_per_worker: int = 1,
               round_interval_s: float = 1.0, min_samples: int = 1, version_every: int = 1,
               versions_dir: str | None = None, checkpoint_dir: str | None = None, restart_attempts: int = 3,
               gradient_compression: str = "none", transport: str = "auto", seed: int = 42,
               feature_preprocessing=None, label_preprocessing=None) -> StreamFit:
    """Train `model` continuously on an unbounded Table or DataStream, emitting model versions.

    Every `round_interval_s` the workers train one pass over the samples that arrived since the
    last round (when at least `min_samples` did); every `version_every` rounds rank 0 emits a
    record (version, iteration, state: the weights as the adapter serializes them, path: the
    version's folder under `versions_dir` or "", metrics: JSON with loss, epoch, samples, round,
    samples_per_second, time) and, with `checkpoint_dir`, the workers write a Zoo checkpoint that
    a restarted group resumes from. The other arguments are those of `fit`.
    """
    from zoo.engine.adapters import adapter_for
    from zoo.flink.coordinator import Coordinator

    runtime.prepare()
    columns = _checked_columns(feature_cols, label_col)
    options = StreamOptions(round_interval_s, min_samples, version_every, versions_dir)
    optim_method = optim_method or adapter_for(model).default_optimizer()
    config = _config(batch_size, MaxEpoch(1), optim_method, learning_rate, num_workers,
                     checkpoint_dir, None, gradient_compression, transport, seed, True, False)
    if config.checkpoint is not None:
        # Stream mode checkpoints with each version (the base Trigger never fires on its own).
        config.checkpoint = dataclasses.replace(config.checkpoint, trigger=Trigger())
    rows = data if not hasattr(data, "get_schema") else _column_indexes(data, columns, label_col)[0]
    env = _environment(rows)
    _configure(env, restart_attempts)
    coordinator = Coordinator(_coordinator_host(env), False)
    versions = _build(data, model, criterion, columns, label_col, config, threads_per_worker, options, coordinator,
                      *_preprocessing(columns, feature_preprocessing, label_preprocessing))
    return StreamFit(versions, coordinator)

