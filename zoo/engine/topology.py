"""Where the workers of a fit run, and how their gradients travel.

The barrier tasks' addresses say which workers share a host. From them the engine chooses one
of three transports, once per fit, the same on every worker:

- ``shared_memory``: every worker on one host; gradients meet in a /dev/shm area.
- ``hierarchical``: several hosts with the same number L of workers each (Horovod's
  hierarchical allreduce on BigDL's sharded optimizer). Within a host the workers reduce through
  shared memory; local rank r then exchanges the host's sum of its 1/L segment of the gradient
  with local rank r of every other host over gloo, so each host sends about 2(H-1)/H of the
  gradient per step rather than L times that.
- ``gloo``: one flat gloo all-to-all among all workers (asked for with ``transport="gloo"``, or
  when hosts hold different numbers of workers, or shared memory is unavailable).

Shard ownership follows the transport: under ``hierarchical`` the worker with local rank r owns
shard ``r * H + p``, where p is its position in cross-host group r (the group's own rank order),
so the H shards of segment r sit side by side in the order one gloo exchange lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARED_MEMORY = "shared_memory"
HIERARCHICAL = "hierarchical"
GLOO = "gloo"


@dataclass(frozen=True)
class Topology:
    """The hosts of one fit's workers, as seen from one worker.

    Attributes:
        rank: this worker's rank in the process group.
        hosts: the host of every rank, in rank order.
    """

    rank: int
    hosts: tuple[str, ...]

    @property
    def world_size(self) -> int:
        """Number of workers."""
        return len(self.hosts)

    @property
    def host_names(self) -> tuple[str, ...]:
        """The distinct hosts, in order of their first worker."""
        return tuple(dict.fromkeys(self.hosts))

    @property
    def num_hosts(self) -> int:
        """H: the number of distinct hosts."""
        return len(self.host_names)

    @property
    def host_index(self) -> int:
        """Index of this worker's host in `host_names`."""
        return self.host_names.index(self.hosts[self.rank])

    def ranks_on(self, host_index: int) -> list[int]:
        """The ranks that run on host `host_index`, in rank order."""
        host = self.host_names[host_index]
        return [r for r, h in enumerate(self.hosts) if h == host]

    @property
    def local_ranks(self) -> list[int]:
        """The ranks on this worker's host (this one included), in rank order."""
        return self.ranks_on(self.host_index)

    @property
    def local_rank(self) -> int:
        """This worker's position among the workers of its host."""
        return self.local_ranks.index(self.rank)

    @property
    def local_size(self) -> int:
        """L: the workers on this worker's host."""
        return len(self.local_ranks)

    @property
    def uniform(self) -> bool:
        """Whether every host runs the same number of workers."""
        return len({len(self.ranks_on(h)) for h in range(self.num_hosts)}) == 1

    def cross_host_ranks(self, local_rank: int) -> list[int]:
        """The ranks with local rank `local_rank`, one per host, in ascending order (a gloo group's
        own rank order: torch sorts the ranks of a new group)."""
        return sorted(self.ranks_on(h)[local_rank] for h in range(self.num_hosts))

    def transport(self, requested: str, shared_memory_supported: bool) -> str:
        """The transport for `requested` ("auto" or "gloo"): see the module docstring."""
        if requested == "gloo" or self.world_size == 1 or not shared_memory_supported:
            return GLOO
        if self.num_hosts == 1:
            return SHARED_MEMORY
        if self.uniform and self.local_size > 1:
            return HIERARCHICAL
        return GLOO

    def shard_index(self, transport: str) -> int:
        """Which shard of the flat buffers this worker owns under `transport`."""
        if transport == HIERARCHICAL:
            # Segment r holds its H shards in the order of cross-host group r's own ranks, the
            # order in which its all-to-all and all-gather lay them out.
            return self.local_rank * self.num_hosts + self.cross_host_ranks(self.local_rank).index(self.rank)
        return self.rank

    def describe(self, transport: str, compression: str = "none") -> str:
        """One line for the log: hosts x workers and the transport of each leg."""
        sizes = [len(self.ranks_on(h)) for h in range(self.num_hosts)]
        layout = (f"{self.num_hosts} host(s) x {sizes[0]} worker(s)" if self.uniform
                  else f"{self.num_hosts} hosts with {sizes} workers")
        if transport == SHARED_MEMORY:
            legs = "shared memory"
        elif transport == HIERARCHICAL:
            wire = "bfloat16" if compression == "bf16" else "float32"
            legs = f"shared memory within a host, gloo across hosts ({wire} gradients)"
        else:
            wire = "bfloat16" if compression == "bf16" else "float32"
            legs = f"flat gloo among all workers ({wire} gradients)"
        return f"{layout}: {legs}"
