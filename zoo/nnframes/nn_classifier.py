"""NNClassifier and NNClassifierModel: class-index labels, a double prediction, probabilities."""

from __future__ import annotations

import numpy as np
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasProbabilityCol, HasThreshold

from zoo.engine.adapters import LOG_PROBABILITIES, LOGITS, PROBABILITIES, adapter_for
from zoo.nnframes import input_checks
from zoo.nnframes.nn_estimator import NNEstimator, NNModel
from zoo.nnframes.preprocessing import LabelToIndex


class _NNClassifierParams(Params):
    """Params NNClassifier and NNClassifierModel share."""

    zeroBasedLabel = Param(Params._dummy(), "zeroBasedLabel",
                           "labels are 0-based class indices (False: 1-based, as in Analytics Zoo)",
                           typeConverter=TypeConverters.toBoolean)

    def setZeroBasedLabel(self, value):
        """Set `zeroBasedLabel`; returns self."""
        return self._set(zeroBasedLabel=value)

    def getZeroBasedLabel(self) -> bool:
        """Whether class labels start at 0 (False: 1-based, as in Analytics Zoo)."""
        return self.getOrDefault(self.zeroBasedLabel)

    def setProbabilityCol(self, value):
        """Set `probabilityCol`; returns self."""
        return self._set(probabilityCol=value)

    def setThreshold(self, value):
        """Set `threshold` (single-output models predict class 1 when p > threshold); returns self."""
        return self._set(threshold=value)

    def _label_base(self) -> int:
        return 0 if self.getZeroBasedLabel() else 1


class NNClassifier(NNEstimator, _NNClassifierParams, HasProbabilityCol, HasThreshold):
    """An NNEstimator for classification: labels are class indices, fit returns NNClassifierModel.

    Labels are 0-based by default; set zeroBasedLabel=False for Analytics Zoo's 1-based labels.
    Arguments as NNEstimator's, by position or keyword: `NNClassifier(model, criterion, [2])`.
    Train with CrossEntropyLoss (logits), NLLLoss (log-probabilities), or a single-output model
    with BCELoss / BCEWithLogitsLoss (then labels are 0/1 and `threshold` decides the class).
    """

    def __init__(self, model=None, criterion=None, feature_preprocessing=None, label_preprocessing=None,
                 **params):
        super().__init__(model=model, criterion=criterion, feature_preprocessing=feature_preprocessing,
                         label_preprocessing=label_preprocessing)
        self._setDefault(zeroBasedLabel=True, probabilityCol="probability", threshold=0.5)
        self._set(**params)

    def _label_preprocessing(self, label_kind):
        if self.label_preprocessing is not None:
            return super()._label_preprocessing(label_kind)
        return BinaryOrIndexLabel(self._label_base(), adapter_for(self.model).wants_float_targets(self.criterion))

    def _check_labels(self, summary, output):
        num_outputs = int(np.prod(output.shape[1:])) if output.ndim > 1 else 1
        input_checks.check_class_labels(summary, self.getLabelCol(), num_outputs, self._label_base())

    def _create_model(self, trained, feature_steps, output):
        model = NNClassifierModel(model=trained, feature_preprocessing=feature_steps)
        model.output_kind = adapter_for(self.model).output_kind(self.criterion)
        return self._copyValues(model)


class BinaryOrIndexLabel(LabelToIndex):
    """Class labels for the criterion: int64 indices, or float 0/1 of shape [1] for BCE losses."""

    def __init__(self, base: int, float_targets: bool):
        super().__init__(base)
        self.float_targets = float_targets

    def transform(self, values):
        indices = super().transform(values)
        return indices.astype(np.float32).reshape(-1, 1) if self.float_targets else indices


class ClassPrediction:
    """Postprocessing of NNClassifierModel: a double class label and a probability vector."""

    def __init__(self, prediction_col, probability_col, output_kind, threshold, base):
        self.prediction_col = prediction_col
        self.probability_col = probability_col
        self.output_kind = output_kind
        self.threshold = threshold
        self.base = base

    def __call__(self, outputs):
        scores = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
        if scores.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0])) if self.output_kind == LOGITS else scores[:, 0]
            probability = np.stack([1.0 - positive, positive], axis=1)
            predicted = (positive > self.threshold).astype(np.float64)
        else:
            if self.output_kind == LOGITS:
                shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
                probability = shifted / shifted.sum(axis=1, keepdims=True)
            elif self.output_kind == LOG_PROBABILITIES:
                probability = np.exp(scores)
            else:
                probability = scores
            predicted = probability.argmax(axis=1).astype(np.float64)
        return {self.prediction_col: predicted + self.base, self.probability_col: probability}


class NNClassifierModel(NNModel, _NNClassifierParams, HasProbabilityCol, HasThreshold):
    """A fitted classifier: a double `prediction` (class label) and a `probability` ML Vector.

    Arguments as NNModel's, by position or keyword: `NNClassifierModel(model)`.

    Attributes:
        output_kind: how the raw output is read: "logits", "log_probabilities" or "probabilities".
    """

    def __init__(self, model=None, feature_preprocessing=None, **params):
        super().__init__(model=model, feature_preprocessing=feature_preprocessing)
        self._setDefault(zeroBasedLabel=True, probabilityCol="probability", threshold=0.5)
        self.output_kind = PROBABILITIES
        self._set(**params)

    def _postprocess(self):
        return ClassPrediction(self.getPredictionCol(), self.getProbabilityCol(), self.output_kind,
                               self.getThreshold(), self._label_base())

    def _output_schema(self):
        return f"`{self.getPredictionCol()}` double, `{self.getProbabilityCol()}` array<double>"

    def _finish(self, df):
        from pyspark.ml.functions import array_to_vector

        return df.withColumn(self.getProbabilityCol(), array_to_vector(df[self.getProbabilityCol()]))
