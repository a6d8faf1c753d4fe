"""``evaluate``: a held-out metric of a model, the predictions made by ``model.transform`` on Spark."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError


def _mse(pred: np.ndarray, label: np.ndarray) -> float:
    return float(np.mean((pred - label) ** 2))


def _mae(pred: np.ndarray, label: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - label)))


def _accuracy(pred: np.ndarray, label: np.ndarray) -> float:
    return float(np.mean(pred == label))


#: The metrics known by name; "loss" is the mean squared error.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mse": _mse, "loss": _mse, "mae": _mae, "accuracy": _accuracy}


def evaluate(model: Any, heldout_df: Any, metric: str | Callable[[np.ndarray, np.ndarray], float], *,
             label_col: str = "label") -> float:
    """``metric`` of ``model`` on ``heldout_df``: predictions from ``model.transform`` (on Spark),
    compared with ``label_col`` on the driver.

    Predictions of an NNModel (array<float>) of one element per row are compared as scalars;
    an NNClassifierModel's ``prediction`` is the class, so "accuracy" compares it with the label.
    The rows of a held-out window are collected to the driver, so keep the window small.

    Args:
        model: an NNModel / NNClassifierModel (anything with ``transform`` and ``getPredictionCol``).
        heldout_df: a DataFrame with the model's feature column(s) and ``label_col``.
        metric: ``"mse"``, ``"mae"``, ``"accuracy"``, ``"loss"`` (the mse), or a callable
            ``(predictions ndarray, labels ndarray) -> float``.
        label_col: the label column.

    Returns:
        the metric, a float.

    Raises:
        ZooValueError: an unknown metric name, a missing label column, or an empty DataFrame.
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ZooValueError(f"Expected `metric` in {sorted(METRICS)} or a callable (pred, label) -> float. "
                                f"Received: metric={metric!r}.")
        compute = METRICS[metric]
    elif callable(metric):
        compute = metric
    else:
        raise ZooTypeError(f"Expected `metric` to be a str or a callable. Received: {type(metric).__name__}.")
    if label_col not in heldout_df.columns:
        raise ZooValueError(f"Expected a label column `{label_col}` in the held-out DataFrame. Received columns "
                            f"{heldout_df.columns}. Set label_col= to the label's column.")
    prediction_col = model.getPredictionCol()
    rows = model.transform(heldout_df).select(prediction_col, label_col).toPandas()
    if rows.empty:
        raise ZooValueError("The held-out DataFrame is empty: a metric needs at least one row.")
    pred = np.stack([np.asarray(p, dtype=np.float64) for p in rows[prediction_col]])
    label = np.stack([np.asarray(v, dtype=np.float64) for v in rows[label_col]])
    if pred.ndim == 2 and pred.shape[1] == 1 and label.ndim == 1:
        pred = pred[:, 0]
    return float(compute(pred, label))
