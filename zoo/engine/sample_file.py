"""Training samples on local disk (`cachingSample="DISK"`): appended batch by batch, read by position.

A worker streams its partition's Arrow record batches through the preprocessing into one file,
a batch at a time, so its memory holds one record batch, never the partition. Each sample is
one fixed-size record (every model input and the target side by side), so a training batch is
read back with one positioned read per sample, or one for a run of consecutive samples.

Reads go through the file, not a memory map: Spark limits a Python worker's memory
(`spark.executor.pyspark.memory`) as its address space (RLIMIT_AS), which a map of a file larger
than that limit would exceed. The operating system's page cache keeps what fits in memory. The
file is unlinked as soon as it is created, so it vanishes when the worker closes it or dies.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from zoo.errors import ZooValueError


def local_directory() -> str | None:
    """The executor's first local directory (SPARK_LOCAL_DIRS), or None for the system's temp dir."""
    return os.environ.get("SPARK_LOCAL_DIRS", "").split(",")[0] or None


def _record_type(arrays: list[np.ndarray]) -> np.dtype:
    """One packed record per sample: field `i` holds one sample of `arrays[i]`."""
    return np.dtype([(f"a{i}", array.dtype, array.shape[1:]) for i, array in enumerate(arrays)])


class SampleFileWriter:
    """Appends samples to an unlinked file in `directory` (default: `local_directory()`).

    Every append must give arrays of the same dtypes and per-sample shapes as the first one.
    """

    def __init__(self, directory: str | None = None):
        handle, path = tempfile.mkstemp(prefix="zoo-samples-", suffix=".bin", dir=directory or local_directory())
        os.unlink(path)
        self._fd = handle
        self._record: np.dtype | None = None
        self._count = 0

    def append(self, arrays: list[np.ndarray]) -> None:
        """Write one batch: `arrays` are the model inputs and the target, each with the sample axis first."""
        count = len(arrays[0])
        if any(len(a) != count for a in arrays):
            raise ZooValueError(f"Expected the preprocessing to give one row per sample in every model input and the "
                                f"target. Received lengths {[len(a) for a in arrays]}.")
        if any(a.dtype == object for a in arrays):
            raise ZooValueError("Expected numeric samples of one shape for cachingSample='DISK'. Received a model "
                                "input or target the preprocessing left as Python objects (rows of different "
                                "lengths?). Pad or cut the rows to one length in the preprocessing.")
        record = _record_type(arrays)
        if self._record is None:
            self._record = record
        elif record != self._record:
            raise ZooValueError(
                f"Expected every sample to have one shape and dtype per model input and target with "
                f"cachingSample='DISK'. Received {self._describe(record)} after {self._describe(self._record)}. "
                f"Make the preprocessing give every row the same shape (pad or cut it), or use "
                f"cachingSample='MEMORY'.")
        if not count:
            return
        records = np.empty(count, record)
        for i, array in enumerate(arrays):
            records[f"a{i}"] = array
        view = memoryview(records.view(np.uint8))
        while view:
            view = view[os.write(self._fd, view):]
        self._count += count

    @staticmethod
    def _describe(record: np.dtype) -> str:
        return ", ".join(f"{record[name].base}{record[name].shape}" for name in record.names)

    def finish(self) -> "SampleFile":
        """The samples written, for reading; the writer must not be used afterwards."""
        return SampleFile(self._fd, self._record, self._count)

    def close(self) -> None:
        """Drop the file without reading it."""
        os.close(self._fd)


class SampleFile:
    """Samples in an (unlinked) file of fixed-size records: `len()` and `read(positions)`."""

    def __init__(self, fd: int, record: np.dtype | None, count: int):
        self._fd = fd
        self.record = record
        self.count = count

    def __len__(self) -> int:
        return self.count

    def read(self, positions: np.ndarray) -> list[np.ndarray]:
        """The samples at `positions`, in that order, one C-contiguous array per model input and target."""
        positions = np.asarray(positions, dtype=np.int64)
        records = np.empty(len(positions), self.record)
        buffer = memoryview(records.view(np.uint8))
        size = self.record.itemsize
        if len(positions) and positions[-1] - positions[0] == len(positions) - 1 \
                and (np.diff(positions) == 1).all():
            self._read_into(buffer, int(positions[0]) * size)
        else:
            for k, position in enumerate(positions.tolist()):
                self._read_into(buffer[k * size:(k + 1) * size], position * size)
        return [np.ascontiguousarray(records[name]) for name in self.record.names]

    def _read_into(self, buffer: memoryview, offset: int) -> None:
        while buffer:
            done = os.preadv(self._fd, [buffer], offset)
            if done == 0:
                raise EOFError(f"The sample file ended at byte {offset}; it holds {self.count} samples.")
            buffer, offset = buffer[done:], offset + done

    def close(self) -> None:
        """Close the file (it was unlinked when created: its disk space is freed now)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()


def stream_to_files(batches, parts: int, samples) -> list[SampleFile]:
    """Write the samples of each item of `batches` to one file per part, an item at a time.

    `samples(item, part)` gives the part's samples of one item (model inputs, then the target),
    or None when it has none; part 0 is the training samples, part 1 (if any) the validation
    ones. Each item is let go before the next one is read.
    """
    writers = [SampleFileWriter() for _ in range(parts)]
    try:
        for item in batches:
            for part, writer in enumerate(writers):
                arrays = samples(item, part)
                if arrays is not None:
                    writer.append(arrays)
            item = arrays = None  # the last references to this batch's memory
    except BaseException:
        for writer in writers:
            writer.close()
        raise
    return [writer.finish() for writer in writers]
