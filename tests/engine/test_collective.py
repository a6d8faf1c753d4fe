"""The rendezvous of a fit's barrier tasks in the driver's store (zoo.engine.collective)."""

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch.distributed as dist

from zoo.engine.collective import agree_on_attempt, open_rendezvous_store


@pytest.fixture
def client():
    """A factory of task-side clients of a driver-side rendezvous store on loopback."""
    server = open_rendezvous_store("127.0.0.1", timeout_s=30)
    yield lambda: dist.TCPStore("127.0.0.1", server.port, None, is_master=False)


def attempt(client, task_ids: list[int]) -> list[int]:
    """What each task of one stage attempt (its task ids, one thread and store client each) agrees on."""
    with ThreadPoolExecutor(len(task_ids)) as pool:
        return list(pool.map(lambda task_id: agree_on_attempt(client(), task_id, len(task_ids)), task_ids))


def _lone_task(port: int, task_id: int, world_size: int) -> None:
    agree_on_attempt(dist.TCPStore("127.0.0.1", port, None, is_master=False), task_id, world_size)


@pytest.mark.parametrize("order", [[7, 8, 9], [9, 8, 7], [8, 9, 7]])
def test_the_tasks_of_one_attempt_agree_on_its_largest_task_id_in_any_order(client, order):
    assert attempt(client, order) == [9, 9, 9]


def test_a_retried_attempt_never_meets_under_the_keys_of_the_attempts_before_it(client):
    assert attempt(client, [3, 4]) == [4, 4]
    # A failed attempt: task 6 reached the store and died there; its peer died before the store.
    watcher = client()
    lone = multiprocessing.get_context("fork").Process(target=_lone_task, args=(watcher.port, 6, 2))
    lone.start()
    watcher.wait(["count/6"])  # task 6 has counted itself
    lone.kill()
    lone.join()
    assert attempt(client, [8, 9]) == [9, 9]
    assert attempt(client, [11, 10]) == [11, 11]
