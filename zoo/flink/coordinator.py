"""The application-master role of a fit in Flink: where the training operators meet.

flink-ai-extended ran an application master beside its worker operators; here the Flink job's
client plays it, with two services on one host the TaskManagers can reach:

- a torch `TCPStore` (the rendezvous, and where rank 0 leaves a bounded fit's result, so the
  result does not depend on Flink's collect sink, which gives up when a job restarts): each training subtask writes its address under a prefix
  named after the fit and the task's attempt number, reads every other one's, and joins a gloo
  process group through the same prefix (`zoo.engine.collective.join_process_group`). After a
  failure Flink restarts the tasks with the next attempt number, so they meet under a fresh
  prefix and never see the keys of the attempt that died;
- Zoo's `ProgressServer`: rank 0 streams steps and validation (history, tqdm, TensorBoard) and any
  worker reports its traceback, exactly as in a Spark fit.
"""

from __future__ import annotations

import datetime
import socket

from zoo.engine.collective import DEFAULT_TIMEOUT_S, join_process_group
from zoo.engine.progress import ProgressServer


class Coordinator:
    """Client side: the rendezvous store and the progress server of one fit.

    Args:
        host: the address TaskManagers reach this process at (loopback for a local mini-cluster).
        show_progress, tensorboard_dir: as for `ProgressServer`.
    """

    def __init__(self, host: str, show_progress: bool = False, tensorboard_dir: str | None = None):
        import torch.distributed as dist

        self.host = host
        self.store = dist.TCPStore(host, 0, None, is_master=True, wait_for_workers=False,
                                   timeout=datetime.timedelta(seconds=DEFAULT_TIMEOUT_S))
        self.progress = ProgressServer(host, show_progress, tensorboard_dir).start()

    @property
    def store_address(self) -> tuple[str, int]:
        """(host, port) of the rendezvous store."""
        return self.host, self.store.port

    def close(self) -> None:
        """Stop the progress server (the store closes with this object)."""
        self.progress.close()

    def __enter__(self) -> "Coordinator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def address_towards(host: str, port: int) -> str:
    """This machine's IP address on the route to (host, port): what the other workers reach it at."""
    with socket.create_connection((host, port), timeout=30) as probe:
        return probe.getsockname()[0]


def result_key(run_id: str) -> str:
    """The store key under which rank 0 leaves a bounded fit's result for the client."""
    return f"zoo-fit/{run_id}/result"


def rendezvous(store_address: tuple[str, int], run_id: str, attempt: int, rank: int, world_size: int,
               timeout_s: int = DEFAULT_TIMEOUT_S):
    """Worker side: meet the other `world_size - 1` workers of attempt `attempt` of fit `run_id`
    through the coordinator's store and join their gloo process group; returns the topology and
    a client of the coordinator's store."""
    import torch.distributed as dist

    host, port = store_address
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(host, port, None, is_master=False, timeout=timeout)
    scoped = dist.PrefixStore(f"zoo-fit/{run_id}/attempt-{attempt}/", store)
    scoped.set(f"host/{rank}", address_towards(host, port))
    hosts = tuple(scoped.get(f"host/{r}").decode() for r in range(world_size))
    return join_process_group(dist.PrefixStore("gloo/", scoped), rank, hosts, timeout_s), store
