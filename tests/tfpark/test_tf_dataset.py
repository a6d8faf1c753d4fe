"""TFDataset sources: batch arguments, tf.data pipelines (sharded on the executors), RDDs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.errors import ZooValueError
from zoo.tfpark import KerasModel, TFDataset, TFPredictor


def linear_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5]) + 0.1).astype(np.float32)


def regressor():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    return model


def test_batch_size_and_batch_per_thread_together_are_rejected(spark):
    x, y = linear_data(8)
    with pytest.raises(ZooValueError, match="either `batch_size`.*not both"):
        TFDataset.from_ndarrays((x, y), batch_size=4, batch_per_thread=2)


def test_tf_data_pipeline_is_run_in_shards_on_the_executors(spark):
    x, y = linear_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a, b * 1.0))
    model = regressor()
    history = KerasModel(model).fit(TFDataset.from_tf_data_dataset(dataset, batch_size=20), epochs=10)
    assert history["loss"][-1] < 0.02 * history["loss"][0]
    # Every sample exactly once across the shards: predictions in shard order match plain Keras.
    features_only = TFDataset.from_tf_data_dataset(tf.data.Dataset.from_tensor_slices(x), batch_per_thread=16)
    got = np.stack(TFPredictor.from_keras(model, features_only).predict().collect())
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.sort(got[:, 0]), np.sort(want[:, 0]), rtol=1e-4, atol=1e-5)


def test_tf_data_pipelines_that_cannot_be_sharded_say_what_to_do(spark):
    generated = tf.data.Dataset.from_generator(lambda: iter([[1.0, 2.0, 3.0]]),
                                               output_signature=tf.TensorSpec((3,), tf.float32))
    with pytest.raises(ZooValueError, match="cannot be sharded.*from_generator.*from_dataframe"):
        TFDataset.from_tf_data_dataset(generated, batch_size=4)
    x, y = linear_data(8)
    with pytest.raises(ZooValueError, match="infinite.*Remove .repeat"):
        TFDataset.from_tf_data_dataset(tf.data.Dataset.from_tensor_slices((x, y)).repeat(), batch_size=4)
    with pytest.raises(ZooValueError, match="batched"):
        TFDataset.from_tf_data_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), batch_size=4)


def test_from_rdd_with_feature_and_label_specs(spark):
    x, y = linear_data(120, seed=3)
    rdd = spark.sparkContext.parallelize(list(zip(x, y)), 3)
    dataset = TFDataset.from_rdd(rdd, features=(tf.float32, [3]), labels=(tf.float32, []), batch_size=12)
    model = regressor()
    history = KerasModel(model).fit(dataset, epochs=10)
    assert history["loss"][-1] < 0.02 * history["loss"][0]
