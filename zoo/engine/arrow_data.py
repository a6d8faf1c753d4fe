"""Arrow record batches to numpy columns, once per worker; optional spill to local disk."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pyarrow as pa


def column_to_numpy(column: pa.ChunkedArray | pa.Array, name: str) -> np.ndarray:
    """One Arrow column as numpy: numbers 1-D, equal-length (nested) lists N-D, else objects.

    Raises ValueError naming the column if it holds nulls.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    if column.null_count:
        raise ValueError(f"Column `{name}` has {column.null_count} null value(s); drop or fill them first.")
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type):
        lengths = column.value_lengths().to_numpy(zero_copy_only=False) if len(column) else np.zeros(0, np.int64)
        if len(lengths) and (lengths == lengths[0]).all():
            inner = column_to_numpy(column.flatten(), name)
            return inner.reshape((len(column), int(lengths[0])) + inner.shape[1:])
        if not len(lengths):
            return np.zeros((0, 0), dtype=np.float32)
        return np.array([np.asarray(v) for v in column.to_pylist()], dtype=object)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
        return column.to_numpy(zero_copy_only=False)
    return np.array(column.to_pylist(), dtype=object)


def read_columns(batches, names: list[str]) -> dict[str, np.ndarray]:
    """Drain an iterator of record batches into one numpy array per column."""
    batches = list(batches)
    table = pa.Table.from_batches(batches) if batches else None
    if table is None or table.num_rows == 0:
        return {name: np.zeros(0, dtype=np.float32) for name in names}
    return {name: column_to_numpy(table.column(name), name) for name in names}


def spill_to_disk(arrays: list[np.ndarray], directory: str | None = None) -> list[np.ndarray]:
    """Write arrays to memory-mapped files on local disk and return read-only views of them.

    Used when samples should not stay in memory (`cachingSample=False`); the files are unlinked
    at once, so they disappear when the worker lets go of them.
    """
    directory = directory or os.environ.get("SPARK_LOCAL_DIRS", "").split(",")[0] or None
    spilled = []
    for array in arrays:
        if array.dtype == object:
            spilled.append(array)
            continue
        handle, path = tempfile.mkstemp(prefix="zoo-samples-", suffix=".npy", dir=directory)
        os.close(handle)
        np.save(path, array)
        spilled.append(np.load(path, mmap_mode="r"))
        os.unlink(path)
    return spilled
