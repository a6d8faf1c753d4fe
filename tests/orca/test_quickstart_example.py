"""Analytics Zoo's "Orca PyTorch Quickstart" (LeNet on MNIST, docs/Orca/orca-pytorch-quickstart.md),
run as written there with two changes: BigDL's Adam becomes zoo.orca.learn.optimizers.Adam (Orca's
own later name for it) and MNIST, which cannot be downloaded here, becomes a synthetic 28x28
ten-class set read through the same DataLoaders."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from zoo.orca.learn.optimizers import Adam  # noqa: E402


class LeNet(nn.Module):
    def __init__(self):
        super(LeNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 20, 5, 1)
        self.conv2 = nn.Conv2d(20, 50, 5, 1)
        self.fc1 = nn.Linear(4 * 4 * 50, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2, 2)
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2, 2)
        x = x.view(-1, 4 * 4 * 50)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def synthetic_digits(n, seed):
    """1x28x28 images whose class is where a bright 6x6 patch sits (one of ten places), plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.normal(0.0, 0.3, size=(n, 1, 28, 28)).astype(np.float32)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 5)
        images[i, 0, 4 + row * 12:10 + row * 12, 1 + col * 5:7 + col * 5] += 2.0
    return torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


@pytest.mark.slow
def test_orca_pytorch_quickstart_trains_lenet(spark):
    from zoo.orca import init_orca_context

    class args:  # the quickstart's argparse defaults, smaller
        lr, seed, batch_size, test_batch_size, epochs = 0.001, 0, 64, 256, 2

    init_orca_context(cores=2)  # the quickstart's "sc = init_orca_context(cores=1, memory='20g')"

    model = LeNet()
    model.train()
    criterion = nn.NLLLoss()
    adam = Adam(args.lr)

    torch.manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(synthetic_digits(1024, 0), batch_size=args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(synthetic_digits(256, 1), batch_size=args.test_batch_size,
                                              shuffle=False)

    from zoo.orca.learn.pytorch import Estimator
    zoo_estimator = Estimator.from_torch(model=model, optimizer=adam, loss=criterion, backend="bigdl")

    from zoo.orca.learn.metrics import Accuracy
    from zoo.orca.learn.trigger import EveryEpoch
    zoo_estimator.fit(data=train_loader, epochs=args.epochs, validation_data=test_loader,
                      validation_methods=[Accuracy()], checkpoint_trigger=EveryEpoch())

    validations = [e["metrics"] for e in zoo_estimator.history if e["event"] == "validation"]
    assert len(validations) == args.epochs
    assert validations[-1]["Top1Accuracy"] > 0.9
    result = zoo_estimator.evaluate(test_loader, validation_metrics=[Accuracy()])
    assert result["Top1Accuracy"] == pytest.approx(validations[-1]["Top1Accuracy"])
