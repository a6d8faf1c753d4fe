"""Analytics Zoo Orca's API on Zoo: `init_orca_context`, and Estimators in `zoo.orca.learn`
(`zoo.orca.learn.pytorch.Estimator.from_torch`, `zoo.orca.learn.tf2.Estimator.from_keras`) that
train through nnframes on Zoo's engine."""

from zoo.orca.context import init_orca_context, stop_orca_context

__all__ = ["init_orca_context", "stop_orca_context"]
