import numpy as np
import pytest

from zoo.engine import AUC, MAE, Loss, Top1Accuracy


def brute_force_auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


def merged(metric, parts):
    stats = [metric.update(metric.empty(), out, tgt, loss) for out, tgt, loss in parts]
    total = stats[0]
    for s in stats[1:]:
        total = metric.merge(total, s)
    return metric.result(total)


def test_auc_merged_from_shards_equals_auc_of_all_samples_with_ties():
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(300), 2)  # many ties
    labels = (rng.random(300) < 0.4).astype(float)
    parts = [(scores[i::3].reshape(-1, 1), labels[i::3], 0.0) for i in range(3)]
    assert merged(AUC(), parts) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


def test_accuracy_mae_loss_are_exact_not_averages_of_averages():
    out_a, tgt_a = np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])      # 1 of 2 right
    out_b, tgt_b = np.array([[0.3, 0.7]] * 6), np.array([1] * 6)              # 6 of 6 right
    assert merged(Top1Accuracy(), [(out_a, tgt_a, 0), (out_b, tgt_b, 0)]) == pytest.approx(7 / 8)
    assert merged(Loss(), [(out_a, tgt_a, 2.0), (out_b, tgt_b, 3.0)]) == pytest.approx(5.0 / 8)
    mae = merged(MAE(), [(np.array([[1.0]]), np.array([0.0]), 0), (np.zeros((3, 1)), np.zeros(3), 0)])
    assert mae == pytest.approx(0.25)


def test_single_output_accuracy_uses_threshold():
    out, tgt = np.array([[0.2], [0.6], [-0.1]]), np.array([0, 1, 1])
    assert merged(Top1Accuracy(), [(out, tgt, 0)]) == pytest.approx(2 / 3)
    assert merged(Top1Accuracy(threshold=-0.5), [(out, tgt, 0)]) == pytest.approx(2 / 3)
