"""Gradient aggregation through shared memory, among the workers of one host.

On one host, gloo's loopback TCP costs 0.2-0.4 ms per collective, which dominates the step time
of small models. Here the workers of a host map one file in /dev/shm (a `SharedArea`) holding,
per local worker, a gradient slot and a step counter, plus one shared parameter buffer. A
reduce-scatter is: copy my gradient into my slot (nothing to copy once `share_buffers` made the
slot the gradient buffer), wait until every local worker has done so, hand my shard of every slot
to the optimizer, which sums them. An all-gather is: write my shard into the shared buffer, wait,
copy the buffer (again nothing to copy once it is the weights buffer). Waiting is a spin on the
counters (yielding the core, then sleeping, once it has spun a while), so a step costs
microseconds of synchronisation. `zoo.engine.hierarchical` uses the same area for the local leg
of a fit that spans hosts.

The ordering argument: each worker writes its slot (or shard) and only then bumps its counter,
and reads others' data only after seeing their counters; x86-64 keeps stores in order, so data is
visible before the counter. Other architectures fall back to gloo (see `supported`).
"""

from __future__ import annotations

import os
import platform
import time
import uuid

import torch
import torch.distributed as dist

from zoo.engine.collective import FlatBuffers, all_gather_objects
from zoo.engine.profile import StepProfile
from zoo.errors import PeerTimeout

SHM_DIR = "/dev/shm"
#: Seconds a worker waits for the others at one step before it gives up (a peer died).
DEFAULT_WAIT_TIMEOUT_S = 300.0
#: Spin this long, then yield the core between checks, then (for long waits such as a peer's
#: validation) sleep between checks. Timer sleeps are coarse (over 1 ms on some VMs).
_SPIN_S = 0.0005
_YIELD_S = 0.05


#: Alignment of each area of the shared file, in bytes (a cache line; TensorFlow's buffer alignment).
ALIGNMENT_BYTES = 64


def _aligned(size_bytes: int) -> int:
    return -(-size_bytes // ALIGNMENT_BYTES) * ALIGNMENT_BYTES


def supported() -> bool:
    """Whether this host can use the shared-memory transport."""
    return platform.machine() in ("x86_64", "AMD64") and os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


class SharedArea:
    """One /dev/shm file shared by the workers of a host: a gradient slot per local worker, one
    shared buffer of the flat length, per-worker counters and norms, and a barrier over them.

    Must be created by every rank of the active process group at the same time (the group agrees
    on each host's file name once).

    Args:
        padded: elements of the flat buffers (`FlatBuffers.shard_size * world_size`).
        local_rank, local_size: this worker's place among the workers of its host.
        host_root: the global rank of local rank 0 on this host (it creates the file).
        timeout_s: how long a worker waits for the others at one barrier.

    Attributes:
        slots: (local_size, padded) fp32 view, one gradient slot per local worker.
        shared: (padded,) fp32 view all local workers read and write.
        norms: (local_size,) fp64 view for per-worker scalars.
    """

    def __init__(self, padded: int, local_rank: int, local_size: int, host_root: int,
                 timeout_s: float = DEFAULT_WAIT_TIMEOUT_S):
        self.local_rank = local_rank
        self.timeout_s = timeout_s
        # Layout: counters[L] | norms[L] (float64) | slots[L][stride] | shared[stride] (float32).
        # Every area starts on a 64-byte boundary: frameworks read the buffers in place (TensorFlow's
        # kernels require that alignment) and the counters do not share a cache line with data.
        header_bytes = _aligned(2 * local_size * 8)
        stride = _aligned(padded * 4) // 4
        total_bytes = header_bytes + (local_size + 1) * stride * 4
        creator = local_rank == 0
        name = os.path.join(SHM_DIR, f"zoo-{uuid.uuid4().hex}") if creator else None
        if creator:
            with open(name, "wb") as f:
                f.truncate(total_bytes)
        name = all_gather_objects(name)[host_root]
        raw = torch.from_file(name, shared=True, size=total_bytes, dtype=torch.uint8)
        if dist.is_initialized():
            dist.barrier()
        if creator:
            os.unlink(name)  # the mappings stay valid; nothing is left behind on exit
        self._raw = raw
        self.counters = raw[: local_size * 8].view(torch.int64)
        self.norms = raw[local_size * 8: 2 * local_size * 8].view(torch.float64)
        floats = raw[header_bytes:].view(torch.float32)
        self.slots = floats[: local_size * stride].view(local_size, stride)[:, :padded]
        self.shared = floats[local_size * stride: local_size * stride + padded]
        self._generation = 0

    def wait_for_all(self) -> None:
        """Barrier of the host's workers: return once every one of them has called it as often."""
        self._generation += 1
        self.counters[self.local_rank] = self._generation
        started = time.perf_counter()
        counters, generation = self.counters.numpy(), self._generation
        while counters.min() < generation:
            waited = time.perf_counter() - started
            if waited > _YIELD_S:
                time.sleep(0.001)
                if waited > self.timeout_s:
                    raise PeerTimeout(
                        f"A worker did not reach the step's synchronisation within {self.timeout_s:.0f} s; "
                        f"it has probably died. Spark retries the stage.")
            elif waited > _SPIN_S:
                os.sched_yield()

    def sum_norms(self, local_value: float) -> float:
        """The sum of every local worker's `local_value`."""
        self.norms[self.local_rank] = local_value
        self.wait_for_all()
        return float(self.norms.sum())


class SharedMemoryAggregator:
    """Same interface as `collective.ShardedAggregator`, over a `SharedArea`, for a fit whose
    workers all run on this host.

    Must be created by every rank of the active process group at the same time. Laps
    `grad_copy`, `sync_wait`, `reduce_scatter` and `all_gather` on `profile` (see `zoo.engine.profile`).
    """

    def __init__(self, buffers: FlatBuffers, timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
                 profile: StepProfile | None = None):
        self.buffers = buffers
        self.profile = profile or StepProfile()
        padded = buffers.shard_size * buffers.world_size
        self.area = SharedArea(padded, buffers.rank, buffers.world_size, host_root=0, timeout_s=timeout_s)
        self.slots, self.shared = self.area.slots, self.area.shared

    def share_buffers(self, weights: bool) -> None:
        """Move the flat buffers into the shared file: this worker's gradient becomes its slot and,
        with `weights` (sharded optimizers only), the weights become the one copy all workers view,
        so a step copies neither in nor out. Rebind the model to the buffers afterwards.

        Safe because of the step's two synchronisations: a worker writes its shard of the weights
        only after every worker has finished its backward pass (the reduce-scatter wait), and
        zeroes its gradient slot for the next step only after every worker has summed the slots
        (the all-gather wait).
        """
        b = self.buffers
        b.grads = self.slots[b.rank]
        if weights:
            b.params = self.shared

    def reduce_scatter_parts(self) -> torch.Tensor:
        """Every worker's gradient for the shard this worker owns, unsummed: a (world size, shard
        size) view of the slots, each row 64-byte aligned, valid until the next all-gather."""
        b, profile = self.buffers, self.profile
        if b.grads.data_ptr() != self.slots[b.rank].data_ptr():
            self.slots[b.rank].copy_(b.grads)
        profile.lap("grad_copy")
        self.area.wait_for_all()
        profile.lap("sync_wait")
        return self.slots[:, b.shard_start:b.shard_start + b.shard_size]

    def all_gather(self, shard: torch.Tensor, into: torch.Tensor) -> None:
        """Assemble every worker's `shard` into the flat buffer `into` on every worker."""
        b, profile = self.buffers, self.profile
        self.shared[b.shard_start:b.shard_start + b.shard_size].copy_(shard)
        profile.lap("all_gather")
        self.area.wait_for_all()
        profile.lap("sync_wait")
        if into.data_ptr() != self.shared.data_ptr():
            into.copy_(self.shared)

    def all_reduce_norm_sq(self, local_sq: float) -> float:
        """Sum of a per-worker squared norm over all workers."""
        return self.area.sum_norms(local_sq)
