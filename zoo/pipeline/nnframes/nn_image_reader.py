"""Analytics Zoo's `zoo.pipeline.nnframes.nn_image_reader`: `zoo.nnframes.NNImageReader`."""

from zoo.nnframes import NNImageReader

__all__ = ["NNImageReader"]
