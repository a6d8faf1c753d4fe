"""Spark ML persistence: NNModel, NNClassifierModel, fitted PipelineModel, unfitted Pipeline."""

import json
import os

import numpy as np
import pytest
import torch
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StandardScaler, VectorAssembler
from pyspark.ml.util import DefaultParamsReader

from zoo import storage
from zoo.engine import MaxEpoch
from zoo.nnframes import NNClassifier, NNClassifierModel, NNEstimator, NNModel


def tabular(spark, n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 100.0]
    label = (x[:, 0] + x[:, 1] / 10 - x[:, 2] / 100 > 0).astype(float)
    return spark.createDataFrame([(*map(float, r), float(t)) for r, t in zip(x, label)], ["a", "b", "c", "label"])


def predictions(df, column="prediction"):
    rows = df.select(column).collect()
    return np.array([np.asarray(r[0].toArray() if hasattr(r[0], "toArray") else r[0]) for r in rows])


def test_nnmodel_round_trip_and_layout(spark, tmp_path):
    df = spark.createDataFrame([([1.0, 2.0],), ([3.0, -1.0],)], ["features"])
    torch.manual_seed(0)
    model = NNModel(model=torch.nn.Linear(2, 3), batchSize=7, predictionCol="out")
    path = str(tmp_path / "nnmodel")
    model.save(path)
    loaded = NNModel.load(path)
    assert loaded.uid == model.uid and loaded.getBatchSize() == 7 and loaded.getPredictionCol() == "out"
    np.testing.assert_allclose(predictions(loaded.transform(df), "out"), predictions(model.transform(df), "out"))
    assert sorted(os.listdir(path)) == ["metadata", "objects.pkl", "weights.safetensors"]
    metadata = json.loads(open(os.path.join(path, "metadata", "part-00000")).read())
    assert metadata["class"] == "zoo.nnframes.nn_estimator.NNModel" and metadata["paramMap"]["batchSize"] == 7
    from safetensors.torch import load_file

    assert set(load_file(os.path.join(path, "weights.safetensors"))) == {"weight", "bias"}


def test_fitted_pipeline_with_a_spark_feature_stage_saves_and_loads(spark, tmp_path):
    df = tabular(spark)
    torch.manual_seed(0)
    clf = NNClassifier(model=torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
                       criterion=torch.nn.CrossEntropyLoss(), featuresCol="scaled", batchSize=32, maxEpoch=15,
                       learningRate=0.2).setShowProgress(False)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["a", "b", "c"], outputCol="raw"),
                                StandardScaler(inputCol="raw", outputCol="scaled"), clf])
    fitted = pipeline.fit(df)
    before = fitted.transform(df)
    assert before.selectExpr("avg(cast(prediction = label as double))").first()[0] > 0.9
    fitted.write().overwrite().save(str(tmp_path / "pipeline_model"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline_model"))
    assert isinstance(loaded.stages[-1], NNClassifierModel)
    after = loaded.transform(df)
    np.testing.assert_allclose(predictions(after), predictions(before))
    np.testing.assert_allclose(predictions(after, "probability"), predictions(before, "probability"), rtol=1e-6)


def test_unfitted_pipeline_with_an_estimator_saves_loads_and_fits(spark, tmp_path):
    torch.manual_seed(0)
    est = NNEstimator(model=torch.nn.Linear(3, 1), criterion=torch.nn.MSELoss(), featuresCol="raw",
                      batchSize=16, endWhen=MaxEpoch(2), learningRate=1e-4,
                      optimMethod=torch.optim.Adam).setGradientClippingByL2Norm(1.0)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["a", "b", "c"], outputCol="raw"), est])
    pipeline.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = Pipeline.load(str(tmp_path / "pipeline"))
    stage = loaded.getStages()[-1]
    assert isinstance(stage, NNEstimator) and stage.uid == est.uid
    assert stage.getEndWhen() == MaxEpoch(2) and stage.getOptimMethod() is torch.optim.Adam
    assert stage.clip_l2_norm == 1.0 and stage.getBatchSize() == 16
    for got, want in zip(stage.model.parameters(), est.model.parameters()):
        assert torch.equal(got, want)
    stage.setShowProgress(False)
    out = loaded.fit(tabular(spark, 64)).transform(tabular(spark, 8, seed=1))
    assert out.count() == 8 and "prediction" in out.columns


def test_stages_save_and_load_on_s3_and_file_urls(spark, s3, tmp_path):
    df = tabular(spark, 16)
    torch.manual_seed(0)
    clf_model = NNClassifierModel(model=torch.nn.Sequential(torch.nn.Linear(3, 2)), featuresCol="raw")
    net_model = NNModel(model=torch.nn.Linear(3, 1), featuresCol="raw", batchSize=5)
    frame = VectorAssembler(inputCols=["a", "b", "c"], outputCol="raw").transform(df)
    for base in (f"s3://{s3.name}/models", f"s3a://{s3.name}/models-a", f"file://{tmp_path}/models"):
        for name, model, cls in (("nn", net_model, NNModel), ("clf", clf_model, NNClassifierModel)):
            url = f"{base}/{name}"
            model.save(url)
            loaded = cls.load(url)
            assert loaded.uid == model.uid and loaded.getFeaturesCol() == "raw"
            np.testing.assert_allclose(predictions(loaded.transform(frame)), predictions(model.transform(frame)))
            assert storage.listdir(url) == ["metadata", "objects.pkl", "weights.safetensors"]
            with pytest.raises(FileExistsError, match=r"already exists\. .*stage\.write\(\)\.overwrite\(\)\.save"):
                model.save(url)
            model.write().overwrite().save(url)
    assert s3.keys("models/nn/metadata") == ["models/nn/metadata/_SUCCESS", "models/nn/metadata/part-00000"]
    # The metadata is pyspark's: its own reader takes it (for local paths, through Spark's file system).
    assert DefaultParamsReader.loadMetadata(str(tmp_path / "models" / "nn"), spark)["uid"] == net_model.uid
    with pytest.raises(FileNotFoundError, match="No saved NNModel"):
        NNModel.load(f"s3://{s3.name}/nothing-here")
