"""Zoo's main job: train an NNClassifier across 2 workers on a generated DataFrame on local Spark,
print its loss and accuracy, save the model and load it back.

Run it with `bash scripts/quickstart.sh` (sets everything up first) or, once set up,
`.venv/bin/python scripts/quickstart.py`. Works the same with spark-submit.
"""

import os
import tempfile

import numpy as np
import torch
from pyspark.sql import functions as F

from zoo import init_spark
from zoo.engine import EveryEpoch, Loss, MaxEpoch, Top1Accuracy
from zoo.nnframes import NNClassifier, NNClassifierModel


def generated_data(spark, rows: int = 20_000, seed: int = 0):
    """Three noisy classes in 10 dimensions, as a DataFrame of (features array<double>, label)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.6, size=(3, 10))
    labels = rng.integers(0, 3, size=rows)
    features = centers[labels] + rng.normal(size=(rows, 10))
    return spark.createDataFrame(
        [(row.tolist(), float(label)) for row, label in zip(features, labels)], ["features", "label"])


def main() -> None:
    spark = init_spark("local[2]", app_name="zoo-quickstart")
    train, test = generated_data(spark).randomSplit([0.8, 0.2], seed=1)
    train, test = train.cache(), test.cache()

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    classifier = NNClassifier(model=model, criterion=torch.nn.CrossEntropyLoss(), batchSize=128,
                              endWhen=MaxEpoch(5), optimMethod=torch.optim.Adam, learningRate=0.01)
    classifier.setValidation(EveryEpoch(), test, [Loss(), Top1Accuracy()])
    fitted = classifier.fit(train)

    losses = [h["loss"] for h in fitted.history if h["event"] == "step"]
    validation = [h["metrics"] for h in fitted.history if h["event"] == "validation"]
    print(f"training loss: first step {losses[0]:.4f}, last step {losses[-1]:.4f}")
    print(f"validation after the last epoch: loss {validation[-1]['Loss']:.4f}, "
          f"accuracy {validation[-1]['Top1Accuracy']:.4f}")

    path = os.path.join(tempfile.mkdtemp(prefix="zoo-quickstart-"), "model")
    fitted.save(path)
    reloaded = NNClassifierModel.load(path)
    accuracy = (reloaded.transform(test)
                .select(F.avg((F.col("prediction") == F.col("label")).cast("double"))).first()[0])
    print(f"saved to {path}; reloaded model's test accuracy: {accuracy:.4f}")
    spark.stop()


if __name__ == "__main__":
    main()
