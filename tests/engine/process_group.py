"""Run a function on every rank of a real gloo process group: one spawned process per rank on
loopback, each with `torch.distributed` initialised, the results gathered in rank order."""

from __future__ import annotations

import os
import traceback

import torch.distributed as dist
import torch.multiprocessing as mp

#: How long the driver of a test waits for each rank's result.
RESULT_TIMEOUT_S = 120


def _rank_main(function, rank: int, world: int, port: int, args: tuple, queue) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    store = dist.TCPStore("127.0.0.1", port, world, is_master=rank == 0, wait_for_workers=True)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        queue.put((rank, function(rank, world, *args), None))
    except BaseException as exc:  # reported to the test, which shows the rank's traceback
        queue.put((rank, None, (type(exc).__name__, str(exc), traceback.format_exc())))
    finally:
        dist.destroy_process_group()


def run_ranks(function, world: int, *args, failing: bool = False) -> list:
    """`function(rank, world, *args)` on each of `world` ranks; returns their results in rank order.

    With `failing`, every rank is expected to raise: returns each one's ``(exception type name,
    message)`` instead. Otherwise a rank that raised fails the test with every rank's traceback.
    `function` must be importable (a module-level function): the ranks are spawned.
    """
    from zoo.devcluster.processes import free_port

    context = mp.get_context("spawn")
    queue = context.Queue()
    port = free_port()
    processes = [context.Process(target=_rank_main, args=(function, rank, world, port, args, queue))
                 for rank in range(world)]
    for process in processes:
        process.start()
    results, errors = [None] * world, [None] * world
    try:
        for _ in range(world):
            rank, result, error = queue.get(timeout=RESULT_TIMEOUT_S)
            results[rank], errors[rank] = result, error
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    tracebacks = "\n".join(error[2] if error else "(no error)" for error in errors)
    if failing:
        assert all(errors), f"expected every rank to fail:\n{tracebacks}"
        return [(error[0], error[1]) for error in errors]
    assert not any(errors), f"a rank failed:\n{tracebacks}"
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    return results
