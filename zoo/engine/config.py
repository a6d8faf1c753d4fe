"""Configuration of one distributed fit, validated where it is declared."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from zoo import storage
from zoo.engine.metrics import ValidationMethod, to_validation_methods
from zoo.engine.triggers import MaxEpoch, Trigger, check_trigger
from zoo.errors import ZooValueError

DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_SEED = 42
GRADIENT_COMPRESSIONS = ("none", "bf16")
#: "auto": shared memory when every worker is on one host, else gloo; "gloo": always gloo.
TRANSPORTS = ("auto", "gloo")
#: Where a worker keeps its training samples (`cachingSample`): "MEMORY" (True, the default) or
#: "DISK" (False, as in Analytics Zoo: a file on the executor's local disk, so a partition larger
#: than the worker's memory trains).
SAMPLE_CACHES = {True: "MEMORY", False: "DISK"}


def samples_in_memory(value) -> bool:
    """`cachingSample` as a bool: True / "MEMORY" keep samples in memory, False / "DISK" on local disk.

    Raises ZooValueError naming the value otherwise.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.upper() in SAMPLE_CACHES.values():
        return value.upper() == SAMPLE_CACHES[True]
    raise ZooValueError(
        f"Expected `cachingSample` in (True, False, 'MEMORY', 'DISK'). Received: cachingSample={value!r}. "
        f"Use 'MEMORY' (True) to keep training samples in the workers' memory, or 'DISK' (False) to keep "
        f"them on the executors' local disk when a partition does not fit in a worker's memory.")


@dataclass
class ValidationConfig:
    """Validate on `data` whenever `trigger` fires, with `methods`, in batches of `batch_size`."""

    trigger: Trigger
    data: object
    methods: list[ValidationMethod]
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self):
        check_trigger("validation trigger", self.trigger)
        self.methods = to_validation_methods(self.methods)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ZooValueError(f"Expected validation `batch_size` >= 1. Received: batch_size={self.batch_size!r}.")


@dataclass
class CheckpointConfig:
    """Write checkpoints under `path` whenever `trigger` fires.

    `overwrite=True` keeps only the latest checkpoint; `resume=True` starts the fit from the
    latest checkpoint under `path` (a retried Spark stage always resumes from its own).
    `path` is a local path or a URL (file://, hdfs://, s3://, s3a://; see `zoo.storage`). On the
    driver, with a SparkContext active, a scheme-less path is resolved against Spark's
    ``fs.defaultFS`` (otherwise when the fit starts). It must be visible to the executors and the
    driver: local disk in local mode; on a cluster a shared mount, HDFS or an object store (the
    fit checks this before it starts).
    """

    path: str
    trigger: Trigger
    overwrite: bool = True
    resume: bool = False

    def __post_init__(self):
        if isinstance(self.path, os.PathLike):
            self.path = os.fspath(self.path)
        if not isinstance(self.path, str) or not self.path:
            raise ZooValueError(f"Expected the checkpoint `path` to be a directory path or URL (/dir, hdfs://nn/dir, "
                                f"s3://bucket/dir). Received: {self.path!r}.")
        if storage.default_fs() is not None:
            self.path = storage.resolve(self.path)
        check_trigger("checkpoint trigger", self.trigger)


@dataclass
class TrainingConfig:
    """Everything the workers need to know about a fit, besides the model and the data.

    Attributes:
        batch_size: global batch size (summed over workers); need not divide by the workers.
        end_trigger: when to stop.
        optim_method: a torch.optim.Optimizer class (built with `learning_rate`) or a factory.
        learning_rate: the learning rate given to an optimizer class.
        num_workers: barrier tasks (one process each).
        validation, checkpoint: optional, see their classes.
        clip_constant: (min, max) to clamp every gradient element, or None.
        clip_l2_norm: maximum global L2 norm of the gradient, or None.
        gradient_compression: "none" or "bf16" (gradients travel over gloo as bfloat16; the
            shared-memory transport moves no bytes over a network, so it ignores this).
        transport: "auto" (shared memory when all workers share a host, else gloo) or "gloo".
        caching_sample: keep samples in memory (True or "MEMORY") or stream them into a file on the
            executor's local disk (False or "DISK"; see `zoo.engine.sample_file`); stored as a bool.
        shuffle: reshuffle each worker's samples every epoch.
        seed: seeds shuffling and torch on every worker.
        show_progress: a tqdm bar on the driver.
        tensorboard_dir: where the driver writes TensorBoard events (train/ and validation/); a
            path or URL.
        profile: the driver prints every worker's step-time breakdown when the fit ends (and
            writes it to TensorBoard under profile/); see `zoo.engine.profile`.
        storage_options: what `zoo.storage.storage_options()` gave on the driver (S3 credentials,
            endpoint); set by `zoo.engine.storage_preflight`, installed by every worker before it
            reads or writes a checkpoint. Not shown in the repr: it may hold secrets.
    """

    batch_size: int
    end_trigger: Trigger
    optim_method: object
    learning_rate: float = DEFAULT_LEARNING_RATE
    num_workers: int = 1
    validation: ValidationConfig | None = None
    checkpoint: CheckpointConfig | None = None
    clip_constant: tuple[float, float] | None = None
    clip_l2_norm: float | None = None
    gradient_compression: str = "none"
    transport: str = "auto"
    caching_sample: bool | str = True
    shuffle: bool = True
    seed: int = DEFAULT_SEED
    show_progress: bool = True
    tensorboard_dir: str | None = None
    profile: bool = False
    run_id: str = field(default="")
    storage_options: dict | None = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.num_workers, int) or self.num_workers < 1:
            raise ZooValueError(f"Expected `numWorkers` >= 1. Received: numWorkers={self.num_workers!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < self.num_workers:
            raise ZooValueError(
                f"Expected `batchSize` >= number of workers ({self.num_workers}). Received: batchSize="
                f"{self.batch_size!r}. Raise batchSize or lower numWorkers."
            )
        check_trigger("endWhen", self.end_trigger)
        self.caching_sample = samples_in_memory(self.caching_sample)
        if self.gradient_compression not in GRADIENT_COMPRESSIONS:
            raise ZooValueError(
                f"Expected gradient compression in {GRADIENT_COMPRESSIONS}. Received: {self.gradient_compression!r}."
            )
        if self.transport not in TRANSPORTS:
            raise ZooValueError(f"Expected transport in {TRANSPORTS}. Received: {self.transport!r}.")
        if self.clip_constant is not None and not self.clip_constant[0] < self.clip_constant[1]:
            raise ZooValueError(f"Expected constant clipping min < max. Received: {self.clip_constant!r}.")
        if self.clip_l2_norm is not None and not self.clip_l2_norm > 0:
            raise ZooValueError(f"Expected a clipping L2 norm > 0. Received: {self.clip_l2_norm!r}.")

    @property
    def clips_gradients(self) -> bool:
        """Whether any gradient clipping (constant or L2 norm) is configured."""
        return self.clip_constant is not None or self.clip_l2_norm is not None


def default_end_trigger(max_epoch: int) -> Trigger:
    """The end trigger used when none is given: `MaxEpoch(max_epoch)`."""
    return MaxEpoch(max_epoch)
