"""What a training task leaves behind (zoo.engine.launcher.release_memory): the task's reference
cycles are collected, and what survives is frozen so the next task's collection scans only its own
objects instead of everything the frameworks imported."""

import gc
import weakref

import pytest

from zoo.engine.launcher import release_memory


class _Node:
    """An object that can sit in a reference cycle and be watched through a weak reference."""


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def _cycle() -> weakref.ref:
    node = _Node()
    node.me = node
    return weakref.ref(node)


def _scanned() -> set[int]:
    """ids of the objects the collector still scans (frozen ones are not among them)."""
    return {id(o) for o in gc.get_objects()}


def test_a_tasks_cycles_are_collected_and_the_survivors_frozen(unfrozen):
    release_memory()  # the previous "task"
    first_task = _cycle()
    kept = [_Node() for _ in range(100)]
    kept_ids = {id(node) for node in kept}
    assert kept_ids <= _scanned()
    release_memory()
    assert first_task() is None, "the cycle the task left was collected"
    assert not kept_ids & _scanned(), "what survived the task is out of later collections"
    second_task = _cycle()
    release_memory()
    assert second_task() is None, "a cycle made after the freeze is still collected"
    # (Not the freeze count: frozen objects that other threads drop leave it meanwhile.)
    assert not kept_ids & _scanned(), "what was frozen stays frozen"
