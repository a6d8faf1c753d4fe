"""TFPark on TensorFlow 2 / Keras 3: TFDataset, TFOptimizer, KerasModel and TFPredictor.

Keras models train on the same engine as PyTorch ones (zoo.engine, through the Keras adapter).
Importing this package imports neither TensorFlow nor Keras; they load when first needed.
"""

from zoo.tfpark.keras_model import KerasModel
from zoo.tfpark.tf_dataset import TFDataset
from zoo.tfpark.tf_optimizer import TFOptimizer
from zoo.tfpark.tf_predictor import TFPredictor

__all__ = ["TFDataset", "TFOptimizer", "KerasModel", "TFPredictor"]
