"""Arrow record batches to numpy columns, once per worker (or once per batch, for `cachingSample="DISK"`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class ColumnLayout:
    """The columns of a fit's or an evaluation's frame: those that feed the model, in the model's
    input order, then the one that feeds the criterion (None when there are no labels).

    Attributes:
        features: the model's input columns.
        label: the label column, or None.
    """

    features: tuple[str, ...]
    label: str | None = None

    @property
    def names(self) -> list[str]:
        """Every column read: the features, then the label (if any)."""
        return [*self.features] + ([self.label] if self.label is not None else [])

    def samples(self, column: Callable[[str], np.ndarray], build):
        """`build(feature arrays, label array or None)`, reading each array with `column(name)`."""
        return build([column(name) for name in self.features], column(self.label) if self.label is not None else None)


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


def _is_list(data_type) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type) or pa.types.is_fixed_size_list(data_type)


def _fixed_shape(chunks: list[pa.Array]) -> bool:
    """Whether the chunks of one column are numbers, or lists nested to any depth whose rows all
    have one length at each level, with no nulls: then each chunk converts to an N-D array of the
    same trailing shape, and the chunks can be copied one by one into one array."""
    chunks = [c for c in chunks if len(c)]
    lengths = set()
    for chunk in chunks:
        if chunk.null_count:
            return False
        if _is_list(chunk.type):
            value_lengths = chunk.value_lengths().to_numpy(zero_copy_only=False)
            if value_lengths.min() != value_lengths.max():
                return False
            lengths.add(int(value_lengths[0]))
        elif not (pa.types.is_integer(chunk.type) or pa.types.is_floating(chunk.type)
                  or pa.types.is_boolean(chunk.type)):
            return False
    if len(lengths) > 1:
        return False
    return not lengths or _fixed_shape([c.flatten() for c in chunks])


def read_columns(batches, names: list[str]) -> dict[str, np.ndarray]:
    """Drain an iterator of record batches into one numpy array per column.

    Columns of a fixed shape are copied batch by batch into one array, and each batch is let go
    as soon as it is copied, so the batches and the arrays are not both held in full (one copy of
    the data at a time, not two); other columns (ragged lists, strings, nulls) are combined at
    the end, as `column_to_numpy` does.
    """
    batches = [b for b in batches if b.num_rows]
    total = sum(b.num_rows for b in batches)
    if total == 0:
        return {name: np.zeros(0, dtype=np.float32) for name in names}
    fixed = {name for name in names if _fixed_shape([b.column(name) for b in batches])}
    arrays: dict[str, np.ndarray] = {}
    pending: dict[str, list[pa.Array]] = {name: [] for name in names if name not in fixed}
    batches.reverse()
    offset = 0
    while batches:
        batch = batches.pop()
        for name in names:
            column = batch.column(name)
            if name in pending:
                pending[name].append(column)
                continue
            values = column_to_numpy(column, name)
            if name not in arrays:
                arrays[name] = np.empty((total,) + values.shape[1:], dtype=values.dtype)
            arrays[name][offset:offset + len(values)] = values
        offset += batch.num_rows
        batch = column = values = None  # the last reference to the batch's buffers
    for name, chunks in pending.items():
        arrays[name] = column_to_numpy(pa.chunked_array(chunks, type=chunks[0].type), name)
    return {name: arrays[name] for name in names}

