"""The gradient aggregators on real gloo process groups: each returns every worker's part of its
shard (summing to the global gradient's shard) and all-gathers shards into the full buffer.

Four processes on loopback. The hierarchical aggregator is given the topology of two hosts
(its host key is an input like any other); the network-namespace tests in tests/multihost run
it across real hosts.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.process_group import run_ranks
from zoo.engine.collective import FlatBuffers, ShardedAggregator
from zoo.engine.hierarchical import HierarchicalAggregator
from zoo.engine.shared_memory import SharedMemoryAggregator, supported
from zoo.engine.topology import GLOO, HIERARCHICAL, SHARED_MEMORY, Topology

NUM_PARAMS = 1003  # odd: the last shard holds padding and the loss slot


def _gradient(rank: int, padded: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(rank).normal(size=padded).astype(np.float32))


def _aggregate(rank, world, hosts, transport, compress):
    """Two steps of `transport`'s aggregator on this rank: each step's parts, gathered weights and norm."""
    topology = Topology(rank, tuple(hosts))
    buffers = FlatBuffers(NUM_PARAMS, rank, world, topology.shard_index(transport))
    if transport == HIERARCHICAL:
        aggregator = HierarchicalAggregator(buffers, topology, compress)
    elif transport == SHARED_MEMORY:
        aggregator = SharedMemoryAggregator(buffers)
    else:
        aggregator = ShardedAggregator(buffers, compress)
    padded = buffers.shard_size * world
    results = []
    for step in range(2):  # twice: the buffers are reused from step to step
        buffers.grads.copy_(_gradient(rank + 10 * step, padded))
        parts = aggregator.reduce_scatter_parts().clone()
        # The shard's new values: something only the owner knows, to check the all-gather.
        values = torch.full((buffers.shard_size,), float(buffers.shard_index + 100 * step))
        aggregator.all_gather(values, buffers.params)
        norm = aggregator.all_reduce_norm_sq(float(rank + 1))
        results.append((parts.numpy(), buffers.params.clone().numpy(), norm))
    return buffers.shard_index, buffers.shard_size, results


def _run(hosts, transport, compress="none"):
    return dict(enumerate(run_ranks(_aggregate, len(hosts), hosts, transport, compress)))


def _check(outcome, world, rtol, atol):
    shard_indices = sorted(index for index, _, _ in outcome.values())
    assert shard_indices == list(range(world)), "every shard must have exactly one owner"
    for rank, (shard_index, size, results) in outcome.items():
        for step, (parts, params, norm) in enumerate(results):
            padded = size * world
            total = sum(_gradient(r + 10 * step, padded) for r in range(world)).numpy()
            want = total[shard_index * size:(shard_index + 1) * size]
            np.testing.assert_allclose(parts.sum(axis=0), want, rtol=rtol, atol=atol)
            expected = np.repeat(np.arange(world, dtype=np.float32) + 100 * step, size)
            np.testing.assert_array_equal(params, expected)
            assert norm == pytest.approx(sum(range(1, world + 1)))


needs_shm = pytest.mark.skipif(not supported(), reason="the shared-memory transport needs x86-64 and /dev/shm")


@needs_shm
@pytest.mark.parametrize("hosts", [("a", "a", "b", "b"), ("a", "b", "a", "b"), ("a", "b", "b", "a")],
                         ids=["blocked", "interleaved", "crossed"])
def test_hierarchical_parts_sum_to_the_global_gradient(hosts):
    outcome = _run(hosts, HIERARCHICAL)
    for _, _, results in outcome.values():
        assert results[0][0].shape[0] == 2, "one part per host"
    _check(outcome, 4, rtol=1e-5, atol=1e-5)


@needs_shm
def test_hierarchical_bf16_compresses_only_the_inter_host_leg():
    outcome = _run(("a", "a", "b", "b"), HIERARCHICAL, "bf16")
    # Each part is one host's sum rounded once to bfloat16 (8 bits of mantissa): relative error
    # of each part <= 2^-8, so the total is off by at most that fraction of the parts' magnitudes.
    _check(outcome, 4, rtol=0, atol=4 * 2.0 ** -8 * 4)
    for _, _, results in outcome.values():
        parts = np.ascontiguousarray(results[0][0])
        # Every part crossed the wire as bfloat16: its low 16 bits of fp32 mantissa are zero.
        assert not (parts.view(np.uint32) & 0xFFFF).any()
    # Weights travel in full precision: the all-gathered values are exact (checked by _check).


def test_flat_gloo_and_shared_memory_agree():
    _check(_run(("a", "b", "a", "b"), GLOO), 4, rtol=1e-5, atol=1e-5)
    if supported():
        _check(_run(("a", "a", "a", "a"), SHARED_MEMORY), 4, rtol=1e-5, atol=1e-5)


def test_topology_chooses_the_transport_and_shard_order():
    two_by_two = [Topology(r, ("x", "x", "y", "y")) for r in range(4)]
    assert [t.transport("auto", True) for t in two_by_two] == [HIERARCHICAL] * 4
    assert [t.shard_index(HIERARCHICAL) for t in two_by_two] == [0, 2, 1, 3]
    crossed = [Topology(r, ("x", "y", "y", "x")) for r in range(4)]
    # Group 1 is ranks (2, 3): rank 2 (on y) comes first in the group, so it owns shard 2.
    assert [t.shard_index(HIERARCHICAL) for t in crossed] == [0, 1, 2, 3]
    assert two_by_two[0].cross_host_ranks(1) == [1, 3]
    assert two_by_two[0].describe(HIERARCHICAL, "bf16").startswith("2 host(s) x 2 worker(s)")
    assert Topology(0, ("x", "x")).transport("auto", True) == SHARED_MEMORY
    assert Topology(0, ("x", "x")).transport("gloo", True) == GLOO
    assert Topology(0, ("x", "x", "y")).transport("auto", True) == GLOO, "uneven hosts fall back to flat gloo"
    assert Topology(0, ("x", "y")).transport("auto", True) == GLOO, "one worker per host: nothing to share"
    assert Topology(0, ("x", "x", "y", "y")).transport("auto", False) == GLOO
