"""Preprocessing given as AZ's sizes: [2] is SeqToTensor, [[1], [2]] cuts one column into inputs."""

import numpy as np
import pytest
import torch

from zoo.errors import ZooValueError
from zoo.nnframes import NNClassifier, NNModel, SeqToMultipleTensors, SeqToTensor
from zoo.nnframes.preprocessing import from_sizes


def test_sizes_become_preprocessing_and_anything_else_is_kept():
    assert from_sizes([2]).shape == (2,)
    assert from_sizes((2, 3)).shape == (2, 3)
    multiple = from_sizes([[1], [2]])
    assert isinstance(multiple, SeqToMultipleTensors) and [p.shape for p in multiple.parts] == [(1,), (2,)]
    steps = [SeqToTensor([1]), SeqToTensor([2])]
    assert from_sizes(steps) is steps and from_sizes(None) is None and from_sizes([True]) == [True]


def test_seq_to_multiple_tensors_cuts_each_row_in_order():
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    first, second = SeqToMultipleTensors([[1], [2]]).transform(values)
    np.testing.assert_array_equal(first, [[1.0], [4.0]])
    np.testing.assert_array_equal(second, [[2.0, 3.0], [5.0, 6.0]])
    with pytest.raises(ZooValueError, match="rows of 3 elements.*Received rows of 4"):
        SeqToMultipleTensors([[1], [2]]).transform(np.ones((2, 4)))


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(1, 2), torch.nn.Linear(2, 2)

    def forward(self, a, b):
        return self.a(a) + self.b(b)


def test_one_column_feeds_a_two_input_model(spark):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    label = (x[:, 0] + x[:, 1] - x[:, 2] > 0).astype(float)
    df = spark.createDataFrame([(row.tolist(), float(t)) for row, t in zip(x, label)], ["features", "label"])
    torch.manual_seed(0)
    fitted = NNClassifier(TwoInputs(), torch.nn.CrossEntropyLoss(), [[1], [2]]).setBatchSize(16) \
        .setMaxEpoch(4).setLearningRate(0.5).setShowProgress(False).fit(df)
    losses = [h["loss"] for h in fitted.history if h["event"] == "step"]
    assert losses[-1] < losses[0]

    rows = NNModel(fitted.model, [[1], [2]]).transform(df).collect()
    inputs = torch.tensor([r.features for r in rows], dtype=torch.float32)
    expected = fitted.model(inputs[:, :1], inputs[:, 1:]).detach().numpy()
    np.testing.assert_allclose([r.prediction for r in rows], expected, rtol=1e-5, atol=1e-6)
