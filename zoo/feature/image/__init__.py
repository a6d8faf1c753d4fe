"""Analytics Zoo's `zoo.feature.image`: the image preprocessing steps of `zoo.nnframes`."""

from zoo.nnframes.image_preprocessing import (
    ImageCenterCrop, ImageChannelNormalize, ImageFeatureToTensor, ImageMatToTensor, ImagePreprocessing, ImageResize,
    ImageToTensor, RowToImageFeature,
)

__all__ = ["ImagePreprocessing", "RowToImageFeature", "ImageResize", "ImageCenterCrop", "ImageChannelNormalize",
           "ImageMatToTensor", "ImageToTensor", "ImageFeatureToTensor"]
