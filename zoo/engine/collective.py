"""The process group of one barrier stage and the sharded gradient aggregation over it.

Gradients and weights live in two flat fp32 buffers that the model's parameters and gradients
view. Each step, `reduce_scatter_parts` leaves every worker all workers' parts of its 1/N shard
of the global gradient; the worker sums them and updates that shard with shard-local optimizer state; `all_gather` puts the
updated shards back together on every worker. This is BigDL's AllReduceParameter over gloo.

The buffers carry one extra element after the parameters, the "loss slot": each worker writes
its share of the global batch loss there, so the reduced loss reaches every worker in the same
two collectives, with no extra round trip.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import socket

import torch
import torch.distributed as dist

from zoo.engine.profile import StepProfile
from zoo.engine.topology import Topology

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300


#: The Spark local property through which a fit's driver gives its barrier tasks the address
#: ("host:port") of the rendezvous store it opened (`open_rendezvous_store`).
RENDEZVOUS_PROPERTY = "zoo.fit.rendezvous"


def open_rendezvous_store(host: str, timeout_s: int = DEFAULT_TIMEOUT_S):
    """Driver side: a TCPStore on a free port of `host` where a fit's barrier tasks meet.

    Set ``f"{host}:{store.port}"`` as the local property `RENDEZVOUS_PROPERTY` of the thread that
    runs the stage, and keep the store open until the stage ends.
    """
    return dist.TCPStore(host, 0, None, is_master=True, wait_for_workers=False,
                         timeout=datetime.timedelta(seconds=timeout_s))


def agree_on_attempt(store, task_id: int, world_size: int) -> int:
    """Worker side: the id that the `world_size` tasks of this stage attempt agree on, through
    `store`, which may hold the keys of earlier attempts; `task_id` is this task's
    `taskAttemptId()`.

    Spark numbers task attempts in launch order, so every task of a retried stage has a larger id
    than every task of the attempts before it, and the attempt's largest id names it. Each task
    raises the key "leader" to at least its own id, then counts itself under the leader it sees;
    a task that raises the leader tells those counted under the old one ("moved") to count again.
    Only the final leader, the attempt's largest id, can gather `world_size` tasks: each of them
    saw a leader at least as large as its own id. (A task of a failed attempt that Spark has not
    killed yet could still count itself there; the gloo rendezvous then fails and Spark retries.)
    """
    own = str(task_id)
    leader = store.compare_set("leader", "", own).decode()
    while int(leader) < task_id:
        seen = store.compare_set("leader", leader, own).decode()
        if seen == own:
            store.set(f"ready/{leader}", "moved")
        leader = seen
    while True:
        if store.add(f"count/{leader}", 1) == world_size:
            store.set(f"ready/{leader}", "go")
        store.wait([f"ready/{leader}"])
        if store.get(f"ready/{leader}") == b"go":
            return int(leader)
        leader = store.get("leader").decode()


def init_process_group(barrier_context, timeout_s: int = DEFAULT_TIMEOUT_S) -> Topology:
    """Join a gloo process group with the other tasks of this barrier stage.

    Returns the fit's `Topology` (this worker's rank and every rank's host).

    When the driver opened a rendezvous store (the local property `RENDEZVOUS_PROPERTY`), the
    tasks meet there, under a prefix per stage attempt so a retried stage never sees the keys of
    the attempt that failed. Otherwise rank 0 opens a TCPStore on a free port of its host and
    shares the address through `BarrierTaskContext.allGather`, which costs a second: Spark polls
    a barrier call's answer once a second. Either way no port is fixed in advance and none is
    raced for. Gloo binds to the network interface that holds the address Spark knows this
    executor by (unless GLOO_SOCKET_IFNAME is set), so it never depends on how the host name
    resolves.
    """
    rank = barrier_context.partitionId()
    infos = barrier_context.getTaskInfos()
    world_size = len(infos)
    hosts = tuple(info.address.rsplit(":", 1)[0] for info in infos)
    timeout = datetime.timedelta(seconds=timeout_s)
    driver_store = barrier_context.getLocalProperty(RENDEZVOUS_PROPERTY)
    if driver_store:
        host, port = driver_store.rsplit(":", 1)
        store = dist.TCPStore(host, int(port), None, is_master=False, timeout=timeout)
        attempt = agree_on_attempt(store, barrier_context.taskAttemptId(), world_size)
        return join_process_group(dist.PrefixStore(f"attempt-{attempt}/", store), rank, hosts, timeout_s)
    store = None
    if rank == 0:
        store = dist.TCPStore(hosts[0], 0, world_size, is_master=True, timeout=timeout, wait_for_workers=False)
        address = f"{hosts[0]}:{store.port}"
    else:
        address = ""
    master = barrier_context.allGather(address)[0]
    if store is None:
        host, port = master.rsplit(":", 1)
        store = dist.TCPStore(host, int(port), world_size, is_master=False, timeout=timeout)
    return join_process_group(store, rank, hosts, timeout_s)


def join_process_group(store, rank: int, hosts: tuple[str, ...], timeout_s: int = DEFAULT_TIMEOUT_S) -> Topology:
    """Join the gloo process group of ``len(hosts)`` workers that meet through `store` (a torch
    distributed Store), as worker `rank`; `hosts` holds every rank's address, in rank order.

    The Spark barrier stage (`init_process_group`) and Zoo's Flink operators (`zoo.flink.training`)
    both end here, so the interface choice and the topology are the same for both.
    """
    _choose_gloo_interface(hosts[rank], single_host=len(set(hosts)) == 1)
    timeout = datetime.timedelta(seconds=timeout_s)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=len(hosts), timeout=timeout)
    return Topology(rank, tuple(hosts))


#: GLOO_SOCKET_IFNAME as the user set it before Zoo chose one (a reused Python worker keeps the
#: variable Zoo set for an earlier fit, which must not count as the user's choice).
_USER_GLOO_IFNAME = os.environ.get("GLOO_SOCKET_IFNAME")


def _choose_gloo_interface(address: str, single_host: bool) -> None:
    if _USER_GLOO_IFNAME:
        os.environ["GLOO_SOCKET_IFNAME"] = _USER_GLOO_IFNAME
        return
    if single_host and os.path.exists("/sys/class/net/lo"):
        # Every worker is on this host: keep gloo on loopback whatever the hostname resolves to.
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        return
    interface = interface_with_address(address)
    if interface is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = interface
    else:
        os.environ.pop("GLOO_SOCKET_IFNAME", None)


def interface_with_address(address: str) -> str | None:
    """The name of this machine's network interface that holds `address` (an IPv4 address or a
    host name resolving to one), or None when none does or it cannot be told (not Linux)."""
    try:
        ip = socket.gethostbyname(address)
    except OSError:
        return None
    if not os.path.isdir("/sys/class/net"):
        return None
    for name in sorted(os.listdir("/sys/class/net")):
        if _ipv4_of(name) == ip:
            return name
    return None


def _ipv4_of(interface: str) -> str | None:
    import fcntl
    import struct

    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            packed = fcntl.ioctl(probe.fileno(), siocgifaddr, struct.pack("256s", interface.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def destroy_process_group() -> None:
    """Leave the process group if one is active (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


#: Shards are a multiple of this many fp32 elements (64 bytes), so every shard starts on a
#: 64-byte boundary: frameworks read shards in place, and TensorFlow's kernels need that alignment.
SHARD_ALIGNMENT_ELEMENTS = 16


class FlatBuffers:
    """Flat parameter and gradient buffers, padded to a multiple of the world size.

    Attributes:
        num_params: number of parameter elements.
        shard_size: elements per worker shard, a multiple of SHARD_ALIGNMENT_ELEMENTS (the last
            shard holds padding and the loss slot).
        params, grads: the flat fp32 buffers, `shard_size * world_size` long.
        loss_index: position of the loss slot.
        shard_index: which shard this worker owns (its rank, unless the transport orders shards
            otherwise; see `zoo.engine.topology`).
    """

    def __init__(self, num_params: int, rank: int, world_size: int, shard_index: int | None = None):
        self.num_params = num_params
        self.rank = rank
        self.world_size = world_size
        self.shard_index = rank if shard_index is None else shard_index
        per_worker = math.ceil((num_params + 1) / world_size)
        self.shard_size = math.ceil(per_worker / SHARD_ALIGNMENT_ELEMENTS) * SHARD_ALIGNMENT_ELEMENTS
        padded = self.shard_size * world_size
        self.params = torch.zeros(padded, dtype=torch.float32)
        self.grads = torch.zeros(padded, dtype=torch.float32)
        self.loss_index = num_params
        self.shard_start = self.shard_index * self.shard_size

    def shard(self, buffer: torch.Tensor) -> torch.Tensor:
        """This worker's shard of `buffer` (a view)."""
        return buffer[self.shard_start:self.shard_start + self.shard_size]

    def owns_loss_slot(self) -> bool:
        """Whether the loss slot falls in this worker's shard."""
        return self.loss_index // self.shard_size == self.shard_index

    @property
    def local_loss_index(self) -> int:
        """The loss slot's position within its owner's shard."""
        return self.loss_index - (self.loss_index // self.shard_size) * self.shard_size


def exchange(send_rows, recv_rows, ranks: list[int], group=None) -> None:
    """All-to-all by posted point-to-point transfers: row i of `send_rows` goes to rank `ranks[i]`,
    row i of `recv_rows` comes from it (this worker's own row is copied). Each row is a contiguous
    tensor; the same tensor may stand in every send row (an all-gather).

    Gloo's own all_to_all and ring all_gather move one direction of a pair at a time (between two
    hosts on a shaped 1 Gbit/s link, 434 ms for what this does in 219 ms): here every send and
    receive is posted at once, so each link carries both directions together.
    """
    me = dist.get_rank()
    requests = []
    for send, recv, peer in zip(send_rows, recv_rows, ranks):
        if peer == me:
            recv.copy_(send)
            continue
        requests.append(dist.irecv(recv, src=peer, group=group))
        requests.append(dist.isend(send, dst=peer, group=group))
    for request in requests:
        request.wait()


class ShardedAggregator:
    """Reduce-scatter of gradients and all-gather of weights over the active process group.

    Args:
        buffers: the flat buffers the model views.
        compress: "none", or "bf16" to send gradients as bfloat16 (summed in fp32 on arrival).
        profile: where the `grad_copy` phase (into the send buffer) goes; gloo's transfers wait for
            the peers inside them, so their waiting stays in `reduce_scatter` and `all_gather`.
    """

    def __init__(self, buffers: FlatBuffers, compress: str = "none", profile: StepProfile | None = None):
        self.buffers = buffers
        self.profile = profile or StepProfile()
        self.compress = compress
        world, size = buffers.world_size, buffers.shard_size
        wire = torch.bfloat16 if compress == "bf16" else torch.float32
        self._send = torch.empty(world * size, dtype=wire)
        self._recv = torch.empty(world * size, dtype=wire)

    def reduce_scatter_parts(self) -> torch.Tensor:
        """Every worker's gradient for the shard this worker owns, unsummed: an fp32
        (world size, shard size) tensor, valid until the next step."""
        b = self.buffers
        if b.world_size == 1:
            return b.grads.view(1, -1)
        self._send.copy_(b.grads)
        self.profile.lap("grad_copy")
        ranks = list(range(b.world_size))
        exchange(self._send.view(b.world_size, -1), self._recv.view(b.world_size, -1), ranks)
        return self._recv.view(b.world_size, b.shard_size).float()

    def all_gather(self, shard: torch.Tensor, into: torch.Tensor) -> None:
        """Assemble every worker's `shard` into the flat buffer `into` on every worker."""
        b = self.buffers
        if b.world_size == 1:
            into.copy_(shard)
            return
        shard = shard.contiguous()
        exchange([shard] * b.world_size, into.view(b.world_size, -1), list(range(b.world_size)))

    def all_reduce_norm_sq(self, local_sq: float) -> float:
        """Sum of a per-worker squared norm over all workers."""
        if self.buffers.world_size == 1:
            return local_sq
        value = torch.tensor([local_sq], dtype=torch.float64)
        dist.all_reduce(value)
        return float(value.item())


def average_tensors(tensors: list[torch.Tensor]) -> None:
    """Replace each tensor by its mean over all workers (for BatchNorm running statistics)."""
    if not tensors or not dist.is_initialized() or dist.get_world_size() == 1:
        return
    flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.data.copy_(flat[offset:offset + n].view_as(t).to(t.dtype))
        offset += n


def all_gather_objects(obj) -> list:
    """Every worker's `obj`, in rank order (a list of one when there is no process group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
