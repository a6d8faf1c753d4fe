"""Helpers of the streaming tests: micro-batch files for Spark's file source, a small regressor,
and running a streaming fit until the data there now is trained."""

import os

import numpy as np
import pandas as pd
import torch

from zoo.nnframes import NNEstimator

SCHEMA = "features array<double>, label double"
ROWS_PER_FILE = 64
TRUE_WEIGHTS = np.array([2.0, -3.0])


def write_batch_file(folder, index: int, width: int = 2) -> None:
    """Micro-batch file `index` (one per trigger): a linear target of `width` features. Files get
    increasing modification times, the order the file source reads them in.

    A running query lists the folder at any moment, so the file appears whole and with its final
    time, by a rename from a name the file source ignores: a query that saw it with the time of its
    writing would count every later file, whose time is older, as past the source's maxFileAge and
    never read it."""
    rng = np.random.default_rng(index)
    x = rng.normal(size=(ROWS_PER_FILE, width))
    y = x[:, :2] @ TRUE_WEIGHTS + 0.5
    name = f"part-{index:03d}.parquet"
    staged = os.path.join(folder, f".{name}.writing")
    pd.DataFrame({"features": list(x), "label": y}).to_parquet(staged)
    os.utime(staged, (1_700_000_000 + index, 1_700_000_000 + index))
    os.replace(staged, os.path.join(folder, name))


def batch_files(tmp_path, count: int):
    """A folder `files` under `tmp_path` holding micro-batch files 0..count-1."""
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(count):
        write_batch_file(folder, i)
    return folder


def file_stream(spark, folder, schema=SCHEMA):
    """A streaming DataFrame over the parquet files in `folder`, one file per micro-batch."""
    return spark.readStream.schema(schema).option("maxFilesPerTrigger", 1).parquet(str(folder))


def regressor():
    """A linear torch regressor with Adam (its state must survive micro-batches), always the same start."""
    torch.manual_seed(0)
    return NNEstimator(model=torch.nn.Linear(2, 1), criterion=torch.nn.MSELoss(), batchSize=16,
                       optimMethod=torch.optim.Adam, learningRate=0.3, maxEpoch=2,
                       shuffle=False).setShowProgress(False)


def weights(handle) -> np.ndarray:
    """The latest model's parameters, flat."""
    model = handle.latestModel().model
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()


def run_to_end(spark, folder, checkpoint, estimator=None, **options):
    """Train on every file in `folder` with a new query, then stop it; returns the handle."""
    handle = (estimator or regressor()).fitStream(file_stream(spark, folder), checkpoint_location=str(checkpoint), **options)
    try:
        handle.processAllAvailable()
    finally:
        handle.stop()
    return handle
