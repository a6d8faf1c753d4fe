"""spark-submit example: train an NNClassifier on a DataFrame and save the fitted model.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master local[2] \
        scripts/examples/train_classifier.py --model-out /tmp/zoo-model --test-out /tmp/zoo-test.parquet

Reads `--input` (Parquet with an array<double> `features` column and a double `label` column) or,
without it, generates three noisy classes in 10 dimensions. Holds out 20% of the rows, trains a
small MLP across all task slots, prints loss and held-out accuracy, saves the NNClassifierModel
to `--model-out` and, with `--test-out`, the held-out rows as Parquet (batch_inference.py's input).
"""

import argparse
import logging

import numpy as np
import torch
from pyspark.sql import functions as F

from zoo import init_spark
from zoo.engine import EveryEpoch, Loss, MaxEpoch, Top1Accuracy
from zoo.nnframes import NNClassifier

#: Size of the generated data set when no --input is given.
DEFAULT_ROWS = 4000
#: Classes and feature width of the generated data set.
NUM_CLASSES, NUM_FEATURES = 3, 10


def generated_data(spark, rows: int, seed: int = 0):
    """Three noisy classes in 10 dimensions as (features array<double>, label double)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(NUM_CLASSES, NUM_FEATURES))
    labels = rng.integers(0, NUM_CLASSES, size=rows)
    features = centers[labels] + rng.normal(size=(rows, NUM_FEATURES))
    return spark.createDataFrame([(row.tolist(), float(label)) for row, label in zip(features, labels)],
                                 ["features", "label"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-out", required=True, help="folder to save the fitted NNClassifierModel to")
    parser.add_argument("--input", help="Parquet with `features` (array<double>) and `label` (double)")
    parser.add_argument("--test-out", help="write the held-out rows here as Parquet")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows to generate without --input")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    spark = init_spark(app_name="zoo-train-classifier")  # the master comes from spark-submit
    data = spark.read.parquet(args.input) if args.input else generated_data(spark, args.rows)
    train, test = data.randomSplit([0.8, 0.2], seed=1)
    train, test = train.cache(), test.cache()
    width = len(train.first()["features"])
    classes = int(train.agg(F.max("label")).first()[0]) + 1

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(width, 32), torch.nn.ReLU(), torch.nn.Linear(32, classes))
    classifier = NNClassifier(model=model, criterion=torch.nn.CrossEntropyLoss(), batchSize=args.batch_size,
                              endWhen=MaxEpoch(args.epochs), optimMethod=torch.optim.Adam, learningRate=0.01)
    classifier.setValidation(EveryEpoch(), test, [Loss(), Top1Accuracy()]).setShowProgress(False)
    fitted = classifier.fit(train)

    losses = [h["loss"] for h in fitted.history if h["event"] == "step"]
    last = [h["metrics"] for h in fitted.history if h["event"] == "validation"][-1]
    print(f"trained {len(losses)} steps: loss {losses[0]:.4f} -> {losses[-1]:.4f}; "
          f"held-out accuracy {last['Top1Accuracy']:.4f}")
    fitted.write().overwrite().save(args.model_out)
    print(f"saved the model to {args.model_out}")
    if args.test_out:
        test.write.mode("overwrite").parquet(args.test_out)
        print(f"wrote {test.count()} held-out rows to {args.test_out}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
