"""Triggers: when to validate, checkpoint or stop, evaluated on the shared training state.

Every worker evaluates the same trigger on the same state (epoch, iteration, global loss), so
all workers agree without exchanging a message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.errors import ZooTypeError, ZooValueError, check_positive_int


@dataclass(frozen=True)
class TrainingState:
    """What a trigger may look at.

    Attributes:
        epoch: epochs completed so far.
        iteration: optimizer steps taken so far (across epochs).
        loss: the global training loss of the last step (NaN before the first step).
        epoch_end: True when the state is taken right after the last step of an epoch.
    """

    epoch: int
    iteration: int
    loss: float = math.nan
    epoch_end: bool = False


class Trigger:
    """Base class: `__call__(state)` says whether the trigger fires. Combine with `&` and `|`."""

    def __call__(self, state: TrainingState) -> bool:
        return False

    def __and__(self, other: "Trigger") -> "Trigger":
        return TriggerAnd(self, other)

    def __or__(self, other: "Trigger") -> "Trigger":
        return TriggerOr(self, other)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class EveryEpoch(Trigger):
    """Fires at the end of every epoch."""

    def __call__(self, state: TrainingState) -> bool:
        return state.epoch_end


class SeveralIteration(Trigger):
    """Fires every `interval` iterations."""

    def __init__(self, interval: int):
        self.interval = check_positive_int("interval", interval)

    def __call__(self, state: TrainingState) -> bool:
        return state.iteration > 0 and state.iteration % self.interval == 0


class MaxEpoch(Trigger):
    """Fires (ends training) once `max_epoch` epochs are complete."""

    def __init__(self, max_epoch: int):
        self.max_epoch = check_positive_int("max_epoch", max_epoch)

    def __call__(self, state: TrainingState) -> bool:
        return state.epoch >= self.max_epoch


class MaxIteration(Trigger):
    """Fires (ends training) once `max_iteration` optimizer steps are done."""

    def __init__(self, max_iteration: int):
        self.max_iteration = check_positive_int("max_iteration", max_iteration)

    def __call__(self, state: TrainingState) -> bool:
        return state.iteration >= self.max_iteration


class MinLoss(Trigger):
    """Fires (ends training) once the global training loss drops below `min_loss`."""

    def __init__(self, min_loss: float):
        if not isinstance(min_loss, (int, float)) or math.isnan(min_loss):
            raise ZooValueError(f"Expected `min_loss` to be a number. Received: min_loss={min_loss!r}.")
        self.min_loss = float(min_loss)

    def __call__(self, state: TrainingState) -> bool:
        return not math.isnan(state.loss) and state.loss < self.min_loss


class TriggerAnd(Trigger):
    """Fires when every one of `triggers` fires."""

    def __init__(self, *triggers: Trigger):
        self.triggers = tuple(check_trigger("trigger", t) for t in triggers)

    def __call__(self, state: TrainingState) -> bool:
        return all(t(state) for t in self.triggers)


class TriggerOr(Trigger):
    """Fires when any one of `triggers` fires."""

    def __init__(self, *triggers: Trigger):
        self.triggers = tuple(check_trigger("trigger", t) for t in triggers)

    def __call__(self, state: TrainingState) -> bool:
        return any(t(state) for t in self.triggers)


def check_trigger(name: str, value) -> Trigger:
    """Return `value` if it is a Trigger, else raise an error naming the parameter."""
    if not isinstance(value, Trigger):
        raise ZooTypeError(
            f"Expected `{name}` to be a zoo.engine trigger such as EveryEpoch(), SeveralIteration(n), "
            f"MaxEpoch(n), MaxIteration(n) or MinLoss(x). Received: {value!r} of type {type(value).__name__}."
        )
    return value
