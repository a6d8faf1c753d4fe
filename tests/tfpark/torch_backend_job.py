"""Run with KERAS_BACKEND=torch: a 2-worker fit on Keras' torch backend equals single-process
Keras fed the same global batches, and converges. Prints `torch-backend-ok`."""

import os
import sys

sys.path.insert(0, os.getcwd())

import keras  # noqa: E402

from tests.conftest import rows_in_partitions  # noqa: E402
from tests.tfpark.keras_helpers import (  # noqa: E402
    assert_same_weights, make_mlp, reference_training, regression_partitions,
)
from zoo import init_spark  # noqa: E402
from zoo.nnframes import NNEstimator  # noqa: E402


def main():
    assert keras.backend.backend() == "torch", keras.backend.backend()
    spark = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    try:
        parts = regression_partitions([23, 14])
        df = rows_in_partitions(spark, parts, "features array<double>, label double")
        fitted = NNEstimator(model=make_mlp(), criterion=keras.losses.MeanSquaredError(), batchSize=7, maxEpoch=4,
                             optimMethod=keras.optimizers.Adam(0.05), numWorkers=2,
                             shuffle=False).setShowProgress(False).fit(df)
        reference = reference_training(parts, make_mlp(), keras.optimizers.Adam(0.05), "mse", 7, 4)
        assert_same_weights(fitted.model, reference)
        losses = [h["loss"] for h in fitted.history if h["event"] == "step"]
        assert losses[-1] < 0.5 * losses[0], losses
    finally:
        spark.stop()
    print("torch-backend-ok")


if __name__ == "__main__":
    main()
