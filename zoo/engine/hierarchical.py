"""Hierarchical gradient aggregation for a fit that spans hosts.

H hosts with L workers each. Within a host the workers share a `SharedArea` (/dev/shm); across
hosts, the workers with the same local rank r form a gloo group of H. The flat buffers split into
L segments of H shards; the worker with local rank r owns shard ``r * H + p``, p being its
position in cross-host group r (see `zoo.engine.topology`), so segment r holds exactly the shards
of cross-host group r, in the group's order.

One step:
1. Every worker writes its gradient into its slot; the host's workers wait for each other.
2. Local rank r sums the host's slots over segment r (the host's gradient for that segment).
3. Group r exchanges those sums all-to-all (`collective.exchange`, both directions of each link
   at once): each worker receives every host's sum for its own shard (optionally as bfloat16:
   the inter-host leg is the only one compressed). Each worker sends (H-1)/H of a segment, so a
   host sends (H-1)/H of the gradient.
4. The optimizer sums the H parts as it updates the shard (as on one host).
5. Group r all-gathers the updated shards straight into segment r of the host's shared weights;
   the host's workers wait for each other and every worker sees all L segments.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from zoo.engine.collective import FlatBuffers, exchange
from zoo.engine.profile import StepProfile
from zoo.engine.shared_memory import DEFAULT_WAIT_TIMEOUT_S, SharedArea
from zoo.engine.topology import Topology


class HierarchicalAggregator:
    """Same interface as `collective.ShardedAggregator`: shared memory within a host, gloo
    across hosts.

    Must be created by every rank of the active process group at the same time (it creates the
    cross-host gloo groups, which every rank must take part in).

    Args:
        buffers: the flat buffers, whose shard index follows `Topology.shard_index("hierarchical")`.
        topology: the fit's topology (uniform, more than one host).
        compress: "none", or "bf16" to send the inter-host gradient sums as bfloat16.
        profile: where the `grad_copy`, `sync_wait` (the host's barriers), `reduce_scatter` and
            `all_gather` (the cross-host legs, waiting for the other hosts included) phases go.
    """

    def __init__(self, buffers: FlatBuffers, topology: Topology, compress: str = "none",
                 timeout_s: float = DEFAULT_WAIT_TIMEOUT_S, profile: StepProfile | None = None):
        self.buffers = buffers
        self.profile = profile or StepProfile()
        self.compress = compress
        hosts, local_size = topology.num_hosts, topology.local_size
        self.num_hosts = hosts
        self.local_rank = topology.local_rank
        padded = buffers.shard_size * buffers.world_size
        self.area = SharedArea(padded, topology.local_rank, local_size, host_root=topology.local_ranks[0],
                               timeout_s=timeout_s)
        groups = [dist.new_group(topology.cross_host_ranks(r)) for r in range(local_size)]
        self.cross_group = groups[topology.local_rank]
        self.cross_ranks = topology.cross_host_ranks(topology.local_rank)
        segment = hosts * buffers.shard_size
        self.segment = slice(self.local_rank * segment, (self.local_rank + 1) * segment)
        wire = torch.bfloat16 if compress == "bf16" else torch.float32
        self._host_sum = torch.empty(segment, dtype=torch.float32)
        self._send = self._host_sum if wire == torch.float32 else torch.empty(segment, dtype=wire)
        self._recv = torch.empty(segment, dtype=wire)

    def share_buffers(self, weights: bool) -> None:
        """Make this worker's gradient buffer its slot of the host's area and, with `weights`
        (sharded optimizers), the weights the host's one shared copy (see
        `SharedMemoryAggregator.share_buffers` for why that is safe). Rebind the model afterwards."""
        b = self.buffers
        b.grads = self.area.slots[self.local_rank]
        if weights:
            b.params = self.area.shared

    def reduce_scatter_parts(self) -> torch.Tensor:
        """Every host's gradient sum for the shard this worker owns, unsummed: an fp32 (hosts,
        shard size) tensor, valid until the next step."""
        b, profile = self.buffers, self.profile
        slot = self.area.slots[self.local_rank]
        if b.grads.data_ptr() != slot.data_ptr():
            slot.copy_(b.grads)
        profile.lap("grad_copy")
        self.area.wait_for_all()
        profile.lap("sync_wait")
        torch.sum(self.area.slots[:, self.segment], dim=0, out=self._host_sum)
        if self._send is not self._host_sum:
            self._send.copy_(self._host_sum)
        exchange(self._send.view(self.num_hosts, -1), self._recv.view(self.num_hosts, -1), self.cross_ranks,
                 self.cross_group)
        return self._recv.view(self.num_hosts, b.shard_size).float()

    def all_gather(self, shard: torch.Tensor, into: torch.Tensor) -> None:
        """Assemble every worker's `shard` into the flat buffer `into` on every worker."""
        exchange([shard.contiguous()] * self.num_hosts, self.area.shared[self.segment].view(self.num_hosts, -1),
                 self.cross_ranks, self.cross_group)
        self.profile.lap("all_gather")
        self.area.wait_for_all()
        self.profile.lap("sync_wait")
        if into.data_ptr() != self.area.shared.data_ptr():
            into.copy_(self.area.shared)

    def all_reduce_norm_sq(self, local_sq: float) -> float:
        """Sum of a per-worker squared norm over all workers."""
        value = torch.tensor([local_sq], dtype=torch.float64)
        dist.all_reduce(value)
        return float(value.item())
