"""Evaluate a model on a DataFrame where the data lives, for any framework the adapters know.

Each task keeps the metrics' sufficient statistics over its rows; the driver merges them, so the
results are exact (never an average of per-task averages).
"""

from __future__ import annotations

import cloudpickle

from zoo.engine.adapters import adapter_for, for_workers
from zoo.engine.arrow_data import ColumnLayout
from zoo.engine.metrics import ValidationMethod


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
                y = target[start:start + batch_size]
                output, loss_sum = trainable.evaluate(x, torch.tensor(y))
                stats = [m.update(s, output, y, loss_sum) for m, s in zip(methods, stats)]
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
    merged = [m.empty() for m in methods]
    for row in rows:
        merged = [m.merge(a, b) for m, a, b in zip(methods, merged, cloudpickle.loads(bytes(row["stats"])))]
    return {m.name: m.result(s) for m, s in zip(methods, merged)}
