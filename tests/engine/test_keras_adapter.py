"""The Keras adapter on the engine (local[2]): a 2-worker fit equals single-process Keras fed the
same global batches; BatchNormalization statistics; subclassed models; bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="Keras tests need TensorFlow: pip install 'spark-zoo[tf]'")
keras = pytest.importorskip("keras", reason="Keras tests need Keras 3: pip install 'spark-zoo[tf]'")

from tests.conftest import rows_in_partitions  # noqa: E402
from tests.tfpark.keras_helpers import (  # noqa: E402
    ResidualRegressor, assert_same_weights, make_mlp, reference_training, regression_partitions,
)
from zoo.engine import MaxIteration  # noqa: E402
from zoo.engine.adapters import adapter_for  # noqa: E402
from zoo.errors import ZooTypeError  # noqa: E402
from zoo.nnframes import NNEstimator  # noqa: E402

SCHEMA = "features array<double>, label double"

OPTIMIZERS = {
    "sgd_momentum_sharded": lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    "adam_sharded": lambda: keras.optimizers.Adam(0.01),
    "rmsprop_sharded": lambda: keras.optimizers.RMSprop(0.01),
    "adagrad_sharded": lambda: keras.optimizers.Adagrad(0.1),
    "sgd_global_clipnorm_replicated": lambda: keras.optimizers.SGD(0.05, global_clipnorm=0.5),
}


@pytest.mark.parametrize("name, transport", [(name, "auto") for name in OPTIMIZERS] + [("adam_sharded", "gloo")])
def test_two_workers_equal_single_process_keras(spark, name, transport):
    # Uneven partitions and a global batch (7) not divisible by the 2 workers.
    parts = regression_partitions([23, 14])
    df = rows_in_partitions(spark, parts, SCHEMA)
    est = NNEstimator(model=make_mlp(), criterion=keras.losses.MeanSquaredError(), batchSize=7, maxEpoch=2,
                      optimMethod=OPTIMIZERS[name](), numWorkers=2, shuffle=False,
                      transport=transport).setShowProgress(False)
    model = est.fit(df)
    assert isinstance(model.model, keras.Model)
    reference = reference_training(parts, make_mlp(), OPTIMIZERS[name](), "mse", 7, 2)
    assert_same_weights(model.model, reference)
    steps = [h for h in model.history if h["event"] == "step"]
    assert [h["iteration"] for h in steps] == list(range(1, 2 * 6 + 1))


def test_subclassed_model_trains_like_the_reference(spark):
    parts = regression_partitions([20, 20], seed=1)
    df = rows_in_partitions(spark, parts, SCHEMA)

    def model():
        keras.utils.set_random_seed(5)
        net = ResidualRegressor(hidden=6)
        net(np.zeros((1, 3), np.float32))
        return net

    fitted = NNEstimator(model=model(), criterion="mse", batchSize=10, maxEpoch=2, numWorkers=2, shuffle=False,
                         optimMethod=keras.optimizers.Adam(0.02)).setShowProgress(False).fit(df)
    assert isinstance(fitted.model, ResidualRegressor)
    assert_same_weights(fitted.model, reference_training(parts, model(), keras.optimizers.Adam(0.02), "mse", 10, 2))


def test_batch_normalization_moving_statistics_are_averaged_across_workers(spark):
    parts = regression_partitions([12, 12], seed=2)
    df = rows_in_partitions(spark, parts, SCHEMA)
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.5), keras.layers.Dense(1)])
    # One step of batch 24: each worker normalizes its own 12 samples and updates its moving
    # statistics; the engine then averages them, so the result is the mean of both updates.
    fitted = NNEstimator(model=net, criterion="mse", batchSize=24, endWhen=MaxIteration(1), numWorkers=2,
                         shuffle=False, optimMethod=keras.optimizers.SGD(0.0)).setShowProgress(False).fit(df)
    bn = fitted.model.layers[0]
    x = [np.asarray([r[0] for r in p]) for p in parts]
    expected_mean = np.mean([0.5 * 0.0 + 0.5 * xi.mean(axis=0) for xi in x], axis=0)
    expected_var = np.mean([0.5 * 1.0 + 0.5 * xi.var(axis=0) for xi in x], axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), expected_var, rtol=1e-3, atol=1e-4)
    # The fitted model predicts with those statistics (inference mode) on the executors too.
    predicted = np.asarray([r["prediction"][0] for r in fitted.transform(df).collect()])
    all_x = np.concatenate(x).astype(np.float32)
    np.testing.assert_allclose(np.sort(predicted), np.sort(fitted.model.predict(all_x, verbose=0)[:, 0]), rtol=1e-4,
                               atol=1e-5)


def test_tf1_graph_and_keras2_objects_are_rejected_with_what_to_do():
    with pytest.raises(ZooTypeError, match="TensorFlow 1 graph.*keras.Model"):
        adapter_for(tf.Graph())
    with pytest.raises(ZooTypeError, match="not a keras.Model"):
        adapter_for(tf.Module())


def test_import_zoo_does_not_import_tensorflow_or_keras():
    code = ("import sys, zoo, zoo.nnframes, zoo.tfpark, zoo.engine.adapters.keras; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_torch_backend_matches_single_process_keras():
    """The same equivalence on Keras' torch backend, in a fresh process (the backend is fixed
    when Keras is imported) with its own local[2] session."""
    job = os.path.join(os.path.dirname(__file__), "..", "tfpark", "torch_backend_job.py")
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    out = subprocess.run([sys.executable, job], capture_output=True, text=True, env=env, timeout=300,
                         cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "torch-backend-ok" in out.stdout


def test_tensorflow_reads_aligned_shards_in_place_and_copies_unaligned_memory():
    import torch

    from zoo.engine.adapters.keras import interop
    from zoo.engine.collective import FlatBuffers

    buffers = FlatBuffers(1001, rank=1, world_size=2)
    shard = buffers.shard(buffers.params)
    assert shard.data_ptr() % interop.TF_ALIGNMENT_BYTES == 0
    shard.copy_(torch.arange(shard.numel(), dtype=torch.float32))
    view = interop.tf_view(shard)
    shard[0] = 42.0
    assert float(view[0]) == 42.0  # the same memory: no copy per step

    unaligned = buffers.params[1:101]
    unaligned.copy_(torch.arange(100, dtype=torch.float32))
    copy = interop.tf_view(unaligned)  # TensorFlow would abort the process on a view of it
    unaligned[0] = -1.0
    assert float(copy[0]) == 0.0 and float(tf.reduce_sum(copy)) == float(sum(range(100)))
