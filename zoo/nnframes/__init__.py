"""Spark ML stages that train and apply deep learning models on DataFrames."""

from zoo.nnframes.nn_classifier import NNClassifier, NNClassifierModel
from zoo.nnframes.nn_estimator import NNEstimator, NNModel
from zoo.nnframes.preprocessing import (
    ArrayToTensor, ChainedPreprocessing, MLlibVectorToTensor, Preprocessing, ScalarToTensor, SeqToTensor,
)

__all__ = ["NNEstimator", "NNModel", "NNClassifier", "NNClassifierModel", "Preprocessing", "SeqToTensor",
           "ArrayToTensor", "ScalarToTensor", "MLlibVectorToTensor", "ChainedPreprocessing"]
