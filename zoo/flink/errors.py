"""Exceptions raised by `zoo.flink`; each subclasses the builtin users already catch."""

from __future__ import annotations

from zoo.errors import ZooTypeError, ZooValueError

#: The command that builds the Flink environment (PyFlink, Java pieces) on a fresh machine.
SETUP_COMMAND = "bash scripts/setup_flink.sh"


class FlinkSetupError(RuntimeError):
    """Flink cannot run here: PyFlink is not installed in this Python, Java is missing or of a
    version Flink 2.3 does not run on, or Zoo's Flink jars are not built. The message names the fix."""


class ModelSignatureError(ZooTypeError):
    """Columns given to a Zoo model in Flink do not match the model's signature (checked before
    the job runs); the message names the model's inputs and the SQL types they take."""


class ModelPathError(ZooValueError):
    """A model path that Flink's workers cannot read; the message names the path and the fix."""
