"""The distributed training engine: barrier stage, sharded gradients, triggers and metrics."""

from zoo.engine.metrics import AUC, MAE, Loss, Top1Accuracy, ValidationMethod
from zoo.engine.triggers import EveryEpoch, MaxEpoch, MaxIteration, MinLoss, SeveralIteration, Trigger

__all__ = ["EveryEpoch", "SeveralIteration", "MaxEpoch", "MaxIteration", "MinLoss", "Trigger",
           "Loss", "Top1Accuracy", "MAE", "AUC", "ValidationMethod"]
