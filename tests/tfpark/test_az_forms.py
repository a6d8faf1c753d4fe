"""TFPark in Analytics Zoo's forms: KerasModel(model, model_dir, optimizer), weights and
metrics_names, distributed= defaults, and TFDataset's shuffle / sequential_order / memory_type."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from zoo.errors import ZooValueError
from zoo.tfpark import KerasModel, TFDataset


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    return model


def separable(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > x[:, 1]).astype(np.int64)


@pytest.mark.slow
def test_model_dir_and_optimizer_steer_the_distributed_fit(spark, tmp_path):
    x, y = separable()
    model = classifier()
    before = [w.copy() for w in model.get_weights()]
    keras_model = KerasModel(model, model_dir=str(tmp_path), optimizer=keras.optimizers.SGD(learning_rate=0.0))

    keras_model.fit(x, y, batch_size=32, epochs=2, distributed=True)
    scores = keras_model.evaluate(x, y, batch_per_thread=32, distributed=True)

    for got, want in zip(keras_model.get_weights(), before):  # a zero learning rate: the given optimizer ran
        np.testing.assert_array_equal(got, want)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint")]
    assert keras_model.metrics_names == ["loss", "accuracy"] == list(scores)


def test_weights_round_trip_through_any_file_name(tmp_path):
    source, target = KerasModel(classifier(0)), KerasModel(classifier(1))
    path = str(tmp_path / "weights.h5")

    source.save_weights(path)
    target.load_weights(path)

    for got, want in zip(target.get_weights(), source.get_weights()):
        np.testing.assert_array_equal(got, want)
    target.set_weights([np.zeros_like(w) for w in target.get_weights()])
    assert all(not w.any() for w in target.get_weights())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        source.save_weights(path, overwrite=False)
    with pytest.raises(ZooValueError, match="save_format='h5'"):
        source.save_weights(path, save_format="tf")
    with pytest.raises(ZooValueError, match=r"by_name=True\) is not supported"):
        target.load_weights(path, by_name=True)


@pytest.mark.slow
def test_memory_type_and_sequential_order_train_the_same_model(spark):
    x, y = separable(seed=1)
    weights = {}
    for memory_type in ("DRAM", "DISK_AND_DRAM"):
        model = classifier()
        dataset = TFDataset.from_ndarrays((x, y), batch_size=32, memory_type=memory_type, sequential_order=True)
        assert dataset.shuffle is False and dataset.caching_sample is (memory_type == "DRAM")
        KerasModel(model).fit(dataset, epochs=2)  # a TFDataset always trains on the cluster
        weights[memory_type] = model.get_weights()
    for a, b in zip(weights["DRAM"], weights["DISK_AND_DRAM"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_tf_dataset_keywords_are_read_or_refused_with_the_tf2_call(spark):
    x, y = separable(8)
    assert TFDataset.from_ndarrays((x, y), batch_size=4, shuffle=False).shuffle is False
    assert TFDataset.from_ndarrays((x, y), batch_size=4, memory_type="DISK_2").caching_sample is False
    assert TFDataset.from_ndarrays((x, y), batch_size=4, hard_code_batch_size=True).shuffle is True
    with pytest.raises(ZooValueError, match="PMEM"):
        TFDataset.from_ndarrays((x, y), batch_size=4, memory_type="PMEM")
    with pytest.raises(ZooValueError, match="memory_type"):
        TFDataset.from_ndarrays((x, y), batch_size=4, memory_type="SSD")
    rdd = spark.sparkContext.parallelize([(row, label) for row, label in zip(x, y)])
    with pytest.raises(ZooValueError, match=r"from_rdd\(rdd, features=\[\(float32, \[4\]\)\], labels=\(int32, \[\]\)"):
        TFDataset.from_rdd(rdd, names=["x", "y"], shapes=[[4], []], types=[tf.float32, tf.int32], batch_size=4)
