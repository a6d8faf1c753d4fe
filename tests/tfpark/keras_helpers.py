"""Models and a single-process Keras reference shared by the Keras tests."""

import math

import keras
import numpy as np

from zoo.engine.loop import step_sizes


def regression_partitions(sizes, seed=0):
    """Per-partition (x, y) rows of a noisy linear target with 3 features."""
    rng = np.random.default_rng(seed)
    parts = []
    for size in sizes:
        x = rng.normal(size=(size, 3))
        y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=size)
        parts.append([(row.tolist(), float(t)) for row, t in zip(x, y)])
    return parts


def make_mlp(seed=3):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])


def global_batches(parts, batch_size):
    """The global batches the engine builds from `parts` (no shuffling): step s takes each
    worker's next share, concatenated in rank order."""
    data = [(np.asarray([r[0] for r in p], np.float32).reshape(-1, 3),
             np.asarray([[r[1]] for r in p], np.float32).reshape(-1, 1)) for p in parts]
    total = sum(len(p) for p in parts)
    steps = math.ceil(total / batch_size)
    offsets = [np.concatenate([[0], np.cumsum(step_sizes(len(p), steps))]) for p in parts]
    for s in range(steps):
        yield (np.concatenate([d[0][o[s]:o[s + 1]] for d, o in zip(data, offsets)]),
               np.concatenate([d[1][o[s]:o[s + 1]] for d, o in zip(data, offsets)]))


def reference_training(parts, model, optimizer, loss, batch_size, epochs):
    """Single-process Keras fed the same global batches the engine builds from the partitions."""
    model.compile(optimizer=optimizer, loss=loss)
    for _ in range(epochs):
        for x, y in global_batches(parts, batch_size):
            model.train_on_batch(x, y)
    return model


def assert_same_weights(got, want, rtol=1e-4, atol=1e-5):
    assert len(got.weights) == len(want.weights)
    for a, b in zip(got.weights, want.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a.value), keras.ops.convert_to_numpy(b.value),
                                   rtol=rtol, atol=atol, err_msg=a.path)


@keras.saving.register_keras_serializable(package="zoo_tests")
class ResidualRegressor(keras.Model):
    """A subclassed model with a custom layer structure and get_config."""

    def __init__(self, hidden=8, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.inner = keras.layers.Dense(hidden, activation="tanh")
        self.skip = keras.layers.Dense(1)
        self.head = keras.layers.Dense(1)

    def call(self, x):
        return self.head(self.inner(x)) + self.skip(x)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}
