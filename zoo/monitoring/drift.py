"""Feature drift: how far the inputs a model sees have moved from its training window.

A `FeatureReference` summarises the training window per feature: quantile bin edges (``bins``
bins of about equal mass) and the share of training values in each bin. `psi` compares new
values with it by the Population Stability Index,

    PSI = sum over bins of (observed share - reference share) * ln(observed share / reference share),

(0 for the same distribution; by the usual rule of thumb below 0.1 is stable, 0.1-0.25 a
moderate shift, above 0.25 a large one), and `ks` by the Kolmogorov-Smirnov distance between the
two cumulative distributions at the bin edges. `DriftMonitor` accumulates bin counts of what
serving sees and reports PSI since it started, in memory proportional to the bins.

A column of arrays (a 2-D ndarray, one row per sample) is split into one feature per element,
named ``col[i]``, for its first `MAX_ELEMENTS_PER_COLUMN` elements.

Example::

    reference = FeatureReference.from_columns({"features": train_x}, bins=10)
    monitor = DriftMonitor(reference)
    monitor.observe({"features": served_batch})
    monitor.report()          # {"features[0]": 0.01, "features[1]": 0.42, ...}
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from zoo.errors import ZooValueError

#: Default number of bins per feature.
DEFAULT_BINS = 10
#: Elements of an array column that get a feature each (the rest are not monitored).
MAX_ELEMENTS_PER_COLUMN = 64
#: Floor of a bin's share in PSI, so an empty bin counts as a large (not infinite) difference.
MIN_SHARE = 1e-4


def split_columns(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{feature: 1-D float array}`` from columns of scalars (1-D) or arrays (2-D and up:
    ``col[i]`` for the first `MAX_ELEMENTS_PER_COLUMN` elements of each flattened row).

    Raises:
        ZooValueError: a column is not numeric, or has no sample dimension.
    """
    features = {}
    for name, values in columns.items():
        array = np.asarray(values)
        if array.ndim == 0 or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ZooValueError(f"Expected column {name!r} to be a numeric ndarray with one row per sample. "
                                f"Received: dtype={array.dtype}, shape={array.shape}.")
        array = array.astype(np.float64, copy=False)
        if array.ndim == 1:
            features[name] = array
            continue
        flat = array.reshape(len(array), -1)
        for i in range(min(flat.shape[1], MAX_ELEMENTS_PER_COLUMN)):
            features[f"{name}[{i}]"] = flat[:, i]
    return features


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts of ``values`` (NaNs dropped) in the ``len(edges) + 1`` bins the inner ``edges``
    make: bin ``i`` holds ``edges[i-1] < v <= edges[i]``, with open ends."""
    values = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


@dataclass(frozen=True)
class FeatureBins:
    """The reference of one feature: inner bin edges (ascending) and each bin's share (sums to 1)."""

    edges: np.ndarray
    shares: np.ndarray


class FeatureReference:
    """Per-feature quantile bins and shares of a training window (see the module docstring).

    Build it with :meth:`from_columns`; store it with :meth:`to_json` / :meth:`from_json`.

    Attributes:
        features: ``{feature name: FeatureBins}``.
        bins: the number of bins asked for (a feature with many equal values has fewer).
        count: samples the reference was made from.
    """

    def __init__(self, features: dict[str, FeatureBins], bins: int, count: int):
        self.features = dict(features)
        self.bins = int(bins)
        self.count = int(count)

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray], bins: int = DEFAULT_BINS) -> "FeatureReference":
        """The reference of ``columns`` (``{name: ndarray}``, one row per sample; see `split_columns`).

        Raises:
            ZooValueError: ``bins`` < 2, no columns, columns of different lengths, or a feature
                with no finite value.
        """
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ZooValueError(f"Expected `bins` to be an int >= 2. Received: bins={bins!r}.")
        features = split_columns(columns)
        if not features:
            raise ZooValueError("Expected at least one column to make a reference from. Received none.")
        lengths = {name: len(v) for name, v in features.items()}
        if len(set(lengths.values())) != 1:
            raise ZooValueError(f"Expected all columns to have one row per sample (the same length). Received "
                                f"lengths {lengths}.")
        made = {}
        for name, values in features.items():
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                raise ZooValueError(f"Feature {name!r} has no finite value to make reference bins from.")
            # Edges are data values (no interpolation between tied values), and an edge at the
            # maximum would only add a bin no training value falls in.
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf"))
            edges = edges[edges < finite.max()]
            counts = bin_counts(edges, finite)
            made[name] = FeatureBins(edges, counts / counts.sum())
        return cls(made, bins, next(iter(lengths.values())))

    def to_json(self) -> str:
        """The reference as a JSON text (edges and shares as lists of floats)."""
        return json.dumps({"bins": self.bins, "count": self.count, "features": {
            name: {"edges": f.edges.tolist(), "shares": f.shares.tolist()} for name, f in self.features.items()}})

    @classmethod
    def from_json(cls, text: str) -> "FeatureReference":
        """The reference :meth:`to_json` wrote."""
        data = json.loads(text)
        features = {name: FeatureBins(np.asarray(f["edges"], np.float64), np.asarray(f["shares"], np.float64))
                    for name, f in data["features"].items()}
        return cls(features, data["bins"], data["count"])

    def counts_of(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Bin counts per reference feature of ``columns`` (split as for :meth:`from_columns`).

        Raises:
            ZooValueError: a feature is not in the reference (the message lists those that are).
        """
        features = split_columns(columns)
        unknown = sorted(set(features) - set(self.features))
        if unknown:
            raise ZooValueError(f"Features {unknown} are not in the reference, which has {sorted(self.features)}. "
                                f"Pass the columns the reference was made from, with the same widths.")
        return {name: bin_counts(self.features[name].edges, values) for name, values in features.items()}

    def __repr__(self) -> str:
        return f"FeatureReference({len(self.features)} features, bins={self.bins}, count={self.count})"


def _psi(expected: np.ndarray, counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    observed = np.maximum(counts / total, MIN_SHARE)
    expected = np.maximum(expected, MIN_SHARE)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def _ks(expected: np.ndarray, counts: np.ndarray) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    return float(np.max(np.abs(np.cumsum(counts / total) - np.cumsum(expected))))


def psi(reference: FeatureReference, columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """PSI per feature of ``columns`` against ``reference`` (NaN for a feature with no values)."""
    return {name: _psi(reference.features[name].shares, c) for name, c in reference.counts_of(columns).items()}


def ks(reference: FeatureReference, columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Kolmogorov-Smirnov distance per feature, between the cumulative shares of ``columns`` and
    of ``reference`` at the reference's bin edges (0 to 1; NaN for a feature with no values)."""
    return {name: _ks(reference.features[name].shares, c) for name, c in reference.counts_of(columns).items()}


class DriftMonitor:
    """Accumulates the bin counts of observed inputs and reports their drift from ``reference``.

    Thread-safe: serving threads may ``observe`` while another reads ``report``.

    Args:
        reference: the FeatureReference of the model's training window.
    """

    def __init__(self, reference: FeatureReference):
        self.reference = reference
        self._counts = {name: np.zeros(len(f.shares), np.int64) for name, f in reference.features.items()}
        self._lock = threading.Lock()

    def observe(self, columns: Mapping[str, np.ndarray]) -> None:
        """Add a batch of inputs (``{name: ndarray}``, as given to ``FeatureReference.from_columns``)."""
        counts = self.reference.counts_of(columns)
        with self._lock:
            for name, c in counts.items():
                self._counts[name] += c

    @property
    def count(self) -> int:
        """Samples observed so far (of the feature seen most)."""
        with self._lock:
            return int(max((c.sum() for c in self._counts.values()), default=0))

    def report(self) -> dict[str, float]:
        """PSI per feature of everything observed since the start (NaN for a feature not seen yet)."""
        with self._lock:
            counts = {name: c.copy() for name, c in self._counts.items()}
        return {name: _psi(self.reference.features[name].shares, c) for name, c in counts.items()}

    def ks_report(self) -> dict[str, float]:
        """The KS distance per feature of everything observed since the start."""
        with self._lock:
            counts = {name: c.copy() for name, c in self._counts.items()}
        return {name: _ks(self.reference.features[name].shares, c) for name, c in counts.items()}

    def reset(self) -> None:
        """Forget what was observed (e.g. when a new version starts serving)."""
        with self._lock:
            for c in self._counts.values():
                c[:] = 0
