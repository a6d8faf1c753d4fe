"""Analytics Zoo's learning rate decay (`setLearningRateDecay`) on any torch optimizer.

BigDL's SGD, which AZ's NNEstimator trains with, takes step t (counted from 0) with the rate
``learningRate / (1 + learningRateDecay * t)``. `InverseTimeDecay` builds the user's torch
optimizer and sets that rate before each of its steps. The optimizer keeps its own class, so the
engine still runs element-wise optimizers on shards of the parameters, and the step count lives
in the optimizer's param group, so it is saved with checkpoints and resumed with them.
"""

from __future__ import annotations

from zoo.engine.adapters import framework_of
from zoo.errors import ZooValueError

#: Param-group keys where the decay keeps the base rate and the steps taken.
BASE_LR_KEY = "zoo_base_lr"
STEP_KEY = "zoo_decay_step"


def decayed_rate(base_lr: float, decay: float, step: int) -> float:
    """The learning rate of step `step` (from 0): base_lr / (1 + decay * step)."""
    return base_lr / (1.0 + decay * step)


class InverseTimeDecay:
    """An `optimMethod` factory (params -> optimizer): `optim_method` built as usual (a
    torch.optim class gets `learning_rate`), its rate decayed per step as in BigDL's SGD.

    Args:
        optim_method: a torch.optim.Optimizer class or a callable params -> optimizer.
        learning_rate: the rate given to an optimizer class.
        decay: `learningRateDecay`, >= 0.
    """

    def __init__(self, optim_method, learning_rate: float, decay: float):
        if not decay >= 0:
            raise ZooValueError(f"Expected `learningRateDecay` >= 0. Received: learningRateDecay={decay!r}.")
        self.optim_method = optim_method
        self.learning_rate = float(learning_rate)
        self.decay = float(decay)

    def __call__(self, params):
        from zoo.engine.adapters.torch import build_optimizer

        optimizer = build_optimizer(self.optim_method, params, self.learning_rate)
        for group in optimizer.param_groups:
            group[BASE_LR_KEY] = group["lr"]
            group[STEP_KEY] = 0
        decay = self.decay

        def before_step(optimizer, args, kwargs):
            for group in optimizer.param_groups:
                group["lr"] = decayed_rate(group[BASE_LR_KEY], decay, group[STEP_KEY])
                group[STEP_KEY] += 1

        optimizer.register_step_pre_hook(before_step)
        return optimizer

    def __repr__(self) -> str:
        return f"InverseTimeDecay({self.optim_method!r}, learning_rate={self.learning_rate}, decay={self.decay})"


def with_decay(optim_method, learning_rate: float, decay: float, model=None):
    """`optim_method` as the fit should use it: unchanged without decay, else InverseTimeDecay.

    Raises:
        ZooValueError: a decay is set for a Keras model (it names Keras' own schedule).
    """
    if not decay:
        return optim_method
    if model is not None and framework_of(model) == "keras":
        raise ZooValueError(
            f"setLearningRateDecay applies to torch models. Received learningRateDecay={decay} for a Keras "
            f"model: give optimMethod a Keras optimizer with learning_rate=keras.optimizers.schedules."
            f"InverseTimeDecay({learning_rate}, decay_steps=1, decay_rate={decay}), the same schedule."
        )
    return InverseTimeDecay(optim_method, learning_rate, decay)
