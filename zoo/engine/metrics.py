"""Validation metrics as mergeable sufficient statistics.

Each worker accumulates statistics over its share of the validation data; statistics from all
workers are merged before the metric is computed, so results are exact (never an average of
per-worker averages). Metrics see numpy arrays only, so they are framework-neutral.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError


class ValidationMethod(ABC):
    """Base class. Subclasses define `empty`, `update`, `merge` and `result` on plain statistics."""

    name = "metric"

    def empty(self):
        """Statistics of no samples."""
        return (0.0, 0)

    @abstractmethod
    def update(self, stats, output: np.ndarray, target: np.ndarray, loss_sum: float):
        """Return `stats` extended by one batch (`loss_sum` is the criterion summed over it)."""

    def merge(self, a, b):
        """Combine the statistics of two disjoint sets of samples."""
        return (a[0] + b[0], a[1] + b[1])

    def result(self, stats) -> float:
        """The metric's value from merged statistics (NaN for no samples)."""
        total, count = stats
        return float(total / count) if count else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Loss(ValidationMethod):
    """Mean of the training criterion over all validation samples."""

    name = "Loss"

    def update(self, stats, output, target, loss_sum):
        return (stats[0] + float(loss_sum), stats[1] + len(output))


def _class_predictions(output: np.ndarray, threshold: float) -> np.ndarray:
    output = output.reshape(len(output), -1)
    if output.shape[1] == 1:
        return (output[:, 0] > threshold).astype(np.int64)
    return output.argmax(axis=1)


class Top1Accuracy(ValidationMethod):
    """Share of samples whose top-scoring class equals the (0-based) label.

    For single-output models the class is ``output > threshold``: keep the default 0.5 for
    probabilities (a Sigmoid output) and use 0.0 for logits.
    """

    name = "Top1Accuracy"

    def __init__(self, threshold: float = 0.5):
        self.threshold = float(threshold)

    def update(self, stats, output, target, loss_sum):
        predicted = _class_predictions(output, self.threshold)
        labels = np.asarray(target).reshape(len(predicted), -1)[:, 0].astype(np.int64)
        return (stats[0] + int((predicted == labels).sum()), stats[1] + len(labels))


class MAE(ValidationMethod):
    """Mean absolute error over every output element."""

    name = "MAE"

    def update(self, stats, output, target, loss_sum):
        output = output.reshape(len(output), -1).astype(np.float64)
        target = np.asarray(target, dtype=np.float64).reshape(output.shape)
        return (stats[0] + float(np.abs(output - target).sum()), stats[1] + output.size)


class AUC(ValidationMethod):
    """Exact area under the ROC curve for binary labels.

    The statistics are, for each distinct score, how many positive and negative samples got it;
    merging adds those counts, so the AUC of the merged set is exact (ties count one half).
    The score is the single output, or the second column of a two-column output.
    """

    name = "AUC"

    def empty(self):
        return (np.empty(0), np.empty(0), np.empty(0))

    def update(self, stats, output, target, loss_sum):
        output = output.reshape(len(output), -1)
        if output.shape[1] > 2:
            raise ZooValueError(
                f"AUC needs a binary model: one output (a score) or two (class scores). "
                f"Received outputs of width {output.shape[1]}. Use Top1Accuracy for multi-class models."
            )
        scores = output[:, -1].astype(np.float64)
        positive = np.asarray(target).reshape(len(scores), -1)[:, 0] > 0.5
        return self.merge(stats, (scores, positive.astype(np.float64), (~positive).astype(np.float64)))

    def merge(self, a, b):
        scores = np.concatenate([a[0], b[0]])
        unique, inverse = np.unique(scores, return_inverse=True)
        pos = np.bincount(inverse, weights=np.concatenate([a[1], b[1]]), minlength=len(unique))
        neg = np.bincount(inverse, weights=np.concatenate([a[2], b[2]]), minlength=len(unique))
        return (unique, pos, neg)

    def result(self, stats) -> float:
        _, pos, neg = stats
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos == 0 or total_neg == 0:
            return float("nan")
        # Scores ascend; a positive beats every negative with a lower score and ties half of them.
        negatives_below = np.cumsum(neg) - neg
        return float((pos * (negatives_below + 0.5 * neg)).sum() / (total_pos * total_neg))


METRICS_BY_NAME = {cls.name: cls for cls in (Loss, Top1Accuracy, MAE, AUC)}


def to_validation_methods(methods) -> list[ValidationMethod]:
    """Accept metric instances, classes or names ("Loss", "Top1Accuracy", "MAE", "AUC")."""
    if isinstance(methods, (str, ValidationMethod, type)):
        methods = [methods]
    resolved = []
    for method in methods:
        if isinstance(method, str):
            if method not in METRICS_BY_NAME:
                raise ZooValueError(
                    f"Unknown validation method {method!r}. Expected one of {sorted(METRICS_BY_NAME)}."
                )
            method = METRICS_BY_NAME[method]()
        elif isinstance(method, type) and issubclass(method, ValidationMethod):
            method = method()
        if not isinstance(method, ValidationMethod):
            raise ZooTypeError(
                f"Expected validation methods from zoo.engine (Loss(), Top1Accuracy(), MAE(), AUC()). "
                f"Received: {method!r}."
            )
        resolved.append(method)
    if not resolved:
        raise ZooValueError("Expected at least one validation method, e.g. [Loss(), Top1Accuracy()].")
    return resolved
