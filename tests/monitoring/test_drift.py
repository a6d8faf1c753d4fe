"""zoo.monitoring.drift: quantile bins, PSI and KS against a reference, the DriftMonitor."""

import math

import numpy as np
import pytest

from zoo.errors import ZooValueError
from zoo.monitoring.drift import MAX_ELEMENTS_PER_COLUMN, MIN_SHARE, DriftMonitor, FeatureReference, ks, psi


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_bins_hold_equal_shares_of_the_training_window(rng):
    values = rng.uniform(0, 1, 20000)
    bins = FeatureReference.from_columns({"x": values}, bins=10).features["x"]
    assert bins.edges == pytest.approx(np.linspace(0.1, 0.9, 9), abs=0.02)
    assert bins.shares == pytest.approx(np.full(10, 0.1), abs=0.005)
    assert bins.shares.sum() == pytest.approx(1.0)
    # Skewed values too: bins of equal mass, not of equal width.
    skewed = FeatureReference.from_columns({"x": rng.lognormal(0, 1.5, 20000)}, bins=10).features["x"]
    assert skewed.shares == pytest.approx(np.full(10, 0.1), abs=0.005)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shifted_one(rng):
    reference = FeatureReference.from_columns({"x": rng.normal(0, 1, 10000)})
    same = psi(reference, {"x": rng.normal(0, 1, 10000)})["x"]
    shifted = psi(reference, {"x": rng.normal(1, 1, 10000)})["x"]
    assert same < 0.02
    assert shifted > 0.25
    assert ks(reference, {"x": rng.normal(0, 1, 10000)})["x"] < 0.03
    assert ks(reference, {"x": rng.normal(1, 1, 10000)})["x"] > 0.3


def test_psi_follows_its_formula_on_known_bins():
    # 0..99 in 4 bins: edges at the quartiles, a quarter of the values in each bin.
    reference = FeatureReference.from_columns({"x": np.arange(100.0)}, bins=4)
    assert reference.features["x"].shares.tolist() == [0.25] * 4
    # All new values in the first bin, one share of 1 against 0.25 and three empty bins.
    expected = (1 - 0.25) * math.log(1 / 0.25) + 3 * (MIN_SHARE - 0.25) * math.log(MIN_SHARE / 0.25)
    assert psi(reference, {"x": np.arange(20.0)})["x"] == pytest.approx(expected)
    # Half in the last bin, half in the first: KS is the largest gap of the cumulative shares.
    observed = np.concatenate([np.zeros(50), np.full(50, 99.0)])
    assert ks(reference, {"x": observed})["x"] == pytest.approx(0.25)


def test_the_training_window_itself_has_zero_drift_even_with_ties_on_the_edges():
    values = np.repeat([0.0, 1.0, 2.0], [500, 300, 200])
    reference = FeatureReference.from_columns({"x": values}, bins=10)
    assert len(reference.features["x"].shares) == 3  # duplicate quantiles collapse
    assert psi(reference, {"x": values})["x"] == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, {"x": np.repeat([0.0, 2.0], [200, 800])})["x"] > 0.25


def test_array_columns_are_split_per_element(rng):
    wide = rng.normal(size=(500, MAX_ELEMENTS_PER_COLUMN + 6))
    reference = FeatureReference.from_columns({"features": rng.normal(size=(500, 3)), "wide": wide})
    assert [n for n in reference.features if n.startswith("features")] == ["features[0]", "features[1]", "features[2]"]
    assert sum(n.startswith("wide[") for n in reference.features) == MAX_ELEMENTS_PER_COLUMN
    shifted = rng.normal(size=(500, 3))
    shifted[:, 1] += 3
    report = psi(reference, {"features": shifted})
    assert set(report) == {"features[0]", "features[1]", "features[2]"}
    assert report["features[1]"] > 1 and report["features[0]"] < 0.1


def test_json_round_trip_keeps_the_reference(rng):
    reference = FeatureReference.from_columns({"x": rng.normal(size=1000), "f": rng.normal(size=(1000, 2))}, bins=8)
    again = FeatureReference.from_json(reference.to_json())
    assert again.bins == 8 and again.count == 1000 and set(again.features) == set(reference.features)
    batch = {"x": rng.normal(0.5, 1, 300), "f": rng.normal(size=(300, 2))}
    assert psi(again, batch) == psi(reference, batch)


def test_monitor_reports_psi_of_everything_observed(rng):
    reference = FeatureReference.from_columns({"x": rng.normal(size=5000)})
    monitor = DriftMonitor(reference)
    assert math.isnan(monitor.report()["x"])
    batches = [rng.normal(0.8, 1, 400) for _ in range(5)]
    for batch in batches:
        monitor.observe({"x": batch})
    assert monitor.count == 2000
    assert monitor.report()["x"] == pytest.approx(psi(reference, {"x": np.concatenate(batches)})["x"])
    assert monitor.ks_report()["x"] == pytest.approx(ks(reference, {"x": np.concatenate(batches)})["x"])
    monitor.reset()
    assert monitor.count == 0


def test_unknown_features_and_bad_input_are_named():
    reference = FeatureReference.from_columns({"x": np.arange(10.0)})
    with pytest.raises(ZooValueError, match=r"\['y'\] are not in the reference, which has \['x'\]"):
        psi(reference, {"y": np.arange(3.0)})
    with pytest.raises(ZooValueError, match="bins"):
        FeatureReference.from_columns({"x": np.arange(10.0)}, bins=1)
    with pytest.raises(ZooValueError, match="same length"):
        FeatureReference.from_columns({"x": np.arange(10.0), "y": np.arange(3.0)})
    with pytest.raises(ZooValueError, match="numeric"):
        FeatureReference.from_columns({"x": np.array(["a", "b"])})
