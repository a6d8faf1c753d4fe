"""Gradient aggregation through shared memory, for workers that all run on one host.

On one host, gloo's loopback TCP costs 0.2-0.4 ms per collective, which dominates the step time
of small models. Here every worker maps one file in /dev/shm holding, per rank, a gradient slot
and a step counter, plus one shared parameter buffer. A reduce-scatter is: copy my gradient into
my slot (nothing to copy once `share_buffers` made the slot the gradient buffer), wait until every
rank has done so, hand my shard of every slot to the optimizer, which sums them. An all-gather
is: write my shard into the shared buffer, wait, copy the buffer (again nothing to copy once it
is the weights buffer). Waiting is a spin on the counters
(yielding the core, then sleeping, once it has spun a while), so a step costs microseconds of synchronisation.

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

from zoo.engine.collective import FlatBuffers

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


class PeerTimeout(RuntimeError):
    """Another worker stopped taking part in the step: treated like a lost gloo peer."""


def supported() -> bool:
    """Whether this host can use the shared-memory transport."""
    return platform.machine() in ("x86_64", "AMD64") and os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


class SharedMemoryAggregator:
    """Same interface as `collective.ShardedAggregator`, over a /dev/shm buffer.

    Must be created by every rank of the active process group at the same time (it uses the
    group once to agree on the file's name).
    """

    def __init__(self, buffers: FlatBuffers, timeout_s: float = DEFAULT_WAIT_TIMEOUT_S):
        self.buffers = buffers
        self.timeout_s = timeout_s
        world, padded = buffers.world_size, buffers.shard_size * buffers.world_size
        # Layout: counters[world] | norms[world] (float64) | grads[world][stride] | params[stride] (float32).
        # Every area starts on a 64-byte boundary: frameworks read the buffers in place (TensorFlow's
        # kernels require that alignment) and the counters do not share a cache line with data.
        header_bytes = _aligned(2 * world * 8)
        stride = _aligned(padded * 4) // 4
        total_bytes = header_bytes + (world + 1) * stride * 4
        name = [os.path.join(SHM_DIR, f"zoo-{uuid.uuid4().hex}") if buffers.rank == 0 else None]
        if buffers.rank == 0:
            with open(name[0], "wb") as f:
                f.truncate(total_bytes)
        dist.broadcast_object_list(name, src=0)
        raw = torch.from_file(name[0], shared=True, size=total_bytes, dtype=torch.uint8)
        dist.barrier()
        if buffers.rank == 0:
            os.unlink(name[0])  # the mappings stay valid; nothing is left behind on exit
        self._raw = raw
        self.counters = raw[: world * 8].view(torch.int64)
        self.norms = raw[world * 8: 2 * world * 8].view(torch.float64)
        floats = raw[header_bytes:].view(torch.float32)
        self.slots = floats[: world * stride].view(world, stride)[:, :padded]
        self.shared = floats[world * stride: world * stride + padded]
        self._generation = 0

    def _wait_for_all(self) -> None:
        self._generation += 1
        self.counters[self.buffers.rank] = self._generation
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
        b = self.buffers
        if b.grads.data_ptr() != self.slots[b.rank].data_ptr():
            self.slots[b.rank].copy_(b.grads)
        self._wait_for_all()
        return self.slots[:, b.shard_start:b.shard_start + b.shard_size]

    def all_gather(self, shard: torch.Tensor, into: torch.Tensor) -> None:
        """Assemble every worker's `shard` into the flat buffer `into` on every worker."""
        b = self.buffers
        self.shared[b.shard_start:b.shard_start + b.shard_size].copy_(shard)
        self._wait_for_all()
        if into.data_ptr() != self.shared.data_ptr():
            into.copy_(self.shared)

    def all_reduce_norm_sq(self, local_sq: float) -> float:
        """Sum of a per-worker squared norm over all workers."""
        self.norms[self.buffers.rank] = local_sq
        self._wait_for_all()
        return float(self.norms.sum())
