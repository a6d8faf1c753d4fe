"""TrainSummary and ValidationSummary: Analytics Zoo's summaries on Zoo's TensorBoard events.

A fit with `setTrainSummary(TrainSummary(log_dir, app_name))` writes TensorBoard events to
``log_dir/app_name/train`` and, with validation, ``log_dir/app_name/validation`` (the layout AZ
uses, and the one `setTensorBoard(log_dir, app_name)` writes). `read_scalar(tag)` reads a tag back
as AZ's did. Train tags: "Loss" and "Throughput" at every step; validation tags: the validation
methods' names ("Loss", "Top1Accuracy", "MAE", "AUC").
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np

from zoo import storage
from zoo.errors import ZooValueError

logger = logging.getLogger(__name__)

#: Tags the training summary records, at every step.
TRAIN_TAGS = ("Loss", "Throughput")


class Summary:
    """Base: the events of one split ("train" or "validation") under `log_dir/app_name`.

    Args:
        log_dir: a directory path or URL (see `zoo.storage`).
        app_name: the folder under `log_dir` for this application's runs.
    """

    split = ""

    def __init__(self, log_dir, app_name):
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ZooValueError(f"Expected `log_dir` to be a directory path or URL. Received: {log_dir!r}.")
        if not isinstance(app_name, str) or not app_name or "/" in app_name:
            raise ZooValueError(f"Expected `app_name` to be a folder name (no '/'). Received: {app_name!r}.")
        self.log_dir = os.fspath(log_dir)
        self.app_name = app_name

    @property
    def path(self) -> str:
        """Where this summary's events are: ``log_dir/app_name/<split>``."""
        return storage.join(self.log_dir, self.app_name, self.split)

    def read_scalar(self, tag: str) -> np.ndarray:
        """Every recorded value of `tag`, as rows (step, value, wall_time), in step order.

        Raises:
            ZooValueError: nothing was recorded under `tag` (the message lists the tags there are).
        """
        if storage.is_local(self.path):
            folder = storage.local_path(self.path)
            if not os.path.isdir(folder):
                raise ZooValueError(f"No {self.split} summary at {self.path!r} yet. Fit an estimator with "
                                    f"set{type(self).__name__}({self!r}) first.")
            return self._read(folder, tag)
        with tempfile.TemporaryDirectory(prefix="zoo-summary-") as scratch:
            storage.download(self.path, scratch)
            return self._read(scratch, tag)

    def _read(self, folder: str, tag: str) -> np.ndarray:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        accumulator = EventAccumulator(folder, size_guidance={"scalars": 0})
        accumulator.Reload()
        tags = accumulator.Tags().get("scalars", [])
        if tag not in tags:
            raise ZooValueError(f"No scalar {tag!r} in the {self.split} summary at {self.path!r}. "
                                f"Recorded tags: {sorted(tags)}.")
        events = sorted(accumulator.Scalars(tag), key=lambda e: (e.step, e.wall_time))
        return np.array([(e.step, e.value, e.wall_time) for e in events], dtype=np.float64).reshape(-1, 3)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(log_dir={self.log_dir!r}, app_name={self.app_name!r})"


class TrainSummary(Summary):
    """Training statistics of a fit ("Loss" and "Throughput" at every step), for TensorBoard."""

    split = "train"

    def set_summary_trigger(self, name: str, trigger):
        """Accepted for Analytics Zoo scripts: Zoo records "Loss" and "Throughput" at every step and
        no other train tags, so a trigger changes nothing (a warning says so for other tags)."""
        if name not in TRAIN_TAGS:
            logger.warning("TrainSummary records %s at every step; %r is not recorded, so its trigger is ignored.",
                           list(TRAIN_TAGS), name)
        return self


class ValidationSummary(Summary):
    """Validation results of a fit (one tag per validation method), for TensorBoard."""

    split = "validation"
