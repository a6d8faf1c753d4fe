"""setLearningRateDecay: step t trains with learningRate / (1 + decay * t), as BigDL's SGD in AZ."""

import numpy as np
import pytest
import torch

from tests.conftest import rows_in_partitions
from zoo.errors import ZooValueError
from zoo.nnframes import NNEstimator
from zoo.nnframes.lr_decay import InverseTimeDecay, decayed_rate


def test_each_step_uses_the_decayed_rate_and_a_restored_optimizer_continues_the_count():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = InverseTimeDecay(torch.optim.SGD, 0.1, 0.5)([param])
    assert type(optimizer) is torch.optim.SGD  # still element-wise: the engine may shard it
    for _ in range(3):
        param.grad = torch.ones(1)
        optimizer.step()
    assert param.item() == pytest.approx(-(0.1 + 0.1 / 1.5 + 0.1 / 2.0))

    restored_param = torch.nn.Parameter(param.detach().clone())
    restored = InverseTimeDecay(torch.optim.SGD, 0.1, 0.5)([restored_param])
    restored.load_state_dict(optimizer.state_dict())
    restored_param.grad = torch.ones(1)
    restored.step()
    assert restored_param.item() == pytest.approx(param.item() - decayed_rate(0.1, 0.5, 3))


def test_a_negative_decay_is_refused():
    with pytest.raises(ZooValueError, match="learningRateDecay"):
        InverseTimeDecay(torch.optim.SGD, 0.1, -1.0)


def reference_fit(model, x, y, lr, decay, steps):
    """Full-batch SGD on one process with the AZ rate schedule."""
    for t in range(steps):
        model.zero_grad()
        torch.nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= decayed_rate(lr, decay, t) * p.grad
    return model


def test_a_fit_with_decay_matches_the_schedule_on_one_process(spark):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0]], dtype=np.float32) + 0.5).astype(np.float32)
    rows = [(row.tolist(), float(t)) for row, t in zip(x, y[:, 0])]
    df = rows_in_partitions(spark, [rows[:4], rows[4:]], "features array<float>, label float")
    torch.manual_seed(0)
    start = torch.nn.Linear(2, 1)
    fits = {}
    for decay in (0.0, 0.5):
        est = NNEstimator(start, torch.nn.MSELoss()).setBatchSize(8).setMaxEpoch(4).setLearningRate(0.3) \
            .setLearningRateDecay(decay).setShuffle(False).setNumWorkers(2).setShowProgress(False)
        fits[decay] = est.fit(df).model
    reference = torch.nn.Linear(2, 1)
    reference.load_state_dict(start.state_dict())
    expected = reference_fit(reference, x, y, 0.3, 0.5, 4)
    for name, value in expected.state_dict().items():
        np.testing.assert_allclose(fits[0.5].state_dict()[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(fits[0.0].weight.detach().numpy(), expected.weight.detach().numpy(), atol=1e-3)


def test_a_decay_for_a_keras_model_names_kerass_own_schedule():
    keras = pytest.importorskip("keras", reason="the Keras check needs Keras 3: pip install 'spark-zoo[tf]'")
    from zoo.nnframes.lr_decay import with_decay

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ZooValueError, match=r"InverseTimeDecay\(0.1, decay_steps=1, decay_rate=0.5\)"):
        with_decay("sgd", 0.1, 0.5, model)
    assert with_decay("sgd", 0.1, 0.0, model) == "sgd"
