"""Orca's TF2 Estimator (zoo.orca.learn.tf2) on a real local[2] Spark with a compiled Keras 3 model."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorflow", reason="Keras tests need TensorFlow: pip install 'spark-zoo[tf]'")
keras = pytest.importorskip("keras", reason="Keras tests need Keras 3: pip install 'spark-zoo[tf]'")

from zoo.errors import ZooValueError  # noqa: E402
from zoo.orca.learn.tf2 import Estimator  # noqa: E402


def model_creator(config):
    keras.utils.set_random_seed(config.get("seed", 0))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(config["lr"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def separable(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] - x[:, 2] > 0).astype(np.int64)


@pytest.mark.slow
def test_from_keras_creator_fit_evaluate_predict_match_plain_keras(spark, tmp_path):
    x, y = separable()
    train, val = {"x": x[:320], "y": y[:320]}, {"x": x[320:], "y": y[320:]}
    estimator = Estimator.from_keras(model_creator=model_creator, config={"lr": 0.02}, model_dir=str(tmp_path))

    history = estimator.fit(train, epochs=5, batch_size=16, validation_data=val)
    model = estimator.get_model()
    got = estimator.evaluate(val, batch_size=16)
    want = model.evaluate(x[320:], y[320:], verbose=0, return_dict=True)
    predicted = estimator.predict({"x": x[320:]}, batch_size=16)

    assert history["loss"][-1] < 0.5 * history["loss"][0] and history["val_accuracy"][-1] > 0.9
    # backend "tf2" (Orca's default): batch_size is per worker, so 2 workers take 32 a step.
    steps = [e for e in estimator.history if e["event"] == "step"]
    assert len(steps) == 5 * 10
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
    np.testing.assert_allclose(predicted, model.predict(x[320:], verbose=0), rtol=1e-4, atol=1e-5)
    assert any(p.name.startswith("checkpoint") for p in tmp_path.iterdir())


def test_dataframe_in_dataframe_out_and_save_load(spark, tmp_path):
    x, y = separable(seed=1)
    df = spark.createDataFrame(pd.DataFrame({"features": list(x.astype(float)), "label": y.astype(float)}))
    estimator = Estimator.from_keras(model=model_creator({"lr": 0.02}), backend="spark")

    estimator.fit(df, epochs=2, batch_size=32, feature_cols=["features"], label_cols=["label"])
    predicted = estimator.predict(df, feature_cols=["features"]).toPandas()
    estimator.save(str(tmp_path / "model"))
    loaded = Estimator.from_keras(model_creator=model_creator, config={"lr": 0.02, "seed": 5})
    loaded.load(str(tmp_path / "model"))

    np.testing.assert_allclose(np.stack(predicted["prediction"]),
                               estimator.get_model().predict(np.stack(predicted["features"]), verbose=0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loaded.get_model().predict(x, verbose=0), estimator.get_model().predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_options_zoo_does_not_run_are_refused():
    estimator = Estimator.from_keras(model=model_creator({"lr": 0.01}))
    with pytest.raises(ZooValueError, match=r"\['callbacks'\] are not supported"):
        estimator.fit({"x": np.zeros((4, 4)), "y": np.zeros(4)}, callbacks=[keras.callbacks.History()])
    with pytest.raises(ZooValueError, match="exactly one of `model_creator`"):
        Estimator.from_keras(model_creator=model_creator, model=model_creator({"lr": 0.01}))


@pytest.mark.slow
def test_data_creators_returning_batched_tf_data_as_orca_tf2_scripts_write_them(spark):
    import tensorflow as tf

    x, y = separable(seed=2)

    def train_data_creator(config, batch_size):
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=config["seed"]).batch(batch_size)

    estimator = Estimator.from_keras(model_creator=model_creator, config={"lr": 0.02, "seed": 1})
    history = estimator.fit(train_data_creator, epochs=3, batch_size=16)
    got = estimator.evaluate({"x": x, "y": y}, batch_size=32)
    want = estimator.get_model().evaluate(x, y, verbose=0, return_dict=True)

    assert history["loss"][-1] < history["loss"][0]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
