"""KerasModel on local[2]: numpy, DataFrame (two-input functional model) and plain-Keras paths."""

import keras
import numpy as np
import pandas as pd
import pytest

from zoo.errors import ZooValueError
from zoo.tfpark import KerasModel


def separable(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] > 0).astype(np.int64)


def classifier(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def test_fit_on_numpy_converges_and_evaluate_predict_match_plain_keras(spark):
    x, y = separable()
    model = classifier()
    history = KerasModel(model).fit(x[:320], y[:320], batch_size=32, epochs=6, validation_data=(x[320:], y[320:]),
                                    distributed=True)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    # Distributed evaluation and prediction agree with plain Keras on the trained weights.
    got = KerasModel(model).evaluate(x[320:], y[320:], batch_per_thread=16, distributed=True)
    want = model.evaluate(x[320:], y[320:], verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
    assert got["accuracy"] == pytest.approx(history["val_accuracy"][-1], abs=1e-6)
    predicted = KerasModel(model).predict(x[320:], batch_per_thread=16, distributed=True)
    np.testing.assert_allclose(predicted, model.predict(x[320:], verbose=0), rtol=1e-4, atol=1e-5)


def test_two_input_functional_model_from_two_dataframe_columns(spark):
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(240, 3)), rng.normal(size=(240, 2))
    target = a @ np.array([1.0, -1.0, 0.5]) + b @ np.array([2.0, 0.3])
    df = spark.createDataFrame(pd.DataFrame({"a": list(a), "b": list(b), "y": target}))
    keras.utils.set_random_seed(0)
    in_a, in_b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    merged = keras.layers.Concatenate()([keras.layers.Dense(8)(in_a), in_b])
    model = keras.Model([in_a, in_b], keras.layers.Dense(1)(merged))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    history = KerasModel(model).fit(df, batch_size=24, epochs=8, feature_cols=["a", "b"], labels_cols="y")
    assert history["loss"][-1] < 0.05 * history["loss"][0]
    out = KerasModel(model).predict(df, feature_cols=["a", "b"]).select("prediction", "y").toPandas()
    predicted = np.stack(out["prediction"].to_numpy())[:, 0]
    assert np.mean((predicted - out["y"].to_numpy()) ** 2) < 0.05 * np.var(target)


def test_columns_that_do_not_match_the_model_inputs_fail_before_training_with_both_shapes(spark):
    df = spark.createDataFrame(pd.DataFrame({"a": [np.ones(5)] * 8, "y": np.zeros(8)}))
    model = classifier()
    with pytest.raises(ZooValueError, match=r"per-sample shapes \[\[4\]\].*\[\[5\]\]"):
        KerasModel(model).fit(df, batch_size=4, feature_cols=["a"], labels_cols="y")


def test_numpy_runs_plain_keras_by_default_as_az_documents():
    x, y = separable(64)
    model = classifier()
    history = KerasModel(model).fit(x, y, batch_size=16, epochs=2)
    assert len(history["loss"]) == 2
    np.testing.assert_allclose(KerasModel(model).predict(x), model.predict(x, verbose=0))
    assert KerasModel(model).evaluate(x, y) == model.evaluate(x, y, verbose=0, return_dict=True)


def test_an_uncompiled_model_is_reported(spark):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ZooValueError, match="not compiled"):
        KerasModel(model).fit(np.zeros((8, 4)), np.zeros(8), batch_size=4, distributed=True)
