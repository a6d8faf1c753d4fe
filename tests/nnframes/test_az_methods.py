"""AZ's accessors of NNEstimator: getValidation, getCheckpoint, isOverWrite, summaries, data cache level."""

import pytest
import torch

from zoo.engine import MAE, EveryEpoch, SeveralIteration
from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes import NNClassifier, NNEstimator, TrainSummary, ValidationSummary


def estimator():
    return NNEstimator(torch.nn.Linear(2, 2), torch.nn.MSELoss())


def test_get_validation_and_checkpoint_return_what_was_set(spark, tmp_path):
    est = estimator()
    assert est.getValidation() is None and est.getCheckpoint() is None
    df = spark.createDataFrame([([1.0, 2.0], [0.0, 1.0])], "features array<double>, label array<double>")
    trigger, methods = EveryEpoch(), [MAE()]
    est.setValidation(trigger, df, methods, 2)
    assert est.getValidation() == [trigger, df, methods, 2]
    est.setCheckpoint(str(tmp_path), SeveralIteration(3), isOverWrite=False)
    assert est.getCheckpoint() == (str(tmp_path), SeveralIteration(3), False)
    assert est.setCheckpoint(str(tmp_path), EveryEpoch()).getCheckpoint()[2] is True
    assert est.checkpoint.overwrite is True


def test_data_cache_level_is_caching_sample():
    est = NNClassifier(torch.nn.Linear(2, 2), torch.nn.CrossEntropyLoss())
    assert est.getDataCacheLevel() == "DRAM" and est.isCachingSample()
    assert est.setDataCacheLevel("DISK_AND_DRAM", 4).isCachingSample() is False
    assert est.getDataCacheLevel() == ("DISK_AND_DRAM", 4)
    assert est.setDataCacheLevel("DRAM").getDataCacheLevel() == "DRAM" and est.isCachingSample()
    with pytest.raises(ZooValueError, match=r"'PMEM'.*DISK_AND_DRAM"):
        est.setDataCacheLevel("PMEM")
    with pytest.raises(ZooValueError, match="numSlice"):
        est.setDataCacheLevel("DISK_AND_DRAM", 0)


def test_summaries_write_where_tensorboard_does_and_must_share_one_folder(tmp_path):
    est = estimator()
    train = TrainSummary(str(tmp_path), "app")
    est.setTrainSummary(train).setValidationSummary(ValidationSummary(str(tmp_path), "app"))
    assert est.getTrainSummary() is train and est.tensorboard_dir == str(tmp_path / "app")
    with pytest.raises(ZooValueError, match="same log_dir and app_name"):
        est.setValidationSummary(ValidationSummary(str(tmp_path), "other"))
    with pytest.raises(ZooTypeError, match="TrainSummary"):
        estimator().setTrainSummary(ValidationSummary(str(tmp_path), "app"))

