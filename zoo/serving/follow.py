"""Serving a model from the registry, following an alias: ``path: models:/name@champion``.

A worker resolves the URI through `zoo.registry.ModelRegistry.resolve`, loads that version, and
follows the alias from then on:

    notification on Redis pub/sub `zoo.registry.alias_channel(name)`, or a poll every ``follow_poll_s``
      -> resolve the alias again; a version not seen yet is loaded in a background thread
      -> refused before the swap when it cannot be resolved or loaded (missing files, an unreachable
         registry) or when its input signature differs from the serving one: logged, counted
         (``zoo_serving_swaps_refused``), and the old version keeps serving
      -> otherwise handed to the worker, which switches between two batches (`AliasFollower.take`)

A pinned version (``models:/name/3``) is resolved once and never followed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import redis

from zoo.serving.config import ModelConfig
from zoo.serving.connection import UNAVAILABLE
from zoo.serving.errors import ServingConfigError
from zoo.serving.metrics import record_swap

logger = logging.getLogger(__name__)

#: ``models:/name@alias`` or ``models:/name/version`` (MLflow's model URIs).
#: Longest single wait for a pub/sub message, so the thread notices `close` and the poll deadline.
_LISTEN_S = 1.0
#: Longest pause between two attempts to reach Redis' pub/sub again.
_MAX_BACKOFF_S = 5.0


def is_registry_uri(path: str) -> bool:
    """Whether a model ``path`` names a registry model (``models:/...``) rather than a file."""
    return isinstance(path, str) and path.startswith("models:/")


def parse_model_uri(path: str) -> tuple[str, str | None, int | None]:
    """``(name, alias, version)`` of ``models:/name@alias`` (version None) or ``models:/name/3``
    (alias None).

    Raises:
        ServingConfigError: ``path`` is not of either form.
    """
    from zoo.registry.defaults import parse_model_uri as parse

    parsed = parse(path)
    if parsed is None:
        raise ServingConfigError(f"Expected a registry model path `models:/name@alias` (e.g. models:/ranker@champion) "
                                 f"or `models:/name/version` (e.g. models:/ranker/3). Received path={path!r}.")
    return parsed


def open_registry(model: ModelConfig, redis_url: str | None = None) -> Any:
    """The `zoo.registry.ModelRegistry` of ``model.registry`` (None: its default tracking URI)."""
    try:
        from zoo.registry import ModelRegistry, RegistryError
    except ImportError as exc:
        raise ServingConfigError(
            f"Model {model.name!r} is served from the registry ({model.path}), which needs MLflow ({exc}). "
            f"Install Zoo with the `registry` extra: pip install 'spark-zoo[registry,serving]'.") from exc
    try:
        return ModelRegistry(model.registry, redis_url=redis_url)
    except RegistryError as exc:
        raise ServingConfigError(f"Cannot open the registry of model {model.name!r} (`registry` in config.yaml): "
                                 f"{exc}") from exc


def resolve(registry: Any, model: ModelConfig) -> Any:
    """``registry.resolve(model.path)``, a failure raised as `ServingConfigError` naming the model."""
    from zoo.registry import RegistryError

    try:
        return registry.resolve(model.path)
    except RegistryError as exc:
        raise ServingConfigError(f"Cannot resolve {model.path} of model {model.name!r}: {exc}") from exc


def input_signature(resolved: Any, loaded: Any) -> Any:
    """What must stay the same across versions: the registry's recorded input signature
    (``inputs`` of the ``zoo.signature`` tag), else the input specs the loaded model declares
    (names, shapes, dtypes), else None (nothing to compare)."""
    signature = getattr(resolved, "signature", None) or {}
    if isinstance(signature, dict) and signature.get("inputs"):
        return [{"name": spec.get("name"), "shape": spec.get("shape"), "dtype": spec.get("dtype")}
                for spec in signature["inputs"]]
    specs = getattr(loaded, "inputs", None)
    if specs is None:
        return None
    # the registry's form (zoo.registry.flavor): None for a dynamic dimension, numpy dtype names
    return [{"name": spec.name, "shape": None if spec.shape is None else [None if d is None else int(d) for d in spec.shape],
             "dtype": None if spec.dtype is None else np.dtype(spec.dtype).name} for spec in specs]


def heartbeat_versions(beats: list[bytes | str | None]) -> list[int]:
    """The registry versions named by workers' heartbeat values (JSON with ``version``), sorted."""
    versions = {json.loads(beat).get("version") for beat in beats if beat}
    return sorted(v for v in versions if v is not None)


@dataclass
class ServedVersion:
    """One loaded version of a model: what a worker predicts with, and what it reports.

    Attributes:
        version: the registry version, or None for a model file.
        model: the loaded `zoo.inference.InferenceModel`.
        signature: its input signature (see `input_signature`), None when unknown.
        drift: a `zoo.monitoring.drift.DriftMonitor` over the inputs served, against the version's
            training window; None when the version has no feature reference.
    """

    version: int | None
    model: Any
    signature: Any = None
    drift: Any = None

    def release(self) -> None:
        """Free the model's resources."""
        if hasattr(self.model, "release"):
            self.model.release()


def served_version(resolved: Any, loaded: Any) -> ServedVersion:
    """A `ServedVersion` of a resolved registry model once loaded, with a drift monitor when the
    version carries a feature reference."""
    drift = None
    if getattr(resolved, "reference", None) is not None:
        from zoo.monitoring.drift import DriftMonitor

        drift = DriftMonitor(resolved.reference)
    return ServedVersion(int(resolved.version), loaded, input_signature(resolved, loaded), drift)


class AliasFollower:
    """Follows the registry alias a model path names, loading each new version in the background.

    Args:
        model: the model's config section (``path`` is ``models:/name@alias`` or ``models:/name/N``).
        registry: a `zoo.registry.ModelRegistry`.
        client: the Redis client of the deployment (pub/sub notifications, swap counters).
        load: loads a local model path (what `ModelRegistry.resolve` returns) into an `InferenceModel`.
        consumer: the worker's name, for the log.
    """

    def __init__(self, model: ModelConfig, registry: Any, client: redis.Redis, load: Callable[[str], Any],
                 consumer: str = "worker"):
        self.model, self.registry, self.redis, self._load, self.consumer = model, registry, client, load, consumer
        self.name, self.alias, _ = parse_model_uri(model.path)
        self.current: int | None = None
        self._ready: ServedVersion | None = None
        self._signature: Any = None
        self._refused: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ServedVersion:
        """Resolve and load the version the path names now (errors raised, as `ServingConfigError`);
        then, for an alias, start following it."""
        served = self._load_version(resolve(self.registry, self.model))
        self.current, self._signature = served.version, served.signature
        if self.alias is not None:
            self._thread = threading.Thread(target=self._run, name=f"zoo-serving-follow-{self.consumer}", daemon=True)
            self._thread.start()
        logger.info("worker %s serving %s: version %s", self.consumer, self.model.path, served.version)
        return served

    def take(self) -> ServedVersion | None:
        """The next version, loaded and checked, if one is ready (the worker swaps to it before its
        next batch); None otherwise."""
        with self._lock:
            ready, self._ready = self._ready, None
            previous = self.current
            if ready is not None:
                self.current = ready.version
        if ready is not None:
            logger.info("worker %s swaps model %r from version %s to version %s", self.consumer, self.model.name,
                        previous, ready.version)
            self._signature = self._signature if ready.signature is None else ready.signature
            record_swap(self.redis, self.model.name, refused=False)
        return ready

    def close(self) -> None:
        """Stop following; a version loaded but not taken is released."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            ready.release()

    # ---- the follow thread -----------------------------------------------------------------

    def _load_version(self, resolved: Any) -> ServedVersion:
        try:
            loaded = self._load(resolved.path)
        except Exception as exc:
            raise ServingConfigError(f"Cannot load version {resolved.version} of model {self.name!r} from "
                                     f"{resolved.path}: {type(exc).__name__}: {exc}") from exc
        return served_version(resolved, loaded)

    def _run(self) -> None:
        from zoo.registry import alias_channel

        channel, backoff, pubsub = alias_channel(self.name), 0.0, None
        next_poll = time.monotonic() + self.model.follow_poll_s
        while not self._closed.is_set():
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(channel)
                    self._wake.set()  # a move may have been missed while not subscribed
                message = pubsub.get_message(timeout=min(_LISTEN_S, max(0.0, next_poll - time.monotonic())))
                backoff = 0.0
            except UNAVAILABLE as exc:
                pubsub = _close_quietly(pubsub)
                backoff = min(max(backoff * 2, 0.1), _MAX_BACKOFF_S)
                logger.warning("worker %s lost the alias notifications of %r (%s); polling meanwhile", self.consumer,
                               self.name, exc)
                message = None
                self._closed.wait(backoff)
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise; polling goes on
                logger.exception("worker %s: reading the alias notifications of %r failed", self.consumer, self.name)
                pubsub, message = _close_quietly(pubsub), None
                self._closed.wait(_MAX_BACKOFF_S)
            if message is not None and self._names_our_alias(message):
                self._wake.set()
            if self._wake.is_set() or time.monotonic() >= next_poll:
                self._wake.clear()
                next_poll = time.monotonic() + self.model.follow_poll_s
                try:
                    self._follow_once()
                except Exception:  # noqa: BLE001 - logged; the old version keeps serving, the next poll retries
                    logger.exception("worker %s: following %s failed", self.consumer, self.model.path)
        _close_quietly(pubsub)

    def _names_our_alias(self, message: dict) -> bool:
        try:
            return json.loads(message["data"]).get("alias") == self.alias
        except (ValueError, TypeError, AttributeError):
            return True  # an unreadable notification: look at the registry anyway

    def _follow_once(self) -> None:
        """Resolve the alias; load and check a version not seen yet; refuse it or make it ready."""
        try:
            resolved = self.registry.resolve(self.model.path)
        except Exception as exc:  # noqa: BLE001 - an unreachable registry or missing files: keep serving
            self._refuse(None, f"cannot resolve {self.model.path}: {type(exc).__name__}: {exc}")
            return
        version = int(resolved.version)
        with self._lock:
            pending = self._ready.version if self._ready is not None else None
            if version == self.current and pending is not None:  # moved back before the worker took it
                stale, self._ready, pending = self._ready, None, None
                stale.release()
        if version in (self.current, pending, self._refused):
            return
        if self._other_signature(version, input_signature(resolved, None)):  # from the registry: before loading
            return
        try:
            candidate = self._load_version(resolved)
        except ServingConfigError as exc:
            self._refuse(version, str(exc))
            return
        if self._other_signature(version, candidate.signature):  # declared by the loaded file
            candidate.release()
            return
        with self._lock:
            replaced, self._ready = self._ready, candidate
        if replaced is not None:
            replaced.release()

    def _other_signature(self, version: int, signature: Any) -> bool:
        """Refuse ``version`` when its input signature is known and differs from the serving one."""
        if self._signature is None or signature is None or signature == self._signature:
            return False
        self._refuse(version, f"its input signature {signature} differs from the serving version's "
                              f"{self._signature}; publish a model with other inputs under another name")
        return True

    def _refuse(self, version: int | None, reason: str) -> None:
        logger.error("worker %s refused to swap model %r to %s: %s. Version %s keeps serving.", self.consumer,
                     self.name, f"version {version}" if version is not None else "the alias's version",
                     reason.rstrip("."), self.current)
        if version is not None:  # not loaded again while the alias keeps naming it
            self._refused = version
        try:
            record_swap(self.redis, self.model.name, refused=True)
        except UNAVAILABLE:
            pass


def _close_quietly(pubsub: Any) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # noqa: BLE001 - the connection is going away anyway
            pass
    return None
