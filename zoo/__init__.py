"""Zoo: distributed deep learning on Spark DataFrames.

Train PyTorch (and Keras) models across Spark executors with Spark ML-style estimators, run
distributed inference over DataFrames, and serve models online. See README.md to get started.
"""

from zoo.context import init_spark

__all__ = ["init_spark"]
__version__ = "0.1.0"
