"""Monitoring of served models: `drift` compares serving inputs with the training window."""

from zoo.monitoring.drift import DriftMonitor, FeatureReference, ks, psi

__all__ = ["FeatureReference", "DriftMonitor", "psi", "ks"]
