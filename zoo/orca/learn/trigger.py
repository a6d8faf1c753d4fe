"""Orca's triggers (when to checkpoint): the engine's own (`zoo.engine.triggers`)."""

from zoo.engine.triggers import EveryEpoch, MaxEpoch, MaxIteration, SeveralIteration

__all__ = ["EveryEpoch", "SeveralIteration", "MaxEpoch", "MaxIteration"]
