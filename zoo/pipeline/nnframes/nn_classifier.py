"""Analytics Zoo's `zoo.pipeline.nnframes.nn_classifier`: the estimators of `zoo.nnframes`."""

from zoo.nnframes import NNClassifier, NNClassifierModel, NNEstimator, NNModel

__all__ = ["NNEstimator", "NNModel", "NNClassifier", "NNClassifierModel"]
