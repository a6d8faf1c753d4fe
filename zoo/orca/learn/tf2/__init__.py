"""Orca's TF2 Estimator (`Estimator.from_keras`) on Zoo's engine."""

from zoo.orca.learn.tf2.estimator import Estimator

__all__ = ["Estimator"]
