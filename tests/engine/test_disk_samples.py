"""cachingSample="DISK" on real Spark (local[2]): the same training as in memory, nothing cached by the fit."""

import numpy as np
import pytest
import torch

from tests.conftest import frame_from_arrays
from zoo.engine import EveryEpoch, Loss, MaxEpoch, MAE
from zoo.nnframes import NNEstimator


def fit(df, caching_sample, validation=None):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    estimator = NNEstimator(model=net, criterion=torch.nn.MSELoss(), batchSize=24, endWhen=MaxEpoch(3),
                            learningRate=0.05, numWorkers=2, cachingSample=caching_sample).setShowProgress(False)
    if validation is not None:
        estimator.setValidation(EveryEpoch(), validation, [Loss(), MAE()], batch_size=7)
    return estimator.fit(df)


@pytest.fixture(scope="module")
def frames(spark):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 5))
    y = x @ rng.normal(size=5) + 0.1 * rng.normal(size=300)
    return frame_from_arrays(spark, x[:240], y[:240], partitions=3), frame_from_arrays(spark, x[240:], y[240:])


def test_a_disk_fit_trains_to_the_same_weights_and_validation_as_an_in_memory_fit(frames):
    train, validation = frames
    in_memory, on_disk = fit(train, "MEMORY", validation), fit(train, "DISK", validation)
    for a, b in zip(in_memory.model.parameters(), on_disk.model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    checks = [h for h in in_memory.history if h["event"] == "validation"]
    assert len(checks) == 3 and checks == [h for h in on_disk.history if h["event"] == "validation"]
    first, last = checks[0]["metrics"]["MAE"], checks[-1]["metrics"]["MAE"]
    assert last < first, "the model did not learn, so equal weights would prove nothing"


def test_a_disk_fit_leaves_nothing_persisted_in_spark(spark, frames):
    # The barrier stage reads the DataFrame once; with the samples on disk Spark must not hold a
    # second copy of the data in its block manager either.
    before = set(spark.sparkContext._jsc.getPersistentRDDs().keys())
    fit(frames[0], "DISK")
    assert set(spark.sparkContext._jsc.getPersistentRDDs().keys()) == before


def test_caching_sample_is_checked_when_set_and_kept_as_a_bool():
    estimator = NNEstimator(model=torch.nn.Linear(5, 1), criterion=torch.nn.MSELoss(), cachingSample="DISK")
    assert estimator.getCachingSample() is False and estimator.getDataCacheLevel() == "DISK_AND_DRAM"
    assert estimator.setCachingSample("memory").isCachingSample() is True
    with pytest.raises(ValueError, match=r"Received: cachingSample='SSD'\. Use 'MEMORY' \(True\)"):
        estimator.setCachingSample("SSD")
