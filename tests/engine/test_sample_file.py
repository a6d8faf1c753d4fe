"""Samples on local disk (zoo.engine.sample_file, cachingSample="DISK"): written batch by batch, read by position."""

import os
import tracemalloc

import numpy as np
import pytest

from zoo.engine.config import samples_in_memory
from zoo.engine.sample_file import SampleFileWriter, stream_to_files
from zoo.errors import ZooValueError


def batches(count, rows, seed=0):
    """`count` batches of (features (rows, 3, 2) float32, ids int64, target (rows,) float64)."""
    rng = np.random.default_rng(seed)
    for b in range(count):
        yield [rng.normal(size=(rows, 3, 2)).astype(np.float32), np.arange(b * rows, (b + 1) * rows),
               rng.normal(size=rows)]


def test_samples_read_back_at_any_positions_equal_what_was_written(tmp_path):
    writer = SampleFileWriter(str(tmp_path))
    written = list(batches(5, 40))
    for arrays in written:
        writer.append(arrays)
    samples = writer.finish()
    whole = [np.concatenate(parts) for parts in zip(*written)]
    assert len(samples) == 200
    for positions in (np.random.default_rng(1).permutation(200)[:64], np.arange(37, 101), np.array([5]),
                      np.array([], dtype=np.int64)):
        read = samples.read(positions)
        for got, want in zip(read, whole):
            assert got.dtype == want.dtype and got.flags.c_contiguous
            np.testing.assert_array_equal(got, want[positions])


def test_the_file_is_unlinked_at_once_and_closing_frees_it(tmp_path):
    writer = SampleFileWriter(str(tmp_path))
    writer.append(next(batches(1, 10)))
    assert os.listdir(tmp_path) == []
    samples = writer.finish()
    descriptor = samples._fd
    assert os.fstat(descriptor).st_size > 0
    samples.close()
    with pytest.raises(OSError):
        os.fstat(descriptor)


def test_a_sample_shape_that_changes_between_batches_is_refused_with_both_shapes(tmp_path):
    writer = SampleFileWriter(str(tmp_path))
    writer.append([np.zeros((4, 3), np.float32), np.zeros(4)])
    with pytest.raises(ZooValueError, match=r"float32\(5,\).*after float32\(3,\).*pad or cut"):
        writer.append([np.zeros((4, 5), np.float32), np.zeros(4)])
    with pytest.raises(ZooValueError, match="Python objects"):
        writer.append([np.array([[1], [1, 2]], dtype=object), np.zeros(2)])
    writer.close()


def test_streaming_holds_about_one_batch_in_memory_not_the_partition(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARK_LOCAL_DIRS", str(tmp_path))
    rows, count = 2000, 50
    batch_bytes = rows * (3 * 2 * 4 + 8 + 8)
    tracemalloc.start()
    try:
        files = stream_to_files(batches(count, rows), 2,
                                lambda arrays, part: [a[part::2] for a in arrays])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [len(f) for f in files] == [count * rows // 2] * 2
    # The generator's batch, its records and a slice: a few batches at most, for 50 batches of data.
    assert peak < 4 * batch_bytes, f"peak {peak} bytes for batches of {batch_bytes} ({count} batches written)"
    np.testing.assert_array_equal(files[1].read(np.arange(3))[1], [1, 3, 5])


@pytest.mark.parametrize("value, in_memory", [(True, True), (False, False), ("MEMORY", True), ("DISK", False),
                                              ("disk", False)])
def test_caching_sample_takes_booleans_and_names(value, in_memory):
    assert samples_in_memory(value) is in_memory


@pytest.mark.parametrize("value", ["DRAM", 1, None, "yes"])
def test_another_caching_sample_is_refused_with_the_accepted_values(value):
    with pytest.raises(ZooValueError, match=r"Expected `cachingSample` in \(True, False, 'MEMORY', 'DISK'\)\. "
                                            rf"Received: cachingSample={value!r}"):
        samples_in_memory(value)
