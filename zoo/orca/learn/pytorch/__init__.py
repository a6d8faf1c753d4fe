"""Orca's PyTorch Estimator (`Estimator.from_torch`) on Zoo's engine."""

from zoo.orca.learn.pytorch.estimator import Estimator

__all__ = ["Estimator"]
