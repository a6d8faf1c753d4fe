"""`Estimator.from_torch`: Orca's PyTorch Estimator, training through nnframes on Zoo's engine."""

from __future__ import annotations

import functools

from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes.preprocessing import LabelToIndex, ScalarToTensor
from zoo.orca.learn.spark_estimator import SparkEstimator

#: torch losses whose target is a class index per sample (int64, shape [batch]).
INDEX_TARGET_LOSSES = ("CrossEntropyLoss", "NLLLoss", "MultiMarginLoss")


def optim_method_of(optimizer):
    """What NNEstimator's optimMethod takes for Orca's `optimizer`: a torch.optim class as is, an
    optimizer instance as its class with its hyper-parameters (the instance's own parameters
    are the driver model's; each worker builds one over its shard), None as SGD."""
    import torch

    from zoo.orca.learn.optimizers import Optimizer

    if isinstance(optimizer, Optimizer):
        return optimizer.get_optimizer()
    if optimizer is None or (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
        return optimizer or torch.optim.SGD
    if isinstance(optimizer, torch.optim.Optimizer):
        groups = optimizer.param_groups
        settings = [{k: g[k] for k in optimizer.defaults} for g in groups]
        if any(s != settings[0] for s in settings[1:]):
            raise ZooValueError(f"Expected one set of optimizer settings for all parameters. Received "
                                f"{len(groups)} param_groups with different settings; use one group.")
        return functools.partial(type(optimizer), **settings[0])
    if callable(optimizer):
        return optimizer  # a factory params -> optimizer, as NNEstimator's optimMethod takes
    raise ZooTypeError(f"Expected `optimizer` to be a torch.optim.Optimizer (instance or class), an optimizer "
                       f"from zoo.orca.learn.optimizers, or None. "
                       f"Received: {type(optimizer).__name__}.")


class PyTorchSparkEstimator(SparkEstimator):
    """Orca's PyTorch Estimator on Spark; create it with `Estimator.from_torch`."""

    def _label_step(self, source):
        step = source.label_step
        if type(self.loss).__name__ in INDEX_TARGET_LOSSES and (step is None or isinstance(step, ScalarToTensor)):
            return LabelToIndex(0)
        return step


class Estimator:
    """Analytics Zoo Orca's ``zoo.orca.learn.pytorch.Estimator``."""

    @staticmethod
    def from_torch(*, model, optimizer=None, loss=None, metrics=None, backend: str = "spark",
                   model_dir: str | None = None, config: dict | None = None, workers_per_node: int = 1,
                   use_tqdm: bool = False, scheduler_creator=None, training_operator_cls=None,
                   initialization_hook=None, scheduler_step_freq: str = "batch") -> PyTorchSparkEstimator:
        """An Estimator that trains the torch.nn.Module `model` on Spark.

        Args:
            model: the torch.nn.Module, or a creator ``config -> Module`` (called with `config`).
            optimizer: a torch.optim.Optimizer instance or class, or a creator
                ``(model, config) -> Optimizer``; default SGD with Zoo's default learning rate (1e-3).
            loss: a torch loss module (or a creator ``config -> loss``). Class-index losses
                (CrossEntropyLoss, NLLLoss) read 0-based integer labels.
            metrics: metric instances, classes or names from `zoo.orca.learn.metrics` ("accuracy",
                "mae", "auc"); the loss is always reported.
            backend: "spark" (or Orca's "bigdl"): batch_size is the global batch; Orca's
                "torch_distributed" / "horovod": batch_size is per worker. All run on Zoo's engine.
            model_dir: where checkpoints go (every epoch unless fit's checkpoint_trigger says
                otherwise); also where `load_latest_orca_checkpoint` reads.
            config: the dict given to creators.
            workers_per_node, use_tqdm, scheduler_step_freq: Orca's Ray options; on Spark every
                task slot is a worker and the driver shows progress, so they change nothing.
            scheduler_creator, training_operator_cls, initialization_hook: Orca's Ray hooks; Zoo
                refuses them (see docs/migrating-from-analytics-zoo.md for the equivalents).
        """
        import torch

        hooks = {"scheduler_creator": scheduler_creator, "training_operator_cls": training_operator_cls,
                 "initialization_hook": initialization_hook}
        given = sorted(name for name, value in hooks.items() if value is not None)
        if given:
            raise ZooValueError(f"{given} are hooks of Orca's Ray backends, which Zoo does not run. Drop them "
                                f"(docs/migrating-from-analytics-zoo.md lists what replaces each).")
        config = config or {}
        if not isinstance(model, torch.nn.Module):
            if not callable(model):
                raise ZooTypeError(f"Expected `model` to be a torch.nn.Module or a creator config -> Module. "
                                   f"Received: {type(model).__name__}.")
            model = model(config)
        if loss is None:
            raise ZooValueError("Expected a `loss`, e.g. loss=torch.nn.CrossEntropyLoss().")
        if not isinstance(loss, torch.nn.Module) and callable(loss) and _is_creator(loss):
            loss = loss(config)
        if callable(optimizer) and not isinstance(optimizer, (type, torch.optim.Optimizer)) and _is_creator(
                optimizer, 2):
            optimizer = optimizer(model, config)
        return PyTorchSparkEstimator(model, loss, optim_method_of(optimizer), metrics, model_dir, backend,
                                     config=config)


def _is_creator(function, arguments: int = 1) -> bool:
    """Whether `function` is a creator taking `arguments` arguments (config -> loss, (model, config)
    -> optimizer) rather than a loss (output, target) or an optimizer factory (params)."""
    import inspect

    try:
        return len(inspect.signature(function).parameters) == arguments
    except (TypeError, ValueError):
        return False
