"""TrainSummary / ValidationSummary: what a fit records, read back from a local folder or S3."""

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays
from zoo.engine import MAE, EveryEpoch
from zoo.errors import ZooValueError
from zoo.nnframes import NNEstimator, TrainSummary, ValidationSummary


def test_reading_a_summary_before_any_fit_says_so(tmp_path):
    with pytest.raises(ZooValueError, match="No train summary"):
        TrainSummary(str(tmp_path), "app").read_scalar("Loss")
    with pytest.raises(ZooValueError, match="app_name"):
        TrainSummary(str(tmp_path), "a/b")


def test_a_fit_logged_to_s3_reads_back_like_the_history(spark, s3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2))
    df = frame_from_arrays(spark, x, x.sum(axis=1), partitions=2)
    train, validation = TrainSummary(s3.url + "/logs", "app"), ValidationSummary(s3.url + "/logs", "app")
    model = NNEstimator(torch.nn.Linear(2, 1), torch.nn.MSELoss()).setBatchSize(8).setMaxEpoch(3) \
        .setShowProgress(False).setTrainSummary(train).setValidation(EveryEpoch(), df, [MAE()], 8) \
        .setValidationSummary(validation).fit(df)
    losses = train.read_scalar("Loss")
    steps = [(h["iteration"], h["loss"]) for h in model.history if h["event"] == "step"]
    np.testing.assert_allclose(losses[:, :2], steps, rtol=1e-6)
    maes = [h["metrics"]["MAE"] for h in model.history if h["event"] == "validation"]
    np.testing.assert_allclose(validation.read_scalar("MAE")[:, 1], maes, rtol=1e-6)
    with pytest.raises(ZooValueError, match=r"'Top1Accuracy'.*Recorded tags: \['MAE'\]"):
        validation.read_scalar("Top1Accuracy")
