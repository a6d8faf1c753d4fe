"""Exceptions raised by ``zoo.inference``; each subclasses the builtin users already catch.

Bad input or arguments subclass :class:`zoo.errors.ZooValueError`, so ``except ValueError``
catches them too; a model of a type the inference path cannot take subclasses
:class:`zoo.errors.ZooTypeError` (a ``TypeError``).
"""

from __future__ import annotations

from zoo.errors import ZooTypeError, ZooValueError


class InferenceArgumentError(ZooValueError):
    """An argument of ``zoo.inference`` (a backend, export format, quantization preset, backend
    option, example input or label) is not one it can use; the message names the argument, what
    is expected and what was received."""


class UnsupportedModelError(ZooTypeError):
    """The object given as a model is of a type this path cannot take (export, quantize or a
    backend's loader), or a backend lacks what a request needs; the message names the types taken."""


class InferenceInputError(ZooValueError):
    """Data given to ``predict`` does not fit the model's input signature.

    The message names the expected signature (names, dtypes, shapes with ``?`` for a dynamic
    dimension) and what was received.
    """


class ModelLoadError(ZooValueError):
    """A model file is missing, unreadable or not of the format tried; the message names both."""


class ExportError(ZooValueError):
    """A conversion failed, or the converted model's outputs differ from the source model's."""


class NotLoadedError(ZooValueError):
    """``predict`` was called on an ``InferenceModel`` that holds no model (never loaded, or released)."""


#: Converter messages can run to pages of tracer output; messages keep this many characters.
MAX_CAUSE_CHARS = 400


def short(exc: BaseException) -> str:
    """``Type: first lines of the message``, cut to ``MAX_CAUSE_CHARS`` (the cause stays chained)."""
    text = " ".join(str(exc).strip().split())
    if len(text) > MAX_CAUSE_CHARS:
        text = text[:MAX_CAUSE_CHARS] + " ..."
    return f"{type(exc).__name__}: {text}"
