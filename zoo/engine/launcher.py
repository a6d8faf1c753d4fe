"""One barrier stage per fit: DataFrame -> Arrow -> worker loop; the result back to the driver.

The caller pickles the payload (`worker_payload`: model, criterion, sample builder, config) once
and builds the stage's input with `prepare_frame` (the model-input columns, a split marker, one
partition per worker). `run_fit` broadcasts the payload, opens the rendezvous store where the
tasks meet, and runs `mapInArrow(..., barrier=True)` in a background thread while it shows
progress. Rank 0 returns the final weights as the stage's one output row.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from dataclasses import dataclass

import cloudpickle

from zoo.engine.arrow_data import ColumnLayout
from zoo.engine.config import TrainingConfig
from zoo.engine.profile import format_table
from zoo.engine.progress import ProgressClient, ProgressServer
from zoo.errors import NonFiniteLossError, WorkerError, ZooRuntimeError, ZooValueError
from zoo.storage import install_storage_options

logger = logging.getLogger(__name__)

SPLIT_COLUMN = "__zoo_split"
#: The stage's one result row. The weights themselves go to the driver over the progress channel
#: (`ProgressClient.send_result`); the row names them by SHA-1.
RESULT_SCHEMA = "state_sha1 string, epoch long, iteration long, rows long, samples_per_second double, profile string"


@dataclass
class FitResult:
    """What a fit returns to the driver.

    Attributes:
        model_state: the trained weights as the adapter serialized them.
        epoch, iteration: where training stopped.
        history: per-step losses and validation results, in order.
        startup_s: seconds from the start of the fit to the first training step on the workers.
        duration_s: seconds the whole fit took.
        samples_per_second: steady-state training throughput measured on rank 0 (after step 1).
        rows: the training samples of one epoch, over every worker (what the stage read).
        topology: the workers' hosts and the transport chosen (as logged once per fit).
        profile: per worker (rank order), mean milliseconds per step in each phase (see
            `zoo.engine.profile`), the first step left out.
    """

    model_state: bytes
    epoch: int
    iteration: int
    history: list[dict]
    startup_s: float
    duration_s: float
    samples_per_second: float
    rows: int = 0
    topology: str = ""
    profile: list[dict] = dataclasses.field(default_factory=list)


def available_slots(spark) -> int:
    """Task slots the cluster offers at once (a barrier stage needs one per worker)."""
    return spark.sparkContext.defaultParallelism


def check_slots(num_workers: int, slots: int) -> None:
    """Raise unless the cluster's `slots` (`available_slots`) can run `num_workers` barrier tasks at once."""
    if num_workers > slots:
        raise ZooValueError(
            f"Expected `numWorkers` <= the task slots the cluster offers at once ({slots}): a barrier "
            f"stage runs every worker at the same time. Received: numWorkers={num_workers}. "
            f"Lower numWorkers or give the cluster more cores."
        )


def worker_payload(model, criterion, build_samples, config: TrainingConfig) -> dict:
    """What every barrier task of a fit unpickles; the caller pickles it once and gives the bytes
    to `run_fit`.

    Args:
        model, criterion: what the adapter trains (the model as `for_workers` gives it).
        build_samples: callable (feature arrays, label array) -> (model inputs, target), run on
            the workers to turn raw columns into samples.
        config: the fit's configuration, checked by `storage_preflight`; its validation (if any)
            holds no DataFrame: the validation rows reach the workers through `prepare_frame`.
    """
    return {"model": model, "criterion": criterion, "build_samples": build_samples, "config": config}


def import_worker_modules() -> None:
    """Import the modules a training task needs (torch, Arrow, the engine's worker side).

    Executor side: the barrier task calls it first, and `zoo.warm_up` calls it in the Python
    workers a fit reuses, so both import the same list.
    """
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401  (torch.optim imports it when the first optimizer is built: seconds)
    import torch.distributed  # noqa: F401
    import torch.optim  # noqa: F401

    import zoo.engine.adapters  # noqa: F401
    import zoo.engine.arrow_data  # noqa: F401
    import zoo.engine.checkpoint  # noqa: F401
    import zoo.engine.collective  # noqa: F401
    import zoo.engine.loop  # noqa: F401
    import zoo.nnframes.preprocessing  # noqa: F401  (an NNEstimator payload's sample builder)


def _worker_task(payload_broadcast, progress_address, layout: ColumnLayout):
    """The barrier task, a closure over plain values only."""

    def task(batches):
        import_worker_modules()
        import os

        import pyarrow as pa
        import torch
        from pyspark import BarrierTaskContext

        from zoo.engine.adapters import adapter_for
        from zoo.engine.arrow_data import read_columns
        from zoo.engine.collective import destroy_process_group, init_process_group
        from zoo.engine.loop import DiskData, LocalData, WorkerLoop
        from zoo.engine.sample_file import stream_to_files

        context = BarrierTaskContext.get()
        rank = context.partitionId()
        reporter = ProgressClient(progress_address, rank)
        try:
            payload = cloudpickle.loads(payload_broadcast.value)
            config: TrainingConfig = payload["config"]
            install_storage_options(config.storage_options)
            cores = int(context.cpus()) if hasattr(context, "cpus") else 1
            torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", cores))))
            torch.manual_seed(config.seed)
            build = payload["build_samples"]
            names = layout.names + [SPLIT_COLUMN]
            # Part 0: the training rows; part 1: the validation rows, marked by SPLIT_COLUMN.
            parts = (False, True) if config.validation else (False,)

            def samples(arrays, part) -> list | None:
                """One part's samples of `arrays` (model inputs, then the target), None if it has none."""
                split = arrays[SPLIT_COLUMN].astype(bool)
                mask = split if parts[part] else ~split
                if not mask.any():
                    return None

                def rows(column):
                    # Every row (no validation split): the array itself, not a copy of it.
                    return arrays[column] if mask.all() else arrays[column][mask]

                inputs, target = layout.samples(rows, build)
                return list(inputs) + [target]

            if config.caching_sample:
                arrays = read_columns(batches, names)
                data = [samples(arrays, part) for part in range(len(parts))]
                data = [LocalData(s[:-1], s[-1]) if s else LocalData.empty(len(layout.features)) for s in data]
                del arrays
            else:
                # Batch by batch into files on local disk: memory holds one record batch, not the partition.
                files = stream_to_files((read_columns([b], names) for b in batches), len(parts), samples)
                data = [DiskData(f) if len(f) else LocalData.empty(len(layout.features)) for f in files]
                del files
            train, validation = data[0], (data[1] if config.validation else None)
            del data
            model, criterion = payload["model"], payload["criterion"]
            adapter = adapter_for(model)
            topology = init_process_group(context)
            rank = topology.rank
            loop = WorkerLoop(adapter, adapter.Trainable(model, criterion), config, train, validation,
                              topology, reporter if rank == 0 else None)
            loop.resume_if_retried()
            loop.run()
            if rank == 0:
                digest = reporter.send_result(loop.trainable.state_bytes())
                yield pa.RecordBatch.from_pydict(
                    {"state_sha1": [digest], "epoch": [loop.epoch], "iteration": [loop.iteration],
                     "rows": [loop.rows], "samples_per_second": [loop.samples_per_second],
                     "profile": [json.dumps(loop.profiles)]},
                    schema=pa.schema([("state_sha1", pa.string()), ("epoch", pa.int64()), ("iteration", pa.int64()),
                                      ("rows", pa.int64()), ("samples_per_second", pa.float64()),
                                      ("profile", pa.string())]),
                )
        except BaseException as exc:
            if not _is_peer_failure(exc):
                reporter.error(exc)
            raise
        finally:
            destroy_process_group()
            reporter.close()
            # Python workers outlive the task: let go of the samples and the model now, and hand
            # what Arrow's allocator kept of the batches back to the OS.
            train = validation = loop = payload = model = criterion = build = None
            release_memory()

    return task


def release_memory() -> None:
    """Free what a finished task left: reference cycles, memory Arrow's pool holds unused, and
    the free pages of the C heap (glibc keeps freed batch-sized blocks for reuse otherwise).

    What survives the collection (modules, their caches) is frozen out of later ones, so the next
    task's collection scans only the objects that task made: a full one over everything torch and
    the frameworks imported takes 0.1-0.2 s, paid by every task's tail (every micro-batch of a
    streaming fit) before its stage can end."""
    import gc

    import pyarrow as pa

    gc.collect()
    gc.freeze()
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (find_library runs ldconfig: once)."""
    import ctypes
    import ctypes.util

    libc = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None


def _is_peer_failure(exc: BaseException) -> bool:
    """A collective broke because another worker died: let Spark retry the stage, don't abort."""
    import torch.distributed as dist

    from zoo.engine.shared_memory import PeerTimeout

    if isinstance(exc, (getattr(dist, "DistError", ()), GeneratorExit, PeerTimeout)):
        return True
    # Gloo reports a dead peer as a plain RuntimeError from its transport.
    message = str(exc)
    return isinstance(exc, RuntimeError) and ("gloo/transport" in message or "closed by peer" in message)


def _driver_host(spark) -> str:
    return spark.sparkContext.getConf().get("spark.driver.host", "127.0.0.1")


def prepare_frame(df, columns: list, num_workers: int, validation_df=None):
    """The DataFrame the barrier stage reads: `columns` (names or Column expressions, each named
    after its column) of `df` and of `validation_df`, with a split marker, in one partition per
    worker (no shuffle when the training DataFrame already has exactly that many)."""
    from pyspark.sql import functions as F

    frame = df.select(*columns, F.lit(False).alias(SPLIT_COLUMN))
    if validation_df is not None:
        frame = frame.unionByName(validation_df.select(*columns, F.lit(True).alias(SPLIT_COLUMN)))
    if frame.rdd.getNumPartitions() != num_workers:
        frame = frame.repartition(num_workers)
    return frame


def show_profile(server: ProgressServer, profiles: list[dict], iteration: int) -> None:
    """Print every worker's step-time breakdown on the driver and write it to the fit's TensorBoard."""
    print(f"Zoo fit profile: where each worker's step time went (first step left out)\n{format_table(profiles)}",
          flush=True)
    server.write_profile(profiles, iteration)


def run_fit(frame, layout: ColumnLayout, payload: bytes, config: TrainingConfig,
            started: float | None = None) -> FitResult:
    """Train across `config.num_workers` barrier tasks on `frame` and return the result.

    Args:
        frame: the stage's input, as `prepare_frame` built it.
        layout: which of the frame's columns are the model's inputs and which is the label.
        payload: `worker_payload(...)` pickled with cloudpickle, with this very `config`.
        config: the training configuration, checked by `storage_preflight` (which raises
            StorageError, FileSystemMissingError for an unusable checkpoint or TensorBoard URL),
            with its `run_id` set, and `numWorkers` checked against the slots (`check_slots`).
        started: when the fit began (time.time()), to measure start-up from the caller's start.

    Raises:
        WorkerError: a worker failed; carries every failed worker's traceback.
        NonFiniteLossError: (a WorkerError) the loss became NaN or infinite; names the iteration.
    """
    from zoo.engine.collective import RENDEZVOUS_PROPERTY, open_rendezvous_store

    started = started or time.time()
    spark = frame.sparkSession
    sc = spark.sparkContext
    broadcast = sc.broadcast(payload)
    group = f"zoo-fit-{config.run_id}"
    host = _driver_host(spark)
    server = ProgressServer(host, config.show_progress, config.tensorboard_dir,
                            on_failure=lambda: sc.cancelJobGroup(group)).start()
    # The tasks meet in a store the driver holds: Spark's own barrier calls take a second each.
    store = open_rendezvous_store(host)
    task = _worker_task(broadcast, server.address, layout)
    outcome: dict = {}

    def collect():
        sc.setJobGroup(group, "Zoo distributed fit", interruptOnCancel=True)
        sc.setLocalProperty(RENDEZVOUS_PROPERTY, f"{host}:{store.port}")
        try:
            # Spark retries a failed barrier stage only if it is a shuffle-map stage (a failed barrier
            # result stage aborts the job), so the one-row result goes through a shuffle.
            trained = frame.mapInArrow(task, RESULT_SCHEMA, barrier=True).repartition(1)
            outcome["rows"] = trained.collect()
        except BaseException as exc:  # re-raised on the driver's main thread below
            outcome["error"] = exc

    from pyspark import InheritableThread

    thread = InheritableThread(target=collect, name="zoo-fit")
    state = None
    try:
        thread.start()
        while thread.is_alive():
            thread.join(timeout=0.2)
        if len(outcome.get("rows", ())) == 1:
            state = server.wait_for_result(outcome["rows"][0]["state_sha1"])
            if config.profile:
                show_profile(server, json.loads(outcome["rows"][0]["profile"]), int(outcome["rows"][0]["iteration"]))
    except KeyboardInterrupt:
        sc.cancelJobGroup(group)
        thread.join()
        raise
    finally:
        server.close()
        broadcast.unpersist()
        store = None  # closes the rendezvous store
    if server.non_finite_loss is not None:
        raise NonFiniteLossError(*server.non_finite_loss, failures=sorted(server.failures)) from outcome.get("error")
    if server.failures:
        raise WorkerError(sorted(server.failures)) from outcome.get("error")
    if "error" in outcome:
        raise WorkerError([(None, f"{type(outcome['error']).__name__}: {outcome['error']}")]) from outcome["error"]
    if len(outcome["rows"]) != 1:
        raise ZooRuntimeError(f"The fit's Spark job returned {len(outcome['rows'])} result rows instead of one "
                              f"(from rank 0); the driver's log says why.")
    row = outcome["rows"][0]
    if state is None:
        raise ZooRuntimeError(
            f"The fit finished, but rank 0's trained weights (SHA-1 {row['state_sha1']}) did not reach the driver "
            f"at {server.address[0]}:{server.address[1]}. Executors must be able to open connections to the "
            f"driver's address (spark.driver.host); check firewalls between them.")
    first_step = server.first_step_at or time.time()
    return FitResult(state, int(row["epoch"]), int(row["iteration"]), server.history,
                     startup_s=first_step - started, duration_s=time.time() - started,
                     samples_per_second=float(row["samples_per_second"]), rows=int(row["rows"]),
                     topology=server.topology or "",
                     profile=json.loads(row["profile"]))
