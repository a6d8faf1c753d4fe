"""Analytics Zoo's `zoo.feature.common`: the preprocessing classes of `zoo.nnframes`."""

from zoo.nnframes.preprocessing import (
    ArrayToTensor, ChainedPreprocessing, MLlibVectorToTensor, Preprocessing, ScalarToTensor, SeqToMultipleTensors,
    SeqToTensor, TensorToSample,
)

__all__ = ["Preprocessing", "ChainedPreprocessing", "SeqToTensor", "SeqToMultipleTensors", "ArrayToTensor",
           "ScalarToTensor", "MLlibVectorToTensor", "TensorToSample"]
