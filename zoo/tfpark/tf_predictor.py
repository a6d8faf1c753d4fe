"""TFPredictor: distributed inference of a Keras model over a TFDataset, as an RDD."""

from __future__ import annotations

import numpy as np

from zoo.engine.adapters import check_framework
from zoo.errors import ZooTypeError
from zoo.tfpark import training
from zoo.tfpark.tf_dataset import TFDataset


class TFPredictor:
    """Runs a keras.Model over every sample of a TFDataset on the executors.

    Args:
        model: the keras.Model.
        dataset: the TFDataset (its batch_per_thread is the batch of each task).
    """

    def __init__(self, model, dataset: TFDataset):
        if not isinstance(dataset, TFDataset):
            raise ZooTypeError(f"Expected `dataset` to be a zoo.tfpark.TFDataset. Received: {type(dataset).__name__}.")
        self.model = check_framework(model, "keras")
        self.dataset = dataset

    @classmethod
    def from_keras(cls, keras_model, dataset: TFDataset) -> "TFPredictor":
        """A predictor for a keras.Model (compiled or not)."""
        return cls(keras_model, dataset)

    def predict(self):
        """An RDD with one numpy array (the model's output for one sample) per sample, in the
        dataset's order."""
        source = self.dataset.source
        shape = training.output_shape(self.model, source)
        frame = training.predict_frame(self.model, source, self.dataset.inference_batch_size())
        return frame.select("prediction").rdd.map(lambda row: np.asarray(row[0], dtype=np.float32).reshape(shape))
