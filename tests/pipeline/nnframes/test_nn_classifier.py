"""Analytics Zoo's own nnframes tests (pyzoo/test/zoo/pipeline/nnframes/test_nn_classifier.py),
ported: the AZ import paths and call forms as AZ wrote them, only the model definitions changed
(BigDL layers and criteria -> torch.nn), the assertions kept.

What changed besides the models, and why:
- BigDL's `Linear` + `ClassNLLCriterion` read raw outputs as log-probabilities; torch's NLLLoss
  needs a LogSoftmax in the model. AZ's classifier tests that trained with MSECriterion on class
  labels use CrossEntropyLoss (torch's MSELoss does not take class indices).
- AZ's labels are 1-based; Zoo's are 0-based by default, so the classifier tests keep AZ's
  1.0 / 2.0 labels and call setZeroBasedLabel(False) (docs/migrating-from-analytics-zoo.md).
- Optimizers are torch.optim classes rather than BigDL OptimMethod instances.
- The summaries: Zoo records "Loss" every step (AZ's test read "LearningRate", which Zoo does not
  record) and validates at the end of every epoch including the last (AZ's BigDL skipped it: 4 of
  5), so those two counts are Zoo's.
- Not ported: setHandleInvalid("drop") (Zoo drops unreadable files when reading images, see
  NNImageReader's dropInvalid) and the Spark 1.x pipeline branch (run here on Spark 4).
"""

import os

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from pyspark.ml import Pipeline
from pyspark.ml.feature import MinMaxScaler
from pyspark.ml.linalg import Vectors
from pyspark.sql.functions import lit
from pyspark.sql.types import ArrayType, DoubleType, StructField, StructType

from zoo.common.nncontext import *  # noqa: F403 - as AZ's test imports it
from zoo.engine import MAE, EveryEpoch, SeveralIteration, Top1Accuracy
from zoo.feature.common import *  # noqa: F403
from zoo.feature.image import *  # noqa: F403
from zoo.pipeline.nnframes import *  # noqa: F403

Image = pytest.importorskip("PIL.Image", reason="the image tests need Pillow: pip install pillow")


def linear():
    """AZ: Sequential().add(Linear(2, 2))."""
    return torch.nn.Sequential(torch.nn.Linear(2, 2))


def log_softmax_linear():
    """AZ: Sequential().add(Linear(2, 2)) trained with ClassNLLCriterion."""
    return torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LogSoftmax(dim=1))


def cnn_model():
    """AZ's get_CNN_Model: Convolution2D(1, 5, 5) on 3x224x224, Reshape, Dense(20, softmax)."""
    return torch.nn.Sequential(torch.nn.Conv2d(3, 1, 5), torch.nn.Flatten(), torch.nn.Linear(220 * 220, 20),
                               torch.nn.LogSoftmax(dim=1))


@pytest.fixture(scope="module")
def sc(spark):
    """AZ's setup_method: init_nncontext(create_spark_conf()...) -- on the session's context."""
    context = init_nncontext(create_spark_conf().setMaster("local[2]").setAppName("testNNClassifer"))
    assert context is spark.sparkContext
    return context


ESTIMATOR_ROWS = [((2.0, 1.0), (1.0, 2.0)), ((1.0, 2.0), (2.0, 1.0)), ((2.0, 1.0), (1.0, 2.0)),
                  ((1.0, 2.0), (2.0, 1.0))]
CLASSIFIER_ROWS = [((2.0, 1.0), 1.0), ((1.0, 2.0), 2.0), ((2.0, 1.0), 1.0), ((1.0, 2.0), 2.0)]


def estimator_df(spark, rows=ESTIMATOR_ROWS, features="features", label="label"):
    schema = StructType([StructField(features, ArrayType(DoubleType(), False), False),
                         StructField(label, ArrayType(DoubleType(), False), False)])
    return spark.createDataFrame(spark.sparkContext.parallelize(rows), schema)


def classifier_df(spark, rows=CLASSIFIER_ROWS):
    schema = StructType([StructField("features", ArrayType(DoubleType(), False), False),
                         StructField("label", DoubleType(), False)])
    return spark.createDataFrame(spark.sparkContext.parallelize(rows), schema)


@pytest.fixture(scope="module")
def image_frame(sc, tmp_path_factory):
    """AZ's resources/imagenet/n02110063 stand-in: four RGB JPEGs of different sizes, label 1.0."""
    folder = tmp_path_factory.mktemp("n02110063")
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(300, 260), (240, 320), (256, 256), (280, 300)]):
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.jpg")
    return NNImageReader.readImages(str(folder), sc).withColumn("label", lit(1.0))


def image_transformer():
    return ChainedPreprocessing(
        [RowToImageFeature(), ImageResize(256, 256), ImageCenterCrop(224, 224),
         ImageChannelNormalize(123.0, 117.0, 104.0), ImageMatToTensor(), ImageFeatureToTensor()])


def test_nnEstimator_construct_with_differnt_params(spark, sc):
    linear_model = linear()
    mse_criterion = torch.nn.MSELoss()
    df = estimator_df(spark)
    for e in [NNEstimator(linear_model, mse_criterion),
              NNEstimator(linear_model, mse_criterion, [2], [2]),
              NNEstimator(linear_model, mse_criterion, SeqToTensor([2]), SeqToTensor([2]))]:
        nnModel = e.setMaxEpoch(1).fit(df)
        res = nnModel.transform(df)
        assert type(res).__name__ == 'DataFrame'
        assert [len(r.prediction) for r in res.collect()] == [2] * 4


def test_nnClassifier_construct_with_differnt_params(spark, sc):
    linear_model = linear()
    criterion = torch.nn.CrossEntropyLoss()
    df = classifier_df(spark)
    for e in [NNClassifier(linear_model, criterion),
              NNClassifier(linear_model, criterion, [2]),
              NNClassifier(linear_model, criterion, SeqToTensor([2]))]:
        nnModel = e.setZeroBasedLabel(False).setMaxEpoch(1).fit(df)
        res = nnModel.transform(df)
        assert type(res).__name__ == 'DataFrame'
        assert {r.prediction for r in res.collect()} <= {1.0, 2.0}


def test_nnModel_construct_with_differnt_params(spark, sc):
    linear_model = linear()
    df = estimator_df(spark)
    for e in [NNModel(linear_model),
              NNModel(linear_model, [2]),
              NNModel(linear_model, SeqToTensor([2]))]:
        res = e.transform(df)
        assert type(res).__name__ == 'DataFrame'
        expected = linear_model(torch.tensor([list(r.features) for r in res.collect()])).detach().numpy()
        assert_allclose([r.prediction for r in res.collect()], expected, rtol=1e-6)


def test_nnClassifierModel_construct_with_different_params(spark, sc):
    linear_model = linear()
    df = classifier_df(spark)
    for e in [NNClassifierModel(linear_model),
              NNClassifierModel(linear_model, [2]),
              NNClassifierModel(linear_model, SeqToTensor([2]))]:
        res = e.transform(df)
        assert type(res).__name__ == 'DataFrame'
        assert res.count() == 4


def test_all_set_get_methods():
    linear_model = linear()
    mse_criterion = torch.nn.MSELoss()

    estimator = NNEstimator(linear_model, mse_criterion, SeqToTensor([2]), SeqToTensor([2]))
    assert estimator.setBatchSize(30).getBatchSize() == 30
    assert estimator.setMaxEpoch(40).getMaxEpoch() == 40
    assert estimator.setLearningRate(1e-4).getLearningRate() == 1e-4
    assert estimator.setFeaturesCol("abcd").getFeaturesCol() == "abcd"
    assert estimator.setLabelCol("xyz").getLabelCol() == "xyz"
    assert estimator.setOptimMethod(torch.optim.Adam).getOptimMethod() is torch.optim.Adam

    nn_model = NNModel(linear_model, SeqToTensor([2]))
    assert nn_model.setBatchSize(20).getBatchSize() == 20

    linear_model = log_softmax_linear()
    classNLL_criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(linear_model, classNLL_criterion, SeqToTensor([2]))
    assert classifier.setBatchSize(20).getBatchSize() == 20
    assert classifier.setMaxEpoch(50).getMaxEpoch() == 50
    assert classifier.setLearningRate(1e-5).getLearningRate() == 1e-5
    assert classifier.setLearningRateDecay(1e-9).getLearningRateDecay() == 1e-9
    assert classifier.setCachingSample(False).isCachingSample() is False

    nn_classifier_model = NNClassifierModel(linear_model, SeqToTensor([2]))
    assert nn_classifier_model.setBatchSize((20)).getBatchSize() == 20


def test_nnEstimator_fit_nnmodel_transform(spark, sc):
    torch.manual_seed(0)
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion, SeqToTensor([2]), ArrayToTensor([2])) \
        .setBatchSize(4).setLearningRate(0.2).setMaxEpoch(40)

    df = estimator_df(spark)
    nnModel = estimator.fit(df)
    assert nnModel.getBatchSize() == 4

    res = nnModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    res.createOrReplaceTempView("nnModelDF")
    results = spark.table("nnModelDF")

    count = results.rdd.count()
    data = results.rdd.collect()

    for i in range(count):
        row_label = data[i][1]
        row_prediction = data[i][2]
        assert_allclose(row_label[0], row_prediction[0], atol=0, rtol=1e-1)
        assert_allclose(row_label[1], row_prediction[1], atol=0, rtol=1e-1)


def test_nnEstimator_fit_gradient_clipping(spark, sc):
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion, SeqToTensor([2]), ArrayToTensor([2])) \
        .setBatchSize(4).setLearningRate(0.2).setMaxEpoch(2) \
        .setConstantGradientClipping(0.1, 0.2)

    df = estimator_df(spark)
    estimator.fit(df)
    estimator.clearGradientClipping()
    estimator.fit(df)
    estimator.setGradientClippingByL2Norm(1.2)
    estimator.fit(df)


def test_nnEstimator_fit_with_non_default_featureCol(spark, sc):
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion, SeqToTensor([2]), SeqToTensor([2])) \
        .setBatchSize(4) \
        .setLearningRate(0.01).setMaxEpoch(1) \
        .setFeaturesCol("abcd").setLabelCol("xyz").setPredictionCol("tt")

    df = estimator_df(spark, features="abcd", label="xyz")
    nnModel = estimator.fit(df)

    res = nnModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    assert res.select("abcd", "xyz", "tt").count() == 4


def test_nnEstimator_fit_with_different_OptimMethods(spark, sc):
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion, SeqToTensor([2]), SeqToTensor([2])) \
        .setBatchSize(4) \
        .setLearningRate(0.01).setMaxEpoch(1) \
        .setPredictionCol("tt")

    df = estimator_df(spark)
    for opt in [torch.optim.SGD, torch.optim.Adam, torch.optim.LBFGS, torch.optim.Adagrad, torch.optim.Adadelta]:
        nnModel = estimator.setOptimMethod(opt).fit(df)
        res = nnModel.transform(df)
        assert type(res).__name__ == 'DataFrame'
        assert res.select("features", "label", "tt").count() == 4


def test_nnEstimator_create_with_feature_size(spark, sc):
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion, [2], [2]) \
        .setBatchSize(4).setLearningRate(0.2).setMaxEpoch(1)

    df = estimator_df(spark)
    nnModel = estimator.fit(df)
    assert nnModel.getBatchSize() == 4


def test_nnEstimator_fit_with_train_val_summary(spark, sc, tmp_path):
    model = linear()
    criterion = torch.nn.MSELoss()
    df = estimator_df(spark)
    val_df = estimator_df(spark, ESTIMATOR_ROWS[:2])

    tmp_dir = str(tmp_path)
    train_summary = TrainSummary(log_dir=tmp_dir, app_name="estTest")
    train_summary.set_summary_trigger("LearningRate", SeveralIteration(1))
    val_summary = ValidationSummary(log_dir=tmp_dir, app_name="estTest")
    estimator = NNEstimator(model, criterion, SeqToTensor([2]), SeqToTensor([2])) \
        .setBatchSize(4) \
        .setMaxEpoch(5) \
        .setTrainSummary(train_summary)
    assert (estimator.getValidation() is None)
    estimator.setValidation(EveryEpoch(), val_df, [MAE()], 2) \
        .setValidationSummary(val_summary)
    assert (estimator.getValidation() is not None)

    nnModel = estimator.fit(df)
    res = nnModel.transform(df)
    loss_result = train_summary.read_scalar("Loss")
    mae_result = val_summary.read_scalar("MAE")
    assert isinstance(estimator.getTrainSummary(), TrainSummary)
    assert type(res).__name__ == 'DataFrame'
    assert len(loss_result) == 5  # one step per epoch (4 rows, batch 4)
    assert len(mae_result) == 5
    assert_allclose(loss_result[:, 0], [1, 2, 3, 4, 5])
    assert_allclose(mae_result[:, 1], [m["metrics"]["MAE"] for m in nnModel.history if m["event"] == "validation"],
                    rtol=1e-6)


def test_NNModel_transform_with_nonDefault_featureCol(spark, sc):
    model = linear()
    nnModel = NNModel(model, SeqToTensor([2])) \
        .setFeaturesCol("abcd").setPredictionCol("dcba")

    df = estimator_df(spark, features="abcd", label="xyz")
    res = nnModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    assert res.select("abcd", "dcba").count() == 4


def test_nnModel_set_Preprocessing(spark, sc):
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion, [2], [2]) \
        .setBatchSize(4).setLearningRate(0.2).setMaxEpoch(1)

    df = estimator_df(spark)
    nnModel = estimator.fit(df)
    newTransformer = ChainedPreprocessing([SeqToTensor([2]), TensorToSample()])
    nnModel.setSamplePreprocessing(newTransformer)

    res = nnModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    assert res.count() == 4


def test_NNModel_save_load_torch_model(spark, sc, tmp_path):
    """AZ: test_NNModel_save_load_BigDL_model (the model saved with its framework's own format)."""
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion).setMaxEpoch(1).setBatchSize(4)

    df = estimator_df(spark)
    nnModel = estimator.fit(df)
    modelPath = os.path.join(str(tmp_path), "model")
    torch.save(nnModel.model, modelPath)
    loaded_model = torch.load(modelPath, weights_only=False)
    resultDF = NNModel(loaded_model).transform(df)
    assert resultDF.count() == 4


def test_NNModel_save_load(spark, sc, tmp_path):
    model = linear()
    criterion = torch.nn.MSELoss()
    estimator = NNEstimator(model, criterion).setMaxEpoch(1)

    df = estimator_df(spark)
    nnModel = estimator.fit(df)
    modelPath = os.path.join(str(tmp_path), "model")
    nnModel.save(modelPath)
    loaded_model = NNModel.load(modelPath)
    assert loaded_model.transform(df).count() == 4


def test_nnclassifier_fit_nnclassifiermodel_transform(spark, sc):
    torch.manual_seed(0)
    model = log_softmax_linear()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, SeqToTensor([2])) \
        .setBatchSize(4) \
        .setLearningRate(0.2).setMaxEpoch(40).setZeroBasedLabel(False)

    df = classifier_df(spark)
    nnClassifierModel = classifier.fit(df)
    assert (isinstance(nnClassifierModel, NNClassifierModel))
    res = nnClassifierModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    res.createOrReplaceTempView("nnClassifierModelDF")
    results = spark.table("nnClassifierModelDF")

    count = results.rdd.count()
    data = results.rdd.collect()

    for i in range(count):
        row_label = data[i][1]
        row_prediction = data[i][2]
        assert row_label == row_prediction


def test_nnclassifier_fit_with_image(image_frame):
    transformer = image_transformer()

    model = cnn_model()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, transformer) \
        .setLearningRate(0.2).setMaxEpoch(1) \
        .setFeaturesCol("image").setZeroBasedLabel(False)

    nnClassifierModel = classifier.fit(image_frame)
    assert (isinstance(nnClassifierModel, NNClassifierModel))
    res = nnClassifierModel.transform(image_frame)
    assert type(res).__name__ == 'DataFrame'
    assert res.count() == 4


def test_nnclassifierModel_set_Preprocessing(spark, sc):
    model = log_softmax_linear()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, SeqToTensor([2])) \
        .setBatchSize(4) \
        .setLearningRate(0.2).setMaxEpoch(1).setZeroBasedLabel(False)

    df = classifier_df(spark)
    nnClassifierModel = classifier.fit(df)

    newTransformer = ChainedPreprocessing([SeqToTensor([2]), TensorToSample()])
    nnClassifierModel.setSamplePreprocessing(newTransformer)

    res = nnClassifierModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    assert res.count() == 4


def test_nnclassifier_create_with_size_fit_transform(spark, sc):
    model = log_softmax_linear()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, [2]) \
        .setBatchSize(4) \
        .setLearningRate(0.2).setMaxEpoch(40).setZeroBasedLabel(False)

    df = classifier_df(spark)
    nnClassifierModel = classifier.fit(df)

    res = nnClassifierModel.transform(df)
    assert type(res).__name__ == 'DataFrame'


def test_nnclassifier_fit_different_optimMethods(spark, sc):
    model = log_softmax_linear()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, SeqToTensor([2])) \
        .setBatchSize(4) \
        .setLearningRate(0.2).setMaxEpoch(1).setZeroBasedLabel(False)

    df = classifier_df(spark)
    for opt in [torch.optim.Adam, torch.optim.SGD, torch.optim.LBFGS, torch.optim.Adagrad, torch.optim.Adadelta]:
        nnClassifierModel = classifier.setOptimMethod(opt).fit(df)
        res = nnClassifierModel.transform(df)
        res.collect()
        assert type(res).__name__ == 'DataFrame'


def test_nnClassifier_fit_with_train_val_summary(spark, sc, tmp_path):
    model = linear()
    criterion = torch.nn.CrossEntropyLoss()
    df = classifier_df(spark)
    val_df = classifier_df(spark, CLASSIFIER_ROWS[:2])

    tmp_dir = str(tmp_path)
    train_summary = TrainSummary(log_dir=tmp_dir, app_name="nnTest")
    train_summary.set_summary_trigger("LearningRate", SeveralIteration(1))
    val_summary = ValidationSummary(log_dir=tmp_dir, app_name="nnTest")

    classfier = NNClassifier(model, criterion, SeqToTensor([2])) \
        .setBatchSize(4) \
        .setTrainSummary(train_summary).setMaxEpoch(5) \
        .setValidation(EveryEpoch(), val_df, [Top1Accuracy()], 2) \
        .setValidationSummary(val_summary).setZeroBasedLabel(False)

    nnModel = classfier.fit(df)
    res = nnModel.transform(df)
    loss_result = train_summary.read_scalar("Loss")
    top1_result = val_summary.read_scalar("Top1Accuracy")

    assert isinstance(classfier.getTrainSummary(), TrainSummary)
    assert type(res).__name__ == 'DataFrame'
    assert len(loss_result) == 5
    assert len(top1_result) == 5
    assert set(top1_result[:, 1]) <= {0.0, 0.5, 1.0}  # 2 validation rows


def test_nnclassifier_in_pipeline(spark, sc):
    df = spark.createDataFrame(
        [(Vectors.dense([2.0, 1.0]), 1.0),
         (Vectors.dense([1.0, 2.0]), 2.0),
         (Vectors.dense([2.0, 1.0]), 1.0),
         (Vectors.dense([1.0, 2.0]), 2.0),
         ], ["features", "label"])

    scaler = MinMaxScaler().setInputCol("features").setOutputCol("scaled")
    model = log_softmax_linear()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, MLlibVectorToTensor([2])) \
        .setBatchSize(4) \
        .setLearningRate(0.01).setMaxEpoch(1).setFeaturesCol("scaled").setZeroBasedLabel(False)

    pipeline = Pipeline(stages=[scaler, classifier])

    pipelineModel = pipeline.fit(df)

    res = pipelineModel.transform(df)
    assert type(res).__name__ == 'DataFrame'
    assert res.select("scaled", "prediction").count() == 4


def test_NNClassifierModel_save_load_torch_model(spark, sc, tmp_path):
    """AZ: test_NNClassifierModel_save_load_BigDL_model."""
    model = linear()
    criterion = torch.nn.CrossEntropyLoss()
    classifier = NNClassifier(model, criterion).setMaxEpoch(1).setBatchSize(4).setZeroBasedLabel(False)

    df = classifier_df(spark)
    nnClassifierModel = classifier.fit(df)
    modelPath = os.path.join(str(tmp_path), "model")
    torch.save(nnClassifierModel.model, modelPath)
    loaded_model = torch.load(modelPath, weights_only=False)
    resultDF = NNClassifierModel(loaded_model).transform(df)
    assert resultDF.count() == 4


def test_NNClassifierModel_save_load(spark, sc, tmp_path):
    model = log_softmax_linear()
    criterion = torch.nn.NLLLoss()
    classifier = NNClassifier(model, criterion, [2]).setMaxEpoch(1).setZeroBasedLabel(False)

    df = classifier_df(spark)
    nnClassifierModel = classifier.fit(df)
    modelPath = os.path.join(str(tmp_path), "model")
    nnClassifierModel.save(modelPath)
    loaded_model = NNClassifierModel.load(modelPath)
    assert (isinstance(loaded_model, NNClassifierModel))
    assert loaded_model.transform(df).count() == 4
