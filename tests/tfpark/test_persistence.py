"""NNClassifier with a Keras model and Keras loss: fit, transform, save/load in the .keras format."""

import os

import keras
import numpy as np
import pandas as pd
import pytest

from tests.tfpark.keras_helpers import ResidualRegressor
from zoo.nnframes import NNClassifier, NNClassifierModel, NNModel


def test_keras_classifier_round_trips_through_save_and_load(spark, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(float)
    df = spark.createDataFrame(pd.DataFrame({"features": list(x), "label": y}))
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    clf = NNClassifier(model=net, criterion=keras.losses.BinaryCrossentropy(from_logits=True), batchSize=30,
                       maxEpoch=6, optimMethod=keras.optimizers.Adam(0.05), numWorkers=2).setShowProgress(False)
    fitted = clf.fit(df)
    before = fitted.transform(df).select("prediction", "probability", "label").toPandas()
    assert (before["prediction"] == before["label"]).mean() > 0.93
    fitted.save(str(tmp_path / "model"))
    assert "model.keras" in os.listdir(tmp_path / "model")
    assert "weights.safetensors" not in os.listdir(tmp_path / "model")
    loaded = NNClassifierModel.load(str(tmp_path / "model"))
    assert isinstance(loaded.model, keras.Model) and loaded.output_kind == "logits"
    after = loaded.transform(df).select("prediction", "probability", "label").toPandas()
    assert (after["prediction"] == before["prediction"]).all()
    np.testing.assert_allclose(np.stack(after["probability"].map(lambda v: v.toArray())),
                               np.stack(before["probability"].map(lambda v: v.toArray())), rtol=1e-6)
    clf.save(str(tmp_path / "estimator"))
    again = NNClassifier.load(str(tmp_path / "estimator"))
    assert isinstance(again.model, keras.Model) and isinstance(again.criterion, keras.losses.BinaryCrossentropy)


def test_subclassed_keras_model_saves_and_loads(spark, tmp_path):
    keras.utils.set_random_seed(1)
    net = ResidualRegressor(hidden=4)
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    net(x)
    NNModel(model=net).save(str(tmp_path / "m"))
    loaded = NNModel.load(str(tmp_path / "m"))
    assert isinstance(loaded.model, ResidualRegressor)
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), net.predict(x, verbose=0), rtol=1e-6)


def test_a_keras_nnmodel_saved_with_the_old_default_backend_still_transforms(spark, tmp_path):
    import cloudpickle

    keras.utils.set_random_seed(2)
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    NNModel(model=net).save(str(tmp_path / "m"))
    # What a stage saved before the one inference path held: backend "torch" (then every NNModel's
    # default) and no recorded framework.
    objects_file = tmp_path / "m" / "objects.pkl"
    objects = cloudpickle.loads(objects_file.read_bytes())
    objects["backend"] = "torch"
    objects["keras_custom_objects"] = objects.pop("model")
    objects.pop("model_framework")
    objects_file.write_bytes(cloudpickle.dumps(objects))
    loaded = NNModel.load(str(tmp_path / "m"))
    assert loaded.getBackend() == "keras"
    x = np.random.default_rng(2).normal(size=(5, 3))
    got = np.stack(loaded.transform(spark.createDataFrame(pd.DataFrame({"features": list(x)})))
                   .toPandas()["prediction"].map(np.asarray))
    np.testing.assert_allclose(got, net.predict(x.astype(np.float32), verbose=0), rtol=1e-5, atol=1e-6)


def test_keras_loss_decides_the_classifier_output_reading():
    from zoo.engine.adapters import adapter_for

    adapter = adapter_for(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    output_kind_for, wants_float_targets = adapter.output_kind, adapter.wants_float_targets
    assert output_kind_for(keras.losses.SparseCategoricalCrossentropy(from_logits=True)) == "logits"
    assert output_kind_for("sparse_categorical_crossentropy") == "probabilities"
    assert wants_float_targets(keras.losses.BinaryCrossentropy()) and not wants_float_targets("mse")


def test_keras_model_load_model_restores_the_compile_state_in_safe_mode(tmp_path):
    from zoo.inference import ModelLoadError
    from zoo.tfpark import KerasModel

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    net.compile(optimizer="adam", loss="mse")
    KerasModel(net).save_model(str(tmp_path / "dense.keras"))
    loaded = KerasModel.load_model(str(tmp_path / "dense.keras"))
    assert type(loaded.model.optimizer).__name__ == "Adam"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(loaded.model.predict_on_batch(x), net.predict_on_batch(x), rtol=1e-6)
    # A file handed to load_model is not Zoo's own: Keras' safe mode refuses a Lambda's bytecode.
    shifted = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t + 1.0)])
    shifted.compile(optimizer="adam", loss="mse")
    KerasModel(shifted).save_model(str(tmp_path / "lambda.keras"))
    with pytest.raises(ModelLoadError, match="safe_mode"):
        KerasModel.load_model(str(tmp_path / "lambda.keras"))
