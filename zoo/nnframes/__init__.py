"""Spark ML stages that train and apply deep learning models on DataFrames."""

from zoo.nnframes.image import NNImageReader
from zoo.nnframes.image_preprocessing import (
    ImageCenterCrop, ImageChannelNormalize, ImageFeatureToTensor, ImageMatToTensor, ImagePreprocessing, ImageResize,
    ImageToTensor, RowToImageFeature,
)
from zoo.nnframes.nn_classifier import NNClassifier, NNClassifierModel
from zoo.nnframes.nn_estimator import NNEstimator, NNModel
from zoo.nnframes.preprocessing import (
    ArrayToTensor, ChainedPreprocessing, MLlibVectorToTensor, Preprocessing, ScalarToTensor, SeqToMultipleTensors,
    SeqToTensor, TensorToSample,
)
from zoo.nnframes.summary import TrainSummary, ValidationSummary

__all__ = ["NNEstimator", "NNModel", "NNClassifier", "NNClassifierModel", "Preprocessing", "SeqToTensor",
           "SeqToMultipleTensors", "TensorToSample", "ArrayToTensor", "ScalarToTensor", "MLlibVectorToTensor",
           "ChainedPreprocessing", "TrainSummary", "ValidationSummary", "NNImageReader", "ImagePreprocessing",
           "ImageResize", "ImageCenterCrop", "ImageChannelNormalize", "ImageMatToTensor", "ImageToTensor",
           "RowToImageFeature", "ImageFeatureToTensor"]
