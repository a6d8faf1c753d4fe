"""Orca's optimizers (``zoo.orca.learn.optimizers``) as the torch.optim optimizers they name.

Each takes Orca's argument names and becomes a factory ``params -> torch.optim.Optimizer`` that
every worker calls on its share of the parameters.
"""

from __future__ import annotations

import functools

from zoo.errors import ZooValueError


class Optimizer:
    """Base class: `torch_class` with keyword arguments in torch's names (`settings`)."""

    torch_class = "SGD"

    def __init__(self, **settings):
        self.settings = settings

    def get_optimizer(self):
        """The factory ``params -> torch.optim.Optimizer`` (Orca's name for it)."""
        import torch

        return functools.partial(getattr(torch.optim, self.torch_class), **self.settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings})"


def _no_decay(learningrate_decay: float, name: str) -> None:
    if learningrate_decay:
        raise ZooValueError(f"{name}(learningrate_decay={learningrate_decay}) is not supported: torch.optim has no "
                            f"per-step decay. Give learningrate_decay=0 and decay the rate between fit calls.")


class SGD(Optimizer):
    """Orca's SGD: learningrate, weightdecay, momentum, dampening, nesterov."""

    torch_class = "SGD"

    def __init__(self, learningrate: float = 1e-3, learningrate_decay: float = 0.0, weightdecay: float = 0.0,
                 momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False):
        _no_decay(learningrate_decay, "SGD")
        super().__init__(lr=learningrate, weight_decay=weightdecay, momentum=momentum, dampening=dampening,
                         nesterov=nesterov)


class Adam(Optimizer):
    """Orca's Adam: learningrate, beta1, beta2, epsilon."""

    torch_class = "Adam"

    def __init__(self, learningrate: float = 1e-3, learningrate_decay: float = 0.0, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8):
        _no_decay(learningrate_decay, "Adam")
        super().__init__(lr=learningrate, betas=(beta1, beta2), eps=epsilon)


class Adagrad(Optimizer):
    """Orca's Adagrad: learningrate, learningrate_decay (torch's lr_decay), weightdecay."""

    torch_class = "Adagrad"

    def __init__(self, learningrate: float = 1e-3, learningrate_decay: float = 0.0, weightdecay: float = 0.0):
        super().__init__(lr=learningrate, lr_decay=learningrate_decay, weight_decay=weightdecay)


class RMSprop(Optimizer):
    """Orca's RMSprop: learningrate, decayrate (torch's alpha), epsilon."""

    torch_class = "RMSprop"

    def __init__(self, learningrate: float = 1e-2, learningrate_decay: float = 0.0, decayrate: float = 0.99,
                 epsilon: float = 1e-8):
        _no_decay(learningrate_decay, "RMSprop")
        super().__init__(lr=learningrate, alpha=decayrate, eps=epsilon)
