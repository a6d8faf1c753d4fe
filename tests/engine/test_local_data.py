"""A worker's samples per epoch (zoo.engine.loop.LocalData, DiskData): one shuffle per epoch, batches as views."""

import numpy as np

from zoo.engine.loop import DiskData, LocalData, shuffle_rows
from zoo.engine.sample_file import SampleFileWriter

N = 97


def arrays(seed=0):
    """Two model inputs of different dtypes and shapes and a target; row i of each encodes i."""
    ids = np.arange(N)
    return [np.repeat(ids, 6).reshape(N, 3, 2).astype(np.float32), ids.astype(np.int16)], ids.astype(np.float64)


def epochs(data, count=3, batch=10, seed=7):
    """Every epoch's batches, as the ids of their rows (checked to agree across inputs and target)."""
    seen = []
    for epoch in range(count):
        data.shuffle([seed, epoch, 0])
        ids = []
        for start in range(0, len(data), batch):
            inputs, target = data.batch(start, min(start + batch, len(data)))
            assert (inputs[0][:, 0, 0].numpy() == target.numpy()).all()
            assert (inputs[1].numpy() == target.numpy()).all()
            ids.extend(target.numpy().astype(int).tolist())
        seen.append(ids)
    return seen


def test_each_epoch_reads_every_sample_once_in_a_new_reproducible_order():
    seen = epochs(LocalData(*arrays()))
    assert all(sorted(ids) == list(range(N)) for ids in seen)
    assert len({tuple(ids) for ids in seen}) == 3 and seen[0] != list(range(N))
    assert epochs(LocalData(*arrays())) == seen


def test_arrays_shuffled_in_place_index_shuffled_and_disk_samples_read_the_same_batches(tmp_path):
    inputs, target = arrays()
    read_only = [a.copy() for a in inputs + [target]]
    for a in read_only:
        a.flags.writeable = False
    writer = SampleFileWriter(str(tmp_path))
    writer.append(inputs + [target])
    moved = LocalData(*arrays())
    assert moved._movable and not LocalData(read_only[:2], read_only[2])._movable
    assert epochs(moved) == epochs(LocalData(read_only[:2], read_only[2])) == epochs(DiskData(writer.finish()))


def test_a_batch_of_shuffled_arrays_is_a_view_of_them_not_a_copy():
    data = LocalData(*arrays())
    data.shuffle([1, 0, 0])
    inputs, target = data.batch(20, 30)
    assert inputs[0].data_ptr() == data.inputs[0][20:].ctypes.data
    assert target.data_ptr() == data.target[20:].ctypes.data


def test_arrays_over_the_same_memory_are_not_moved_twice():
    ids = np.arange(N, dtype=np.float64)
    data = LocalData([ids, ids[:]], ids)  # three arrays over one buffer
    assert not data._movable
    for epoch in range(2):
        data.shuffle([5, epoch, 0])
        inputs, target = data.batch(0, N)
        assert sorted(target.numpy()) == list(range(N)) and (target.numpy() != ids[:N]).any()
        assert (inputs[0].numpy() == target.numpy()).all() and (inputs[1].numpy() == target.numpy()).all()


def test_shuffle_rows_moves_whole_rows_by_one_permutation_for_every_dtype():
    columns = [np.arange(N, dtype=np.int8), np.arange(N * 5, dtype=np.uint8).reshape(N, 5),
               np.arange(N * 4, dtype=np.float64).reshape(N, 2, 2), np.arange(N, dtype=np.int64)]
    originals = [c.copy() for c in columns]
    shuffle_rows(columns, [3, 1, 4])
    order = columns[3]
    assert sorted(order) == list(range(N)) and (order != np.arange(N)).any()
    for shuffled, original in zip(columns, originals):
        np.testing.assert_array_equal(shuffled, original[order])
