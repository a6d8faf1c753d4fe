"""Keras training throughput: KerasModel.fit on 2 Spark workers against plain model.fit.

One run prints one table: samples/s of a Keras 3 MLP (TensorFlow backend) trained with

* plain ``model.fit`` in one process (TensorFlow using every core), the peer;
* ``zoo.tfpark.KerasModel.fit`` with 2 workers on local[2] (the engine: reduce-scatter, shard
  optimizer, all-gather), steady state (the engine's own figure, first step left out) and end to
  end (the whole fit call, Spark job start-up and TensorFlow tracing included);
* TensorFlow's MultiWorkerMirroredStrategy: 2 processes x 1 thread on loopback (TF_CONFIG), each
  fed its shard of the same global batches. Keras 3's ``model.fit`` fails under MWMS (it cannot
  convert the PerReplica batches), so this runs the standard custom loop (``strategy.run`` with a
  GradientTape and the same Keras model and optimizer), steady state from epochs after the first.

Same data, model, global batch and optimizer; each figure is the best of 3 runs. Target:
steady-state >= 0.9x plain Keras. Usage::

    .venv/bin/python bench/keras_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
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


def mwms_worker(samples: int, batch: int, epochs: int) -> None:
    """One MultiWorkerMirroredStrategy worker (TF_CONFIG set by `mwms_keras`); prints its epoch times."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model, x, y = model_and_data(samples)
    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).shuffle(samples, seed=0).batch(batch))
    per_sample = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def replica_step(features, labels):
        with tf.GradientTape() as tape:
            loss = tf.nn.compute_average_loss(per_sample(labels, model(features, training=True)),
                                              global_batch_size=batch)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def train_step(features, labels):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=(features, labels)),
                               axis=None)

    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for features, labels in batches:
            loss = train_step(features, labels)
        float(loss)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times}))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mwms_keras(samples: int, batch: int, epochs: int) -> float:
    """Steady-state samples/s of 2 MultiWorkerMirroredStrategy processes on loopback."""
    hosts = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": hosts},
                                                     "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, __file__, "--mwms-worker", str(samples), str(batch), str(epochs)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
    outputs = [worker.communicate(timeout=900)[0] for worker in workers]
    if any(worker.returncode for worker in workers):
        raise RuntimeError(f"a MultiWorkerMirroredStrategy worker failed: exit codes {[w.returncode for w in workers]}")
    times = json.loads(outputs[0].strip().splitlines()[-1])["times"]
    return samples * (epochs - 1) / sum(times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--mwms-worker", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mwms_worker:
        mwms_worker(*args.mwms_worker)
        return
    samples, batch, epochs = (4096, 256, 2) if args.quick else (32768, 256, 4)

    from zoo import init_spark

    spark = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "2"})
    spark.sparkContext.setLogLevel("ERROR")
    repeats = 1 if args.quick else 3
    try:
        # Best of REPEATS runs for each contender, each figure on its own: this VM's noise only
        # ever slows a run down.
        plain_runs = [plain_keras(samples, batch, epochs) for _ in range(repeats)]
        zoo_runs = [zoo_keras(samples, batch, epochs) for _ in range(repeats)]
        mwms_steady = max(mwms_keras(samples, batch, epochs) for _ in range(repeats))
    finally:
        spark.stop()
    (peer_steady, peer_total), (zoo_steady, zoo_total) = (tuple(map(max, zip(*runs))) for runs in (plain_runs, zoo_runs))
    params = FEATURES * HIDDEN + HIDDEN * HIDDEN + HIDDEN * CLASSES + 2 * HIDDEN + CLASSES
    print(f"\nKeras MLP {FEATURES}-{HIDDEN}-{HIDDEN}-{CLASSES} ({params / 1e6:.2f}M params), Adam, "
          f"global batch {batch}, {samples} samples x {epochs} epochs, 2 cores, best of {repeats} runs")
    print(f"{'run':<48}{'samples/s':>12}{'vs plain Keras':>16}{'Zoo vs it':>12}")
    rows = [("plain model.fit, 1 process (steady state)", peer_steady, peer_steady),
            ("KerasModel.fit, 2 workers (steady state)", zoo_steady, peer_steady),
            ("TF MultiWorkerMirrored, 2 processes (steady)", mwms_steady, peer_steady),
            ("plain model.fit, 1 process (end to end)", peer_total, peer_total),
            ("KerasModel.fit, 2 workers (end to end)", zoo_total, peer_total)]
    for name, value, peer in rows:
        versus = "" if name.startswith("KerasModel") else f"{(zoo_total if 'end to end' in name else zoo_steady) / value:>11.2f}x"
        print(f"{name:<48}{value:>12.0f}{value / peer:>15.2f}x{versus:>12}")


if __name__ == "__main__":
    main()
