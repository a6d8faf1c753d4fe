"""The exception of ``zoo.registry``."""

from __future__ import annotations

from zoo.errors import ZooRuntimeError


class RegistryError(ZooRuntimeError):
    """The model registry cannot do what was asked: it is unreachable or invalid, the model, alias
    or version does not exist, a version's files are missing, or an alias has no earlier version
    to roll back to. The message names the tracking URI, model and version concerned, and the fix.

    A subclass of `zoo.errors.ZooRuntimeError`, so ``except RuntimeError`` catches it.
    """
