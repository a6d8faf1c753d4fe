"""Evaluate a model on a DataFrame where the data lives, for any framework the adapters know.

Each task keeps the metrics' sufficient statistics over its rows; the driver merges them, so the
results are exact (never an average of per-task averages). `update_stats` and `merged_results`
are the one evaluation: the training loop's validation (`WorkerLoop.validate`) runs them too,
over each worker's validation samples.
"""

from __future__ import annotations

import cloudpickle

from zoo.engine.adapters import adapter_for, for_workers
from zoo.engine.arrow_data import ColumnLayout
from zoo.engine.metrics import ValidationMethod


def update_stats(methods: list[ValidationMethod], stats: list, trainable, inputs, target) -> list:
    """`stats` (one per method) updated with one batch: the Trainable's outputs and summed loss
    on `inputs` and `target` (torch CPU tensors)."""
    output, loss_sum = trainable.evaluate(inputs, target)
    target_np = target.numpy()
    return [m.update(s, output, target_np, loss_sum) for m, s in zip(methods, stats)]


def merged_results(methods: list[ValidationMethod], stats_per_part) -> dict[str, float]:
    """Each method's result, keyed by its name, over the statistics of every part (a worker or a
    task), merged exactly."""
    merged = [m.empty() for m in methods]
    for stats in stats_per_part:
        merged = [m.merge(a, b) for m, a, b in zip(methods, merged, stats)]
    return {m.name: m.result(s) for m, s in zip(methods, merged)}


def _evaluate_task(payload_broadcast, layout: ColumnLayout, batch_size: int):
    def task(batches):
        import pyarrow as pa
        import torch

        from zoo.engine.arrow_data import read_columns

        adapter, model, criterion, build, methods = cloudpickle.loads(payload_broadcast.value)
        trainable = adapter.Trainable(model, criterion)
        stats = [m.empty() for m in methods]
        for batch in batches:
            if batch.num_rows == 0:
                continue
            inputs, target = layout.samples(read_columns([batch], layout.names).__getitem__, build)
            for start in range(0, len(target), batch_size):
                x = [torch.tensor(a[start:start + batch_size]) for a in inputs]
                y = torch.tensor(target[start:start + batch_size])
                stats = update_stats(methods, stats, trainable, x, y)
        yield pa.RecordBatch.from_pydict({"stats": [cloudpickle.dumps(stats)]})

    return task


def evaluate_frame(frame, feature_cols: list[str], label_col: str, model, criterion, build,
                   methods: list[ValidationMethod], batch_size: int) -> dict[str, float]:
    """`methods` of `model` over every row of `frame`, keyed by each method's name.

    Args:
        frame: a DataFrame whose columns are already model inputs (see
            `zoo.nnframes.columns.model_input_column`).
        feature_cols, label_col: the columns that feed the model and the criterion.
        model, criterion: a torch or Keras model and its loss, as NNEstimator takes them.
        build: the `zoo.nnframes.preprocessing.SampleBuilder` that turns columns into tensors.
        methods: the engine's metrics (Loss() reports the criterion's mean).
        batch_size: rows each task evaluates at once.
    """
    adapter = adapter_for(model)
    layout = ColumnLayout(tuple(feature_cols), label_col)
    sc = frame.sparkSession.sparkContext
    payload = sc.broadcast(cloudpickle.dumps((adapter, for_workers(adapter, model), criterion, build, methods)))
    try:
        rows = frame.select(*layout.names).mapInArrow(_evaluate_task(payload, layout, batch_size),
                                                       "stats binary").collect()
    finally:
        payload.unpersist()
    return merged_results(methods, [cloudpickle.loads(bytes(row["stats"])) for row in rows])
