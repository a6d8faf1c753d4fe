"""Keras training throughput: KerasModel.fit on 2 Spark workers against plain model.fit.

One run prints one table: samples/s of a Keras 3 MLP (TensorFlow backend) trained with

* plain ``model.fit`` in one process (TensorFlow using every core), the peer;
* ``zoo.tfpark.KerasModel.fit`` with 2 workers on local[2] (the engine: reduce-scatter, shard
  optimizer, all-gather), steady state (the engine's own figure, first step left out) and end to
  end (the whole fit call, Spark job start-up and TensorFlow tracing included).

Same data, model, global batch and optimizer. Target: steady-state >= 0.9x plain Keras.
TensorFlow's MultiWorkerMirroredStrategy is not measured: it needs one process per worker with
a TF_CONFIG cluster spec, outside Spark. Usage::

    .venv/bin/python bench/keras_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

FEATURES, HIDDEN, CLASSES = 256, 1024, 10


def model_and_data(samples: int, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(HIDDEN, activation="relu"),
                              keras.layers.Dense(HIDDEN, activation="relu"), keras.layers.Dense(CLASSES)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, size=samples)
    return model, x, y


class _EpochTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self.start)

        self.callback = Timer()


def plain_keras(samples: int, batch: int, epochs: int) -> tuple[float, float]:
    """(steady-state samples/s over epochs after the first, end-to-end samples/s)."""
    model, x, y = model_and_data(samples)
    timer = _EpochTimer()
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer.callback])
    total = time.perf_counter() - start
    steady = samples * (epochs - 1) / sum(timer.callback.times[1:])
    return steady, samples * epochs / total


def zoo_keras(samples: int, batch: int, epochs: int) -> tuple[float, float]:
    """(engine steady-state samples/s, end-to-end samples/s of the fit call)."""
    from zoo.tfpark import KerasModel, TFDataset

    model, x, y = model_and_data(samples)
    dataset = TFDataset.from_ndarrays((x, y), batch_size=batch)
    dataset.source.df.cache().count()
    # A first, short fit starts the Python workers and imports TensorFlow there, as any
    # long-running application would have done once.
    KerasModel(model_and_data(batch * 2)[0]).fit(x[: batch * 2], y[: batch * 2], batch_size=batch, epochs=1)
    wrapper = KerasModel(model)
    start = time.perf_counter()
    wrapper.fit(dataset, epochs=epochs)
    total = time.perf_counter() - start
    return wrapper.fit_stats["samples_per_second"], samples * epochs / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    samples, batch, epochs = (4096, 256, 2) if args.quick else (32768, 256, 4)

    from zoo import init_spark

    spark = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    spark.sparkContext.setLogLevel("ERROR")
    try:
        peer_steady, peer_total = plain_keras(samples, batch, epochs)
        zoo_steady, zoo_total = zoo_keras(samples, batch, epochs)
    finally:
        spark.stop()
    params = FEATURES * HIDDEN + HIDDEN * HIDDEN + HIDDEN * CLASSES + 2 * HIDDEN + CLASSES
    print(f"\nKeras MLP {FEATURES}-{HIDDEN}-{HIDDEN}-{CLASSES} ({params / 1e6:.2f}M params), Adam, "
          f"global batch {batch}, {samples} samples x {epochs} epochs, 2 cores")
    print(f"{'run':<44}{'samples/s':>12}{'vs plain Keras':>16}")
    rows = [("plain model.fit, 1 process (steady state)", peer_steady, peer_steady),
            ("KerasModel.fit, 2 workers (steady state)", zoo_steady, peer_steady),
            ("plain model.fit, 1 process (end to end)", peer_total, peer_total),
            ("KerasModel.fit, 2 workers (end to end)", zoo_total, peer_total)]
    for name, value, peer in rows:
        print(f"{name:<44}{value:>12.0f}{value / peer:>15.2f}x")


if __name__ == "__main__":
    main()
