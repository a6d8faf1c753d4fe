"""Analytics Zoo's getters and setters of NNEstimator/NNClassifier that Zoo spells differently.

Each is a thin form of a Zoo option (see docs/migrating-from-analytics-zoo.md), kept apart from
the estimator so its own module stays about training.
"""

from __future__ import annotations

from zoo.errors import ZooTypeError, ZooValueError, check_positive_int
from zoo.nnframes.summary import Summary, TrainSummary, ValidationSummary

#: AZ's data cache levels: "DRAM" keeps samples in memory, "DISK_AND_DRAM" keeps them on local
#: disk and pages in what a step needs (Zoo streams the samples into a file and reads each step's batch).
DATA_CACHE_LEVELS = {"DRAM": True, "DISK_AND_DRAM": False}


class _AZEstimatorMethods:
    """Mixin of NNEstimator: AZ's validation, checkpoint, summary and cache-level accessors."""

    def getValidation(self):
        """[trigger, DataFrame, methods, batch_size] as set by setValidation, or None."""
        v = self.validation
        return None if v is None else [v.trigger, v.data, v.methods, v.batch_size]

    def getCheckpoint(self):
        """(path, trigger, isOverWrite) as set by setCheckpoint, or None."""
        c = self.checkpoint
        return None if c is None else (c.path, c.trigger, c.overwrite)

    def _set_summary(self, summary, kind: type, other: Summary | None) -> None:
        if not isinstance(summary, kind):
            raise ZooTypeError(f"Expected a zoo.nnframes.{kind.__name__}(log_dir, app_name). "
                               f"Received: {summary!r} of type {type(summary).__name__}.")
        if other is not None and (other.log_dir, other.app_name) != (summary.log_dir, summary.app_name):
            raise ZooValueError(
                f"Zoo writes the train and validation summaries of a fit under one log_dir/app_name. Received "
                f"{summary!r} but {other!r} is set. Give both the same log_dir and app_name."
            )
        self.setTensorBoard(summary.log_dir, summary.app_name)

    def setTrainSummary(self, summary):
        """Record training statistics for TensorBoard in ``log_dir/app_name/train``; read them
        back with `summary.read_scalar("Loss")`."""
        self._set_summary(summary, TrainSummary, self.validation_summary)
        self.train_summary = summary
        return self

    def getTrainSummary(self):
        """The TrainSummary given to setTrainSummary, or None."""
        return self.train_summary

    def setValidationSummary(self, summary):
        """Record validation results for TensorBoard in ``log_dir/app_name/validation``; read
        them back with `summary.read_scalar("Top1Accuracy")` (a validation method's name)."""
        self._set_summary(summary, ValidationSummary, self.train_summary)
        self.validation_summary = summary
        return self

    def getValidationSummary(self):
        """The ValidationSummary given to setValidationSummary, or None."""
        return self.validation_summary

    def setDataCacheLevel(self, level, numSlice=None):
        """Where workers keep training samples: "DRAM" (memory) or "DISK_AND_DRAM" (local disk,
        streamed there batch by batch, so only what a step reads is in memory; `numSlice` is accepted and has no
        further effect). Same as setCachingSample(True / False)."""
        if level not in DATA_CACHE_LEVELS:
            raise ZooValueError(f"Expected a data cache level in {list(DATA_CACHE_LEVELS)}. Received: {level!r}. "
                                f"(Zoo has no PMEM level; use DISK_AND_DRAM to keep samples out of memory.)")
        check_positive_int("numSlice", numSlice, allow_none=True)
        self.setCachingSample(DATA_CACHE_LEVELS[level])
        self.data_cache_slices = numSlice
        return self

    def getDataCacheLevel(self):
        """"DRAM" or "DISK_AND_DRAM" (as cachingSample says), or (level, numSlice) when a numSlice
        was given."""
        level = "DRAM" if self.getCachingSample() else "DISK_AND_DRAM"
        return level if self.data_cache_slices is None else (level, self.data_cache_slices)
