"""Analytics Zoo's nnframes image transfer-learning example (examples/nnframes/imageTransferLearning/
ImageTransferLearningExample.py), run as written with the models changed to torch:

- the pre-trained BigDL Inception-v1 (`Model.loadModel(model_path)`, 1000 outputs) is a fixed,
  seeded convolutional feature extractor with 1000 outputs (no pre-trained weights are
  downloaded here); AZ's `Sequential().add(Linear(1000, 2)).add(LogSoftMax())` with
  ClassNLLCriterion is the same in torch.nn, and BigDL's Adam() is torch.optim.Adam;
- the labels stay AZ's 1.0 (cat) / 2.0 (dog), so the classifier says setZeroBasedLabel(False)
  (Zoo's labels are 0-based by default; docs/migrating-from-analytics-zoo.md says why);
- the Dogs vs. Cats photos are generated: "cat" images red-dominant, "dog" images blue-dominant;
  randomSplit gets a seed so the run is reproducible.

The example's own check is kept: the test error is under 10%.
"""

import os

import numpy as np
import pytest
import torch
from pyspark import SparkConf
from pyspark.ml import Pipeline
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.sql.functions import col, udf
from pyspark.sql.types import DoubleType, StringType

from zoo.common.nncontext import *  # noqa: F403 - as the example imports it
from zoo.feature.image import *  # noqa: F403
from zoo.pipeline.nnframes import *  # noqa: F403

Image = pytest.importorskip("PIL.Image", reason="the image example needs Pillow: pip install pillow")


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    """Stand-in for the Dogs vs. Cats samples folder: cat.N.jpg and dog.N.jpg photos of varied sizes."""
    folder = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(7)
    for i in range(40):
        for animal, channel in (("cat", 0), ("dog", 2)):
            h, w = rng.integers(280, 360, size=2)
            rgb = rng.integers(0, 120, size=(h, w, 3))
            rgb[:, :, channel] += 120
            Image.fromarray(rgb.astype(np.uint8)).save(folder / f"{animal}.7{i:03d}.jpg")
    return str(folder)


def pretrained_model():
    """Stands in for the pre-trained Inception-v1: images 3x224x224 -> 1000 features, fixed weights."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 7, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
                               torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 1000))


@pytest.mark.slow
def test_image_transfer_learning_example(spark, image_path):
    sparkConf = SparkConf().setAppName("ImageTransferLearningExample")
    sc = init_nncontext(sparkConf)

    imageDF = NNImageReader.readImages(image_path, sc, resizeH=300, resizeW=300, image_codec=1)

    getName = udf(lambda row: os.path.basename(row[0]), StringType())
    getLabel = udf(lambda name: 1.0 if name.startswith('cat') else 2.0, DoubleType())
    labelDF = imageDF.withColumn("name", getName(col("image"))) \
        .withColumn("label", getLabel(col('name')))
    (trainingDF, validationDF) = labelDF.randomSplit([0.9, 0.1], seed=3)

    # compose a pipeline that includes feature transform, pretrained model and Logistic Regression
    transformer = ChainedPreprocessing(
        [RowToImageFeature(), ImageResize(256, 256), ImageCenterCrop(224, 224),
         ImageChannelNormalize(123.0, 117.0, 104.0), ImageMatToTensor(), ImageFeatureToTensor()])

    preTrainedNNModel = NNModel(pretrained_model(), transformer) \
        .setFeaturesCol("image") \
        .setPredictionCol("embedding")

    lrModel = torch.nn.Sequential(torch.nn.Linear(1000, 2), torch.nn.LogSoftmax(dim=1))
    classifier = NNClassifier(lrModel, torch.nn.NLLLoss(), SeqToTensor([1000])) \
        .setLearningRate(0.002) \
        .setOptimMethod(torch.optim.Adam) \
        .setBatchSize(40) \
        .setMaxEpoch(20) \
        .setFeaturesCol("embedding") \
        .setCachingSample(False) \
        .setZeroBasedLabel(False)

    pipeline = Pipeline(stages=[preTrainedNNModel, classifier])

    catdogModel = pipeline.fit(trainingDF)
    predictionDF = catdogModel.transform(validationDF).cache()
    predictionDF.sample(False, 0.1).show()

    evaluator = MulticlassClassificationEvaluator(
        labelCol="label", predictionCol="prediction", metricName="accuracy")
    accuracy = evaluator.evaluate(predictionDF)
    # expected error should be less than 10%
    print("Test Error = %g " % (1.0 - accuracy))
    assert validationDF.count() >= 5
    assert 1.0 - accuracy < 0.1
