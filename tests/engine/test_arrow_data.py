"""Arrow record batches to numpy columns (zoo.engine.arrow_data.read_columns), as a training task
reads its partition: one array per column, the batches let go once copied."""

import numpy as np
import pyarrow as pa
import pytest

from zoo.engine.arrow_data import read_columns


def test_fixed_shape_columns_join_batches_into_one_array():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(25, 3, 2)).astype(np.float32)
    y = rng.normal(size=25)
    flags = rng.random(25) > 0.5
    table = pa.table({"x": pa.array(list(x.tolist()), type=pa.list_(pa.list_(pa.float32()))), "y": y, "flag": flags})
    batches = table.to_batches(max_chunksize=7)
    empty = pa.RecordBatch.from_pylist([], schema=table.schema)
    arrays = read_columns(iter([empty] + batches + [empty]), ["x", "y", "flag"])
    assert len(batches) == 4
    assert arrays["x"].dtype == np.float32 and np.array_equal(arrays["x"], x)
    assert np.array_equal(arrays["y"], y) and np.array_equal(arrays["flag"], flags)


def test_ragged_lists_and_strings_keep_their_rows_as_objects():
    first = pa.record_batch({"v": pa.array([[1.0, 2.0], [3.0, 4.0]]), "s": pa.array(["a", "b"])})
    second = pa.record_batch({"v": pa.array([[5.0, 6.0, 7.0]]), "s": pa.array(["c"])})
    arrays = read_columns([first, second], ["v", "s"])
    assert arrays["v"].dtype == object and [list(r) for r in arrays["v"]] == [[1, 2], [3, 4], [5, 6, 7]]
    assert arrays["s"].tolist() == ["a", "b", "c"]


def test_a_null_is_refused_naming_the_column():
    batch = pa.record_batch({"x": pa.array([[1.0], None])})
    with pytest.raises(ValueError, match="Column `x` has 1 null value"):
        read_columns([batch], ["x"])


def test_the_arrays_hold_no_memory_of_the_batches():
    # Once read_columns returns, nothing holds the batches' buffers: not the arrays (copies, not
    # views), not a combined column; Arrow's pool is back where it was before the batches came.
    pool = pa.default_memory_pool()
    x = np.arange(4000 * 16, dtype=np.float32).reshape(4000, 16)
    table = pa.table({"x": pa.array(list(x), type=pa.list_(pa.float32())), "y": np.arange(4000.0)})
    before, held = pool.bytes_allocated(), []

    def batches():
        """Each batch in buffers of its own from the pool, as a stream reader would give them."""
        for start in range(0, 4000, 500):
            batch = table.slice(start, 500).take(pa.array(np.arange(500)))
            held.append(pool.bytes_allocated() - before)
            yield from batch.to_batches()

    arrays = read_columns(batches(), ["x", "y"])
    assert held[-1] >= x.nbytes, "the batches did not come from Arrow's pool"
    assert pool.bytes_allocated() == before, f"{pool.bytes_allocated() - before} bytes of the batches are still held"
    assert np.array_equal(arrays["x"], x) and np.array_equal(arrays["y"], np.arange(4000.0))
