"""The per-worker training loop: steps, triggers, validation and checkpoints.

Every worker runs this loop in lock step with the others. Each epoch has the same number of
steps on every worker: the steps come from the global sample count, and each worker splits its
own samples evenly over them, so a short or empty partition contributes fewer (or no) samples
to a step but never skips a collective, and nothing waits on it forever.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from zoo.engine import checkpoint as ckpt
from zoo.engine import shared_memory
from zoo.engine.collective import FlatBuffers, ShardedAggregator, all_gather_objects, average_tensors
from zoo.engine.config import TrainingConfig
from zoo.engine.evaluation import merged_results, update_stats
from zoo.engine.hierarchical import HierarchicalAggregator
from zoo.engine.profile import StepProfile
from zoo.engine.sample_file import SampleFile
from zoo.engine.topology import GLOO, HIERARCHICAL, SHARED_MEMORY, Topology
from zoo.engine.triggers import TrainingState
from zoo.errors import NonFiniteLossError

logger = logging.getLogger(__name__)


def shuffle_rows(arrays: list[np.ndarray], seed: list[int]) -> None:
    """Reorder the rows (first axis) of every array in place by one random permutation drawn from `seed`.

    Each array is seen as a 1-D array of opaque rows, so numpy's in-place Fisher-Yates shuffle
    moves whole rows with one row of scratch memory, and draws the same swaps for every array of
    the same length: the arrays stay aligned row for row. The arrays must be C-contiguous and writable.
    """
    for array in arrays:
        if not len(array):
            continue
        rows = array.reshape(len(array), -1)
        np.random.default_rng(seed).shuffle(rows.view(np.dtype((np.void, rows.strides[0])))[:, 0])


def _movable(arrays: list[np.ndarray]) -> bool:
    """Whether `shuffle_rows` can reorder these arrays in place: C-contiguous, writable, plain
    (no Python objects), non-empty rows, and no two of them over the same memory."""
    if any(not isinstance(a, np.ndarray) or not a.flags.c_contiguous or not a.flags.writeable or a.dtype.hasobject
           or a.ndim == 0 or not len(a) or a.size // len(a) == 0 for a in arrays):
        return False
    return not any(np.may_share_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


class LocalData:
    """One worker's samples in memory: model inputs (each with the sample axis first) and targets.

    An epoch reads the samples in their current order, a batch being positions [start, stop) of
    it. `shuffle` reorders the arrays themselves once per epoch where they allow it (see
    `shuffle_rows`), so every batch is a slice of them: a view, no copy. A model must therefore
    not write into its input tensors in place. Other arrays (read-only, or sharing memory) keep
    their order, and a batch gathers its rows from a shuffled index instead.

    Args:
        inputs: the model inputs, each with the sample axis first.
        target: the targets.
    """

    def __init__(self, inputs: list[np.ndarray], target: np.ndarray):
        self.inputs = inputs
        self.target = target
        self.order: np.ndarray | None = None  # original positions, in this epoch's order, when not moved
        self._movable = _movable(list(inputs) + [target])

    def __len__(self) -> int:
        return len(self.target)

    @classmethod
    def empty(cls, num_inputs: int) -> "LocalData":
        """No samples (a worker whose partition has none), with `num_inputs` model inputs."""
        return cls([np.zeros(0, np.float32)] * num_inputs, np.zeros(0, np.float32))

    def shuffle(self, seed: list[int]) -> None:
        """Reorder the samples by the permutation `seed` draws, applied to their current order."""
        if self._movable:
            shuffle_rows(list(self.inputs) + [self.target], seed)
            return
        if self.order is None:
            self.order = np.arange(len(self), dtype=np.int64)
        shuffle_rows([self.order], seed)

    def batch(self, start: int, stop: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The samples at positions [start, stop) of the current order, as tensors."""
        rows = slice(start, stop) if self.order is None else self.order[start:stop]
        inputs = [torch.from_numpy(np.ascontiguousarray(x[rows])) for x in self.inputs]
        return inputs, torch.from_numpy(np.ascontiguousarray(self.target[rows]))


class DiskData:
    """One worker's samples in a `SampleFile` on local disk (cachingSample="DISK"): only the
    batch a step reads is in memory. Same interface as LocalData; `shuffle` reorders an index of
    the file's samples, by the same permutations as LocalData's."""

    def __init__(self, samples: SampleFile):
        self.samples = samples
        self.order: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def shuffle(self, seed: list[int]) -> None:
        """Reorder the samples by the permutation `seed` draws, applied to their current order."""
        if self.order is None:
            self.order = np.arange(len(self), dtype=np.int64)
        shuffle_rows([self.order], seed)

    def batch(self, start: int, stop: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The samples at positions [start, stop) of the current order, read from the file."""
        positions = np.arange(start, stop) if self.order is None else self.order[start:stop]
        *inputs, target = self.samples.read(positions)
        return [torch.from_numpy(x) for x in inputs], torch.from_numpy(target)


def step_sizes(count: int, steps: int) -> np.ndarray:
    """How many of `count` local samples each of `steps` steps takes (differing by at most one)."""
    sizes = np.full(steps, count // steps, dtype=np.int64)
    sizes[: count % steps] += 1
    return sizes


@dataclass
class StepPlan:
    """The shared schedule of an epoch, identical on every worker.

    Attributes:
        steps_per_epoch: steps in every epoch.
        local_sizes: this worker's samples in each step.
        global_sizes: all workers' samples in each step (the global batch actually used).
    """

    steps_per_epoch: int
    local_sizes: np.ndarray
    global_sizes: np.ndarray

    @classmethod
    def agree(cls, local_count: int, rank: int, batch_size: int) -> "StepPlan":
        """Exchange sample counts and derive the same schedule on every worker."""
        counts = all_gather_objects(local_count)
        total = sum(counts)
        if total == 0:
            raise ValueError("The training DataFrame has no rows on any worker; nothing to train on.")
        steps = math.ceil(total / batch_size)
        per_worker = [step_sizes(c, steps) for c in counts]
        return cls(steps, per_worker[rank], np.sum(per_worker, axis=0))


def make_aggregator(buffers: FlatBuffers, topology: Topology, transport: str, compression: str,
                    profile: StepProfile | None = None):
    """The gradient aggregator of `transport` (see `zoo.engine.topology`) over `buffers`, lapping
    its phases on `profile`."""
    if transport == SHARED_MEMORY:
        return shared_memory.SharedMemoryAggregator(buffers, profile=profile)
    if transport == HIERARCHICAL:
        return HierarchicalAggregator(buffers, topology, compression, profile=profile)
    return ShardedAggregator(buffers, compression, profile=profile)


class WorkerLoop:
    """Trains one worker's model replica in lock step with the others.

    Args:
        adapter: the framework adapter module (`zoo.engine.adapters.torch`, ...).
        trainable: the adapter's Trainable (model + criterion).
        config: the fit's TrainingConfig (its validation data is not used here).
        data, validation_data: this worker's samples.
        topology: where every worker runs (chooses the transport; see `zoo.engine.topology`).
        reporter: a ProgressClient (rank 0) or None.

    Attributes:
        transport: the transport chosen for this fit.
        profile: where this worker's step time went (see `StepProfile`).
        profiles: every worker's `StepProfile.summary()` in rank order, once `run` returns.
    """

    def __init__(self, adapter, trainable, config: TrainingConfig, data: LocalData,
                 validation_data: LocalData | None, topology: Topology, reporter=None):
        self.trainable = trainable
        self.config = config
        self.data = data
        self.validation_data = validation_data
        self.topology = topology
        self.rank = topology.rank
        self.reporter = reporter
        self.transport = topology.transport(config.transport, shared_memory.supported())
        self.buffers = FlatBuffers(trainable.num_params, topology.rank, topology.world_size,
                                   topology.shard_index(self.transport))
        self.profile = StepProfile()
        self.aggregator = make_aggregator(self.buffers, topology, self.transport, config.gradient_compression,
                                          self.profile)
        trainable.bind_flat(self.buffers.params, self.buffers.grads)
        shard = adapter.ShardOptimizer(config.optim_method, config.learning_rate,
                                       self.buffers.shard(self.buffers.params))
        self.sharded = shard.elementwise
        if self.transport != GLOO:
            # Replicated mode all-gathers gradients through the shared weights area: keep weights private.
            self.aggregator.share_buffers(weights=self.sharded)
            trainable.bind_flat(self.buffers.params, self.buffers.grads)
        self.optimizer = shard if self.sharded else adapter.ReplicatedOptimizer(
            config.optim_method, config.learning_rate, trainable)
        self.epoch = 0
        self.iteration = 0
        self.start_step = 0
        self.loss = math.nan
        self.samples_per_second = math.nan
        self.rows = 0  # the training samples of one epoch, over every worker
        self.profiles: list[dict] = []
        self._shuffled_data = None  # the data _arrange_epoch last shuffled, and how many epochs' shuffles it had
        self._shuffled_epochs = 0

    # ---- resume -------------------------------------------------------------------------
    def restore(self, directory: str) -> None:
        """Continue from the checkpoint in `directory`: weights, optimizer state and position."""
        meta, model_state, optimizer_state = ckpt.load_checkpoint(directory)
        self.trainable.load_state_bytes(model_state)
        if self.sharded:
            self.optimizer.set_values(self.buffers.shard(self.buffers.params))
            if meta["sharded"]:
                optimizer_state = ckpt.shard_optimizer_state(optimizer_state, self.buffers)
        self.optimizer.load_state_dict(optimizer_state)
        self.epoch, self.iteration = meta["epoch"], meta["iteration"]
        self.start_step = meta["step_in_epoch"]
        logger.info("Worker %d resumed from %s (epoch %d, iteration %d)", self.rank, directory,
                    self.epoch, self.iteration)

    def resume_if_retried(self) -> bool:
        """Restore the latest checkpoint under the fit's checkpoint path when the fit asks to resume,
        or when that checkpoint belongs to this very fit (same run_id): it exists only when the
        engine runs the workers again after a failure (a retried Spark stage, a restarted Flink
        task). Returns whether it restored one."""
        checkpoint = self.config.checkpoint
        if checkpoint is None:
            return False
        latest = ckpt.latest_checkpoint(checkpoint.path)
        if latest and (checkpoint.resume or ckpt.read_meta(latest)["run_id"] == self.config.run_id):
            self.restore(latest)
            return True
        return False

    # ---- one step -----------------------------------------------------------------------
    def _local_forward_backward(self, rows: slice, weight: float) -> None:
        self.buffers.grads.zero_()
        self.profile.lap("grad_copy")
        if rows.stop > rows.start:
            inputs, target = self.data.batch(rows.start, rows.stop)
            self.profile.lap("batch")
            loss = self.trainable.train_step(inputs, target, weight, self.profile)
            self.buffers.grads[self.buffers.loss_index] = loss * weight
        self.profile.lap("backward")

    def _clip(self, grad: torch.Tensor, distributed_norm: bool) -> None:
        if self.config.clip_constant is not None:
            grad.clamp_(*self.config.clip_constant)
        if self.config.clip_l2_norm is not None:
            local_sq = float(grad.double().pow(2).sum())
            norm = math.sqrt(self.aggregator.all_reduce_norm_sq(local_sq) if distributed_norm else local_sq)
            if norm > self.config.clip_l2_norm:
                grad.mul_(self.config.clip_l2_norm / (norm + 1e-6))

    def _sharded_step(self, rows: slice, weight: float) -> float:
        b, profile = self.buffers, self.profile
        profile.begin()
        self._local_forward_backward(rows, weight)
        # Each worker's part of the shard's gradient; the optimizer sums them as it reads them.
        grad_parts = self.aggregator.reduce_scatter_parts()
        profile.lap("reduce_scatter")
        if b.owns_loss_slot():
            loss = float(grad_parts[:, b.local_loss_index].sum())
            grad_parts[:, b.local_loss_index] = 0.0
        if self.config.clips_gradients:
            shard_grad = grad_parts.sum(dim=0)
            self._clip(shard_grad, distributed_norm=True)
            grad_parts = shard_grad.unsqueeze(0)
        values = self.optimizer.step(grad_parts)
        if b.owns_loss_slot():
            # The slot is not a weight: overwrite whatever the optimizer did to it.
            values[b.local_loss_index] = loss
        profile.lap("optimizer")
        self.aggregator.all_gather(values, b.params)
        profile.lap("all_gather")
        return float(b.params[b.loss_index])

    def _replicated_step(self, rows: slice, weight: float) -> float:
        b, profile = self.buffers, self.profile
        profile.begin()

        def closure():
            self._local_forward_backward(rows, weight)
            parts = self.aggregator.reduce_scatter_parts()
            profile.lap("reduce_scatter")
            self.aggregator.all_gather(parts.sum(dim=0), b.grads)
            profile.lap("all_gather")
            loss = float(b.grads[b.loss_index])
            b.grads[b.loss_index] = 0.0
            self._clip(b.grads, distributed_norm=False)
            return loss

        loss = self.optimizer.step(closure)
        profile.lap("optimizer")
        return loss

    # ---- validation and checkpoints -----------------------------------------------------
    def validate(self) -> dict[str, float]:
        """Metrics over all workers' validation samples, merged from sufficient statistics."""
        methods = self.config.validation.methods
        stats = [m.empty() for m in methods]
        data = self.validation_data
        size = self.config.validation.batch_size
        for start in range(0, len(data) if data is not None else 0, size):
            inputs, target = data.batch(start, min(start + size, len(data)))
            stats = update_stats(methods, stats, self.trainable, inputs, target)
        return merged_results(methods, all_gather_objects(stats))

    def save_checkpoint(self, step_in_epoch: int) -> None:
        """Write a checkpoint (rank 0 writes; every worker contributes its optimizer shard)."""
        config = self.config.checkpoint
        optimizer_state = ckpt.gather_optimizer_state(self.optimizer, self.sharded, self.buffers)
        if self.rank == 0:
            meta = {"run_id": self.config.run_id, "epoch": self.epoch, "iteration": self.iteration,
                    "step_in_epoch": step_in_epoch, "sharded": self.sharded,
                    "num_params": self.buffers.num_params}
            ckpt.save_checkpoint(config.path, config.overwrite, meta, self.trainable.state_bytes(),
                                 optimizer_state)

    def _on_trigger_points(self, state: TrainingState, step_in_epoch: int) -> None:
        validation, checkpoint = self.config.validation, self.config.checkpoint
        fire_validation = validation is not None and validation.trigger(state)
        fire_checkpoint = checkpoint is not None and checkpoint.trigger(state)
        if fire_validation or fire_checkpoint:
            average_tensors(self.trainable.float_buffers())
        if fire_validation:
            metrics = self.validate()
            if self.reporter is not None:
                self.reporter.validation(self.iteration, self.epoch, metrics)
        if fire_checkpoint:
            self.save_checkpoint(step_in_epoch)

    # ---- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        """Train until the end trigger fires."""
        config = self.config
        plan = StepPlan.agree(len(self.data), self.rank, config.batch_size)
        self.rows = int(plan.global_sizes.sum())
        end = config.end_trigger
        if self.reporter is not None:
            total = None
            if hasattr(end, "max_epoch"):
                total = end.max_epoch * plan.steps_per_epoch
            elif hasattr(end, "max_iteration"):
                total = end.max_iteration
            self.reporter.start(total_iterations=total, iteration=self.iteration,
                                steps_per_epoch=plan.steps_per_epoch, sharded=self.sharded,
                                transport=self.transport,
                                topology=self.topology.describe(self.transport, config.gradient_compression))
        step = self._sharded_step if self.sharded else self._replicated_step
        state = TrainingState(self.epoch, self.iteration, self.loss)
        first_step_done, samples_seen = None, 0
        offsets = np.concatenate([[0], np.cumsum(plan.local_sizes)])
        while not end(state):
            self._arrange_epoch()
            window_start, window_samples = time.time(), 0
            for s in range(self.start_step, plan.steps_per_epoch):
                rows = slice(int(offsets[s]), int(offsets[s + 1]))
                self.loss = step(rows, float(plan.local_sizes[s]) / float(plan.global_sizes[s]))
                if not math.isfinite(self.loss):
                    # The loss is the global one, the same on every worker: all of them stop here.
                    raise NonFiniteLossError(self.iteration + 1, self.epoch, self.loss)
                if first_step_done is None:
                    first_step_done = time.perf_counter()
                    self.profile.reset()  # the first step pays one-off warm-up
                else:
                    samples_seen += int(plan.global_sizes[s])
                self.iteration += 1
                window_samples += int(plan.global_sizes[s])
                last = s == plan.steps_per_epoch - 1
                if last:
                    self.epoch += 1
                state = TrainingState(self.epoch, self.iteration, self.loss, epoch_end=last)
                stop = end(state)
                if self.reporter is not None:
                    elapsed = max(time.time() - window_start, 1e-9)
                    self.reporter.step(self.iteration, self.loss, force=last or stop,
                                       epoch=self.epoch - 1 if last else self.epoch,
                                       samples_per_sec=window_samples / elapsed)
                self.profile.lap("loop")
                self._on_trigger_points(state, 0 if last else s + 1)
                self.profile.lap("triggers")
                if stop:
                    break
            self.start_step = 0
        if samples_seen:
            # Steady-state throughput: the first step (warm-up) is left out.
            self.samples_per_second = samples_seen / (time.perf_counter() - first_step_done)
        self.profile.finish()
        average_tensors(self.trainable.float_buffers())
        self.profiles = all_gather_objects(self.profile.summary())

    def _arrange_epoch(self) -> None:
        """Put the samples in this epoch's order, once per epoch: epoch e's order is the data's
        order shuffled by the permutations of epochs 0..e in turn (seeded by seed, epoch and
        rank), so a fit resumed at epoch e replays the earlier shuffles and reads what an
        uninterrupted fit reads. Data handed to a running loop (a Flink stream's next round)
        starts from its own epoch's shuffle."""
        if not self.config.shuffle:
            return
        if self.data is not self._shuffled_data:
            self._shuffled_epochs = 0 if self._shuffled_data is None else self.epoch
            self._shuffled_data = self.data
        for epoch in range(self._shuffled_epochs, self.epoch + 1):
            self.data.shuffle([self.config.seed, epoch, self.rank])
        self._shuffled_epochs = max(self._shuffled_epochs, self.epoch + 1)
