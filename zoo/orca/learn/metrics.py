"""Orca's metric names for the engine's exact, mergeable metrics (`zoo.engine.metrics`)."""

from zoo.engine.metrics import AUC, MAE, Loss, Top1Accuracy

#: Orca's ``Accuracy``: the share of samples whose top class equals the 0-based label.
Accuracy = Top1Accuracy

__all__ = ["Accuracy", "Top1Accuracy", "MAE", "AUC", "Loss"]
