"""Spark ML Params of the nnframes stages, each declared once on a small `Has<Name>` mixin."""

from __future__ import annotations

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasLabelCol, HasPredictionCol

from zoo.engine.config import DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE, DEFAULT_SEED, samples_in_memory
from zoo.errors import ZooTypeError


def _to_column_names(value):
    """A column name or a non-empty list of them (several columns feed a multi-input model)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ZooTypeError(f"Expected a column name or a list of column names. Received: {value!r}.")


def _identity(value):
    return value


class HasFeatureColumns(HasFeaturesCol):
    """featuresCol may name one column or a list of columns (one per model input)."""

    featuresCol = Param(Params._dummy(), "featuresCol",
                        "features column name, or a list of names for a multi-input model",
                        typeConverter=_to_column_names)


class HasBatchSize(Params):
    batchSize = Param(Params._dummy(), "batchSize",
                      "global batch size for training (summed over workers), batch size for inference",
                      typeConverter=TypeConverters.toInt)

    def setBatchSize(self, value):
        """Set `batchSize`; returns self."""
        return self._set(batchSize=value)

    def getBatchSize(self) -> int:
        """The global batch size (all workers together)."""
        return self.getOrDefault(self.batchSize)


class HasMaxEpoch(Params):
    maxEpoch = Param(Params._dummy(), "maxEpoch", "number of epochs when endWhen is not set",
                     typeConverter=TypeConverters.toInt)

    def setMaxEpoch(self, value):
        """Set `maxEpoch`; returns self."""
        return self._set(maxEpoch=value)

    def getMaxEpoch(self) -> int:
        """The number of epochs to train when no `endWhen` trigger is set."""
        return self.getOrDefault(self.maxEpoch)


class HasLearningRate(Params):
    learningRate = Param(Params._dummy(), "learningRate", "learning rate given to an optimizer class",
                         typeConverter=TypeConverters.toFloat)

    def setLearningRate(self, value):
        """Set `learningRate`; returns self."""
        return self._set(learningRate=value)

    def getLearningRate(self) -> float:
        """The learning rate given to the optimizer."""
        return self.getOrDefault(self.learningRate)


class HasLearningRateDecay(Params):
    learningRateDecay = Param(Params._dummy(), "learningRateDecay",
                              "learning rate at step t is learningRate / (1 + learningRateDecay * t)",
                              typeConverter=TypeConverters.toFloat)

    def setLearningRateDecay(self, value):
        """Set `learningRateDecay` (Analytics Zoo's and BigDL SGD's decay); returns self."""
        return self._set(learningRateDecay=value)

    def getLearningRateDecay(self) -> float:
        """The decay: step t (from 0) uses learningRate / (1 + learningRateDecay * t)."""
        return self.getOrDefault(self.learningRateDecay)


class HasOptimMethod(Params):
    optimMethod = Param(Params._dummy(), "optimMethod",
                        "the model framework's optimizer (a torch.optim.Optimizer class or a callable "
                        "params -> optimizer; a Keras optimizer, its class or name), None for the "
                        "framework's SGD",
                        typeConverter=_identity)

    def setOptimMethod(self, value):
        """Set `optimMethod`; returns self."""
        return self._set(optimMethod=value)

    def getOptimMethod(self):
        """The optimizer as set (a torch.optim class or `params -> optimizer` callable, a Keras
        optimizer), or None: the model framework's default (its SGD), chosen at fit."""
        return self.getOrDefault(self.optimMethod)


class HasEndWhen(Params):
    endWhen = Param(Params._dummy(), "endWhen", "trigger that ends training (default MaxEpoch(maxEpoch))",
                    typeConverter=_identity)

    def setEndWhen(self, value):
        """Set `endWhen`; returns self."""
        return self._set(endWhen=value)

    def getEndWhen(self):
        """The trigger that ends training (None: `maxEpoch` epochs)."""
        return self.getOrDefault(self.endWhen)


class HasNumWorkers(Params):
    numWorkers = Param(Params._dummy(), "numWorkers",
                       "training workers (barrier tasks); default: the cluster's task slots",
                       typeConverter=TypeConverters.toInt)

    def setNumWorkers(self, value):
        """Set `numWorkers`; returns self."""
        return self._set(numWorkers=value)

    def getNumWorkers(self):
        """The number of barrier workers (None: every task slot)."""
        return self.getOrDefault(self.numWorkers)


class HasCachingSample(Params):
    cachingSample = Param(Params._dummy(), "cachingSample",
                          "keep training samples in memory (True or 'MEMORY') or on the executors' local disk "
                          "(False or 'DISK': a partition larger than a worker's memory trains)",
                          typeConverter=samples_in_memory)

    def setCachingSample(self, value):
        """Set `cachingSample` (True / "MEMORY", or False / "DISK"); returns self."""
        return self._set(cachingSample=value)

    def getCachingSample(self) -> bool:
        """Whether workers keep samples in memory (False: spill them to local disk)."""
        return self.getOrDefault(self.cachingSample)

    def isCachingSample(self) -> bool:
        """Same as getCachingSample (Analytics Zoo's name)."""
        return self.getCachingSample()


class HasShuffle(Params):
    shuffle = Param(Params._dummy(), "shuffle", "reshuffle each worker's samples every epoch",
                    typeConverter=TypeConverters.toBoolean)

    def setShuffle(self, value):
        """Set `shuffle`; returns self."""
        return self._set(shuffle=value)

    def getShuffle(self) -> bool:
        """Whether each epoch visits a worker's samples in a new random order."""
        return self.getOrDefault(self.shuffle)


class HasSeed(Params):
    seed = Param(Params._dummy(), "seed", "random seed for shuffling and torch", typeConverter=TypeConverters.toInt)

    def setSeed(self, value):
        """Set `seed`; returns self."""
        return self._set(seed=value)

    def getSeed(self) -> int:
        """The seed of the shuffling and of any randomness in the fit."""
        return self.getOrDefault(self.seed)


class HasGradientCompression(Params):
    gradientCompression = Param(Params._dummy(), "gradientCompression",
                                "'none' or 'bf16': gradients travel between workers as bfloat16",
                                typeConverter=TypeConverters.toString)

    def setGradientCompression(self, value):
        """Set `gradientCompression`; returns self."""
        return self._set(gradientCompression=value)

    def getGradientCompression(self) -> str:
        """How gradients travel: 'none' or 'bf16'."""
        return self.getOrDefault(self.gradientCompression)


class HasTransport(Params):
    transport = Param(Params._dummy(), "transport",
                      "'auto' (shared memory between workers on one host, gloo across hosts) or 'gloo'",
                      typeConverter=TypeConverters.toString)

    def setTransport(self, value):
        """Set `transport`; returns self."""
        return self._set(transport=value)

    def getTransport(self) -> str:
        """The gradient transport: 'auto' (shared memory on one host) or 'gloo'."""
        return self.getOrDefault(self.transport)


class HasProfile(Params):
    profile = Param(Params._dummy(), "profile",
                    "print where each worker's step time went (ms/step per phase) when the fit ends, "
                    "and write it to TensorBoard when setTensorBoard is used",
                    typeConverter=TypeConverters.toBoolean)

    def setProfile(self, value):
        """Set `profile`; returns self."""
        return self._set(profile=value)

    def getProfile(self) -> bool:
        """Whether the fit shows its step-time breakdown (see `zoo.engine.profile`)."""
        return self.getOrDefault(self.profile)


class _NNCommonParams(HasFeatureColumns, HasPredictionCol, HasBatchSize):
    """Params an estimator and its fitted model share."""

    def _set_common_defaults(self):
        self._setDefault(featuresCol="features", predictionCol="prediction", batchSize=DEFAULT_BATCH_SIZE)

    def setFeaturesCol(self, value):
        """Set `featuresCol` (a name or a list of names); returns self."""
        return self._set(featuresCol=value)

    def setPredictionCol(self, value):
        """Set `predictionCol`; returns self."""
        return self._set(predictionCol=value)

    def feature_columns(self) -> list[str]:
        """featuresCol as a list."""
        value = self.getFeaturesCol()
        return [value] if isinstance(value, str) else list(value)


class _NNEstimatorParams(_NNCommonParams, HasLabelCol, HasMaxEpoch, HasLearningRate, HasLearningRateDecay,
                         HasOptimMethod, HasEndWhen, HasNumWorkers, HasCachingSample, HasShuffle, HasSeed,
                         HasGradientCompression, HasTransport, HasProfile):
    """Params of NNEstimator and NNClassifier."""

    def setLabelCol(self, value):
        """Set `labelCol`; returns self."""
        return self._set(labelCol=value)

    def _set_estimator_defaults(self):
        self._set_common_defaults()
        self._setDefault(labelCol="label", maxEpoch=1, learningRate=DEFAULT_LEARNING_RATE, learningRateDecay=0.0,
                         optimMethod=None, endWhen=None, numWorkers=None, cachingSample=True,
                         shuffle=True, seed=DEFAULT_SEED, gradientCompression="none",
                         transport="auto", profile=False)


#: Params whose values are Python objects: persisted with cloudpickle, not in the JSON metadata.
OBJECT_PARAMS = ("optimMethod", "endWhen")
