"""Exceptions raised by Zoo's core, each a subclass of the builtin users already catch.

Every exception Zoo raises is defined in an errors module: this one for the core (context,
packaging, ``zoo-submit``, the training engine, nnframes, streaming) and one per package for the
package's own (`zoo.inference.errors`, `zoo.serving.errors`, `zoo.storage.errors`,
`zoo.registry.errors`, `zoo.flink.errors`). Each subclasses the builtin a caller would catch
(``ValueError`` for bad input, ``TypeError`` for a wrong type, ``RuntimeError`` for a failed job,
``ConnectionError`` for an unreachable service), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class ZooValueError(ValueError):
    """A parameter or a DataFrame does not fit what Zoo expects; the message says how to fix it."""


class ZooTypeError(TypeError):
    """An argument has a type Zoo cannot use; the message names the expected type."""


class NotFittedError(ValueError):
    """A model was used before `fit` produced its weights."""


class SchemaDriftError(ZooValueError):
    """Streamed data no longer matches the schema it was read with or the model was trained on;
    the message names the column (or field), the expected and the received type."""


class ZooRuntimeError(RuntimeError):
    """Something went wrong while Zoo ran a job (not the caller's input); the message says what
    happened and what to change."""


class UsageError(ZooValueError):
    """The ``zoo-submit`` command line is not one it understands; the message says what to change."""


class MasterUnreachableError(ConnectionError):
    """The Spark master (or the cluster manager) cannot be reached; the message names the URL tried."""


class PackagingError(RuntimeError):
    """The Python environment could not be packed; the message says why and how to fix it."""


class DevClusterError(RuntimeError):
    """The dev cluster (zoo.devcluster) could not start, be reached or be stopped; the message
    says which step failed, where its log is, and what to do."""


class NamespacesUnavailableError(DevClusterError):
    """This machine cannot make the network and mount namespaces a dev cluster needs (not root, a
    missing tool, or ``ip netns add`` refused); the message gives the reason."""


class WorkerError(RuntimeError):
    """One or more training workers failed; carries each worker's exception and traceback.

    Attributes:
        failures: list of ``(rank, traceback_text)`` pairs, one per failed worker; rank ``None``
            is the job itself, failed on the driver's side with no worker reporting why (an
            executor lost beyond Spark's retries, a cancelled job), as the driver saw it.
        context: what was running (``"training"``, ``"validation"``).
        job: the engine that ran the job (``"Spark"``, ``"Flink"``), named in a driver-side failure.
    """

    def __init__(self, failures: list[tuple[int | None, str]], context: str = "training", job: str = "Spark"):
        self.failures = list(failures)
        self.context = context
        self.job = job
        shown = "\n".join(f"--- {_failed_party(rank, job)} ---\n{tb.rstrip()}" for rank, tb in self.failures)
        if all(rank is None for rank, _ in self.failures):
            headline = (f"The {job} job of the {context} failed before any worker reported an error "
                        f"(the driver's {job} log has the executors' side). The driver saw:")
        else:
            headline = f"{len(self.failures)} worker(s) failed during {context}. Worker traceback(s) follow:"
        super().__init__(f"{headline}\n{shown}")

    def __reduce__(self):
        return (WorkerError, (self.failures, self.context, self.job))


def _failed_party(rank: int | None, job: str) -> str:
    return f"the {job} job, seen from the driver" if rank is None else f"worker {rank}"


class NonFiniteLossError(WorkerError, FloatingPointError):
    """The training loss became NaN or infinite, so the fit was stopped at that iteration.

    Every worker sees the same (globally reduced) loss, so every worker stops at the same step;
    the driver raises this with what the workers reported.

    Attributes:
        iteration: the 1-based iteration whose loss was not finite.
        epoch: the 0-based epoch it belonged to.
        loss: the loss value (nan, inf or -inf).
        failures: ``(rank, traceback_text)`` per worker that reported it (empty on a worker).
    """

    def __init__(self, iteration: int, epoch: int, loss: float, failures: list[tuple[int, str]] = ()):
        self.iteration, self.epoch, self.loss = int(iteration), int(epoch), float(loss)
        self.failures = list(failures)
        self.context = "training"
        ranks = sorted(rank for rank, _ in self.failures)
        Exception.__init__(
            self,
            f"The training loss became {self.loss} at iteration {self.iteration} (epoch {self.epoch + 1}); the fit "
            f"was stopped there. Lower learningRate, clip gradients (setGradientClippingByL2Norm), scale the "
            f"features, or check that the criterion fits the labels (e.g. log of 0 in a custom loss)."
            + (f" Reported by worker(s) {ranks}." if ranks else "")
        )

    def __reduce__(self):
        return (NonFiniteLossError, (self.iteration, self.epoch, self.loss, self.failures))


class PeerTimeout(RuntimeError):
    """Another worker stopped taking part in a shared-memory step: treated like a lost gloo peer."""


class StreamStopped(ZooRuntimeError):
    """A micro-batch arrived after `StreamingFit.stop`: left untrained for the next query."""


class PublishError(ZooRuntimeError):
    """Publishing a version failed; the training state up to that micro-batch is kept."""


def check_positive_int(name: str, value, *, allow_none: bool = False):
    """Return `value` when it is a positive int (or None, where `allow_none`); else raise.

    Raises:
        ZooValueError: naming the parameter `name` and the value received.
    """
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "a positive int or None" if allow_none else "a positive int"
        raise ZooValueError(f"Expected `{name}` to be {expected}. Received: {name}={value!r}.")
    return value
