import math

import pytest

from zoo.engine import EveryEpoch, MaxEpoch, MaxIteration, MinLoss, SeveralIteration
from zoo.engine.triggers import TrainingState


def test_every_epoch_fires_only_at_epoch_end():
    assert EveryEpoch()(TrainingState(1, 10, 0.5, epoch_end=True))
    assert not EveryEpoch()(TrainingState(1, 11, 0.5))


def test_several_iteration_fires_every_n():
    trigger = SeveralIteration(3)
    assert [i for i in range(10) if trigger(TrainingState(0, i))] == [3, 6, 9]


def test_end_triggers():
    assert MaxEpoch(2)(TrainingState(2, 0)) and not MaxEpoch(2)(TrainingState(1, 99))
    assert MaxIteration(5)(TrainingState(0, 5)) and not MaxIteration(5)(TrainingState(9, 4))
    assert MinLoss(0.1)(TrainingState(0, 1, 0.05)) and not MinLoss(0.1)(TrainingState(0, 1, math.nan))


def test_combined_triggers():
    either = MaxIteration(100) | MinLoss(0.1)
    assert either(TrainingState(0, 3, 0.01)) and not either(TrainingState(0, 3, 0.5))
    both = EveryEpoch() & SeveralIteration(2)
    assert both(TrainingState(1, 4, epoch_end=True)) and not both(TrainingState(1, 3, epoch_end=True))


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3"])
def test_bad_trigger_arguments_name_the_field(bad):
    with pytest.raises(ValueError, match="max_epoch"):
        MaxEpoch(bad)
