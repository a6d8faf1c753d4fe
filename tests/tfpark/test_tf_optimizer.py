"""TFOptimizer: checkpoints and resume, load_checkpoint of an older version, from_loss."""

import os

import keras
import numpy as np

from tests.tfpark.keras_helpers import assert_same_weights, make_mlp, reference_training
from zoo.engine import MaxEpoch, MaxIteration, SeveralIteration
from zoo.engine import checkpoint as ckpt
from zoo.tfpark import TFDataset, TFOptimizer


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([1.5, -2.0, 0.5]) + 0.3).astype(np.float32).reshape(-1, 1)


def compiled(seed=3):
    model = make_mlp(seed)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def test_checkpoint_and_resume_equal_a_straight_run(spark, tmp_path):
    x, y = data()
    dataset = TFDataset.from_ndarrays((x, y), batch_size=16)
    straight = compiled()
    TFOptimizer.from_keras(straight, dataset).optimize(end_trigger=MaxEpoch(4))
    first = compiled()
    TFOptimizer.from_keras(first, dataset, model_dir=str(tmp_path)).optimize(end_trigger=MaxEpoch(2))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-000000012"]
    resumed = compiled()
    optimizer = TFOptimizer.from_keras(resumed, dataset, model_dir=str(tmp_path))
    optimizer.load_checkpoint(str(tmp_path), 12)
    assert_same_weights(resumed, first, rtol=0, atol=0)
    optimizer.optimize(end_trigger=MaxEpoch(4))
    steps = [h["iteration"] for h in optimizer.history if h["event"] == "step"]
    assert steps[0] == 13 and steps[-1] == 24
    assert_same_weights(resumed, straight, rtol=1e-5, atol=1e-6)


def test_load_checkpoint_of_an_older_version_resumes_from_it(spark, tmp_path):
    x, y = data()
    dataset = TFDataset.from_ndarrays((x, y), batch_size=16)
    model = compiled()
    writer = TFOptimizer.from_keras(model, dataset, model_dir=str(tmp_path))
    writer.optimize(end_trigger=MaxIteration(3), checkpoint_trigger=SeveralIteration(3))
    kept = str(tmp_path / "kept")
    os.rename(ckpt.latest_checkpoint(str(tmp_path)), os.path.join(str(tmp_path), "kept-3"))
    os.makedirs(kept)
    os.rename(os.path.join(str(tmp_path), "kept-3"), os.path.join(kept, "checkpoint-000000003"))
    writer.optimize(end_trigger=MaxIteration(9), checkpoint_trigger=SeveralIteration(3))  # a later run, v9
    straight = compiled()
    TFOptimizer.from_keras(straight, dataset).optimize(end_trigger=MaxIteration(6))
    resumed = compiled()
    optimizer = TFOptimizer.from_keras(resumed, dataset, model_dir=kept)
    optimizer.load_checkpoint(kept, 3)
    optimizer.optimize(end_trigger=MaxIteration(6), checkpoint_trigger=SeveralIteration(3))
    assert_same_weights(resumed, straight, rtol=1e-5, atol=1e-6)
    assert "checkpoint-000000006" in os.listdir(kept)


def weighted_mae(y_true, y_pred):
    """A custom loss: absolute error, with positive targets counting twice."""
    weight = 1.0 + keras.ops.cast(y_true > 0, "float32")
    return keras.ops.mean(weight * keras.ops.abs(y_true - y_pred), axis=-1)


def test_from_loss_trains_with_a_custom_loss_like_single_process_keras(spark):
    x, y = data(60, seed=4)
    dataset = TFDataset.from_ndarrays((x, y), batch_size=12)
    dataset.shuffle = False
    # from_ndarrays keeps row order; the reference sees the global batches the engine builds
    # from the DataFrame's partitions.
    partitions = [len(p) for p in dataset.source.df.rdd.glom().collect()]
    assert len(partitions) == 2
    model = make_mlp()
    TFOptimizer.from_loss(weighted_mae, keras.optimizers.SGD(0.05), model=model, dataset=dataset).optimize(
        end_trigger=MaxEpoch(2))
    rows = [(list(map(float, a)), float(b[0])) for a, b in zip(x, y)]
    bounds = np.concatenate([[0], np.cumsum(partitions)])
    parts = [rows[bounds[i]:bounds[i + 1]] for i in range(2)]
    reference = reference_training(parts, make_mlp(), keras.optimizers.SGD(0.05), weighted_mae, 12, 2)
    assert_same_weights(model, reference)
