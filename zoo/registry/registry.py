"""``ModelRegistry``: model versions in the MLflow Model Registry, an evaluation gate that moves
the ``champion`` alias, rollback, and alias moves published on Redis."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from zoo.errors import ZooTypeError, ZooValueError
from zoo.inference.errors import short
from zoo.registry import _mlflow
from zoo.registry import defaults as D
from zoo.registry import flavor
from zoo.registry.errors import RegistryError

logger = logging.getLogger(__name__)

#: ``models:/name@alias`` or ``models:/name/3``.
@dataclass(frozen=True)
class GateDecision:
    """What the evaluation gate decided for one version.

    Attributes:
        accepted: whether the version became the champion.
        version: the version judged.
        reason: why, in words (also the ``zoo.rejected_reason`` tag of a rejected version).
        metric: the version's gate metric.
        champion_metric: the champion's gate metric it was compared with; None when there was
            no champion (or it had no such metric).
    """

    accepted: bool
    version: int
    reason: str
    metric: float
    champion_metric: float | None


@dataclass(frozen=True)
class VersionInfo:
    """One registered version and Zoo's tags on it.

    Attributes:
        name, version: the registered model and the version number.
        status: ``candidate``, ``champion``, ``rejected``, ``retired`` or ``rolled_back``.
        metrics: the training metrics given to ``publish``.
        offsets: the stream offsets the version has seen (as given to ``publish``), or None.
        parent: the version it was trained from, or None.
        aliases: the aliases that name it now.
        rejected_reason: why the gate rejected it, or None.
        gate_metric: the metric the gate judged it on, or None if never gated.
        signature: input and output names, shapes and dtypes (see `zoo.registry.flavor`).
        source: where its files are (an MLflow artifact URI).
    """

    name: str
    version: int
    status: str
    metrics: dict[str, float]
    offsets: Any
    parent: int | None
    aliases: list[str]
    rejected_reason: str | None
    gate_metric: float | None
    signature: dict
    source: str


@dataclass(frozen=True)
class ResolvedModel:
    """A version found from a ``models:/`` URI, with its files on this machine.

    Attributes:
        name, version: the registered model and the version the URI named.
        path: the local file `zoo.inference.InferenceModel.load` reads.
        signature: input and output names, shapes and dtypes.
        reference: the FeatureReference of its training window, or None.
        model_dir: the local MLflow model directory (`zoo.registry.flavor.load_model` reads it).
    """

    name: str
    version: int
    path: str
    signature: dict
    reference: Any = None
    model_dir: str = field(default="", compare=False)


class ModelRegistry:
    """Versions of Zoo models in an MLflow Model Registry.

    Each ``publish`` logs the model with the Zoo flavor in a run of the experiment
    ``zoo-registry`` and registers it as a new version, tagged with its training metrics, the
    stream offsets it has seen, its parent version, its signature and ``zoo.status``. ``gate``
    moves the ``champion`` alias to a version whose held-out metric does not regress;
    ``rollback`` moves an alias back. Serving follows an alias through ``resolve``.

    Example::

        registry = ModelRegistry()                      # sqlite under ZOO_HOME (~/.zoo)
        v = registry.publish("ctr", nn_model, metrics={"loss": 0.31}, offsets={"feedback": "1700-0"})
        decision = registry.gate("ctr", v, metric=evaluate(nn_model, heldout, "mse"), higher_is_better=False)
        registry.resolve("models:/ctr@champion").path   # a file InferenceModel.load reads

    Args:
        tracking_uri: any MLflow tracking URI (``http://host:5000``, ``sqlite:///file.db``,
            ``postgresql://...``). Default: env ``MLFLOW_TRACKING_URI``, else
            ``sqlite:///<ZOO_HOME>/mlflow.db`` with artifacts in ``<ZOO_HOME>/mlartifacts``
            (``ZOO_HOME``: env ``ZOO_HOME`` or ``~/.zoo``). A sqlite registry keeps its artifacts
            in ``mlartifacts`` beside the database file.
        redis_url: when given, every alias move is published on the Redis channel
            `alias_channel` (name) as ``{"name", "alias", "version"}`` JSON.

    Raises:
        RegistryError: the registry cannot be reached or opened (checked here, before any work).
    """

    def __init__(self, tracking_uri: str | None = None, *, redis_url: str | None = None):
        self.tracking_uri = tracking_uri if tracking_uri is not None else D.default_tracking_uri()
        self.redis_url = redis_url
        self._client = _mlflow.connect(self.tracking_uri)

    def __repr__(self) -> str:
        return f"ModelRegistry(tracking_uri={self.tracking_uri!r}, redis_url={self.redis_url!r})"

    # -------------------------------------------------------------------------------- publish
    def publish(self, name: str, model: Any, *, metrics: dict[str, float] | None = None, offsets: dict | None = None,
                parent: int | None = None, reference: Any = None, input_example: Any = None) -> int:
        """Register ``model`` as a new version of ``name`` (created on first use), as a candidate.

        Args:
            name: the registered model's name.
            model: an NNModel / NNClassifierModel (torch or Keras), or the path of a model file
                InferenceModel.load reads (``.onnx``, ``.xml``, ``.pt``, ``.pt2``, ``.keras``).
            metrics: training metrics (name -> finite float): tags ``zoo.metric.<name>`` and
                metrics of the version's run.
            offsets: the stream offsets the version has seen, any JSON value (tag ``zoo.offsets``).
            parent: the version this one was trained from (tag ``zoo.parent``).
            reference: the `zoo.monitoring.drift.FeatureReference` of its training window, kept
                with the version's files.
            input_example: the model's inputs for a torch model whose input shape Zoo cannot
                read (see `zoo.registry.flavor.save_model`).

        Returns:
            the new version number.

        Raises:
            ZooTypeError, ZooValueError: ``model`` cannot be saved (see
                `zoo.registry.flavor.check_model`), a metric is not a finite number, or the
                offsets are not JSON; checked before anything is stored.
            RegistryError: the parent is not a version of ``name``, or the registry failed to
                store the version.
        """
        _check_name(name)
        metrics = _check_metrics(metrics)
        try:
            offsets_json = json.dumps(offsets, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ZooValueError(f"Expected `offsets` to be JSON-serialisable (dict of str/int). "
                                f"Received: {offsets!r} ({exc}).") from exc
        flavor.check_model(model)
        if parent is not None:
            self._version(name, _check_version(parent, "parent"))
        with tempfile.TemporaryDirectory(prefix="zoo-publish-") as tmp:
            # Saved before the registry is touched: a model that cannot be saved leaves nothing behind.
            local = os.path.join(tmp, "model")
            flavor.save_model(model, local, input_example=input_example, reference=reference)
            signature = flavor.flavor_conf(local)["signature"]
            self._ensure_model(name)
            run_id = self._call(lambda: self._client.create_run(self._experiment_id(), run_name=f"{name}-publish"),
                                f"start a run for {name!r}").info.run_id
            try:
                if metrics:
                    from mlflow.entities import Metric

                    now = _now_ms()
                    self._client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
                self._client.log_artifacts(run_id, local, "model")
                self._client.set_terminated(run_id)
            except BaseException:
                self._client.set_terminated(run_id, status="FAILED")
                raise
        tags = {D.TAG_STATUS: D.STATUS_CANDIDATE, D.TAG_OFFSETS: offsets_json,
                D.TAG_PARENT: "" if parent is None else str(parent), D.TAG_SIGNATURE: json.dumps(signature),
                **{D.TAG_METRIC_PREFIX + k: repr(v) for k, v in metrics.items()}}
        source = f"{self._client.get_run(run_id).info.artifact_uri}/model"
        version = self._call(lambda: self._client.create_model_version(name, source, run_id=run_id, tags=tags),
                             f"register a version of {name!r}")
        return int(version.version)

    # -------------------------------------------------------------------------------- gate
    def gate(self, name: str, version: int, *, metric: float, higher_is_better: bool, tolerance: float = 0.0,
             metric_name: str = "loss", champion_metric: float | None = None) -> GateDecision:
        """Judge ``version`` on its held-out ``metric`` against the champion's.

        ``champion_metric``: the champion's metric on the same held-out rows, when the caller
        measured it (a moving window of recent events, on which the recorded figure of an older
        window would not be comparable); None takes the figure recorded when the champion was gated.

        Accepted when there is no champion yet, when the champion was never gated on
        ``metric_name`` (e.g. it was set with ``set_alias``), or when ``metric`` is not worse than the champion's by more than ``tolerance``
        (absolute: ``metric <= champion + tolerance`` when lower is better). Then the
        ``champion`` alias moves to it (``zoo.status``: ``champion``; the former champion
        ``retired``). Otherwise the alias stays, and the version gets ``zoo.status``
        ``rejected`` and ``zoo.rejected_reason``. Either way ``metric`` is recorded on the
        version (tags ``zoo.gate.metric``, ``zoo.gate.metric_name``).

        Raises:
            ZooValueError: ``metric`` or ``tolerance`` is not a finite number (tolerance >= 0).
            RegistryError: ``name`` or ``version`` does not exist.
        """
        version = _check_version(version, "version")
        metric = _finite("metric", metric)
        tolerance = _finite("tolerance", tolerance)
        if tolerance < 0:
            raise ZooValueError(f"Expected `tolerance` >= 0. Received: tolerance={tolerance!r}.")
        self._version(name, version)
        champion = self.champion(name)
        if champion is None:
            champion_metric = None
        elif champion_metric is not None:
            champion_metric = _finite("champion_metric", champion_metric)
        else:
            champion_metric = self._recorded_metric(name, champion, metric_name)
        direction = "higher" if higher_is_better else "lower"
        if champion is None:
            accepted, reason = True, f"first version gated: no champion yet ({metric_name}={metric:g})"
        elif champion_metric is None:
            accepted = True
            reason = f"the champion v{champion} was never gated on {metric_name} ({metric_name}={metric:g})"
        else:
            regression = (champion_metric - metric) if higher_is_better else (metric - champion_metric)
            accepted = regression <= tolerance
            verdict = "within" if accepted else "beyond"
            reason = (f"{metric_name}={metric:g} vs champion v{champion} {metric_name}={champion_metric:g} "
                      f"({direction} is better): regression {max(regression, 0.0):g} {verdict} tolerance {tolerance:g}")
        self._set_tags(name, version, {D.TAG_GATE_METRIC: repr(metric), D.TAG_GATE_METRIC_NAME: metric_name})
        if accepted:
            self._set_alias(name, D.CHAMPION, version, "gate")
        else:
            self._set_tags(name, version, {D.TAG_STATUS: D.STATUS_REJECTED, D.TAG_REJECTED_REASON: reason})
        return GateDecision(accepted, version, reason, metric, champion_metric)

    # -------------------------------------------------------------------------------- aliases
    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` of ``name`` at ``version``, record the move in the alias history, and
        publish it on Redis (when ``redis_url`` was given). For ``champion`` the version's
        ``zoo.status`` becomes ``champion`` and the former champion's ``retired``.

        Raises:
            RegistryError: ``name`` or ``version`` does not exist.
        """
        self._set_alias(name, alias, version, "set_alias")

    def _set_alias(self, name: str, alias: str, version: int, cause: str) -> None:
        version = _check_version(version, "version")
        _check_name(alias, "alias")
        self._version(name, version)
        history = self._history(name, alias)
        self._move(name, alias, version, D.STATUS_RETIRED, cause)
        self._save_history(name, alias, history + [version])

    def rollback(self, name: str, alias: str = D.CHAMPION) -> int:
        """Move ``alias`` back to the version it named before its last move; returns that version.

        The version rolled back from gets ``zoo.status`` ``rolled_back`` (for ``champion``);
        a second rollback goes one move further back.

        Raises:
            RegistryError: the alias never named another version (no history to roll back to).
        """
        history = self._history(name, alias)
        current = self._alias_version(name, alias)
        if current is not None and (not history or history[-1] != current):
            history.append(current)  # moved outside Zoo: roll back to what Zoo last set
        if len(history) < 2:
            raise RegistryError(
                f"Cannot roll back alias {alias!r} of model {name!r}: it has named no other version before "
                f"(history: {history or 'empty'}). Point it at a version with set_alias(name, alias, version).")
        history.pop()
        target = history[-1]
        self._move(name, alias, target, D.STATUS_ROLLED_BACK, "rollback")
        self._save_history(name, alias, history)
        return target

    def alias_log(self, name: str, alias: str = D.CHAMPION) -> list[dict]:
        """Every move of ``alias`` made through Zoo, oldest first (the last 100): dicts with
        ``version``, ``from`` (the version it named before, or None), ``by`` (``gate``,
        ``set_alias`` or ``rollback``) and ``at_ms`` (epoch milliseconds). Rollbacks add to it;
        nothing is removed.

        Raises:
            RegistryError: there is no registered model ``name``.
        """
        return json.loads(self._model(name).tags.get(D.TAG_ALIAS_LOG_PREFIX + alias, "[]"))

    def champion(self, name: str) -> int | None:
        """The version the ``champion`` alias names, or None before any version was accepted.

        Raises:
            RegistryError: there is no registered model ``name``.
        """
        self._model(name)
        return self._alias_version(name, D.CHAMPION)

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of ``name`` with Zoo's tags, oldest first.

        Raises:
            RegistryError: there is no registered model ``name``.
        """
        aliases: dict[int, list[str]] = {}
        for alias, version in self._model(name).aliases.items():
            aliases.setdefault(int(version), []).append(alias)
        found = self._call(lambda: self._client.search_model_versions(f"name='{name}'", max_results=10000),
                           f"list the versions of {name!r}")
        return sorted((_info(v, aliases.get(int(v.version), [])) for v in found), key=lambda info: info.version)

    # -------------------------------------------------------------------------------- resolve
    def resolve(self, uri: str) -> ResolvedModel:
        """The version a ``models:/name@alias`` or ``models:/name/3`` URI names, its files local.

        Files in a local artifact store are used where they are; others are downloaded once
        into ``<ZOO_HOME>/registry-cache``.

        Raises:
            RegistryError: the URI is malformed, the model, alias or version does not exist, or
                the version's files are missing.
        """
        parsed = D.parse_model_uri(uri)
        if parsed is None:
            raise RegistryError(f"Expected a model URI models:/<name>@<alias> or models:/<name>/<version>. "
                                f"Received: {uri!r}.")
        name, alias, version = parsed
        if alias is not None:
            self._model(name)
            version = self._alias_version(name, alias)
            if version is None:
                aliases = sorted(self._model(name).aliases)
                raise RegistryError(f"Model {name!r} has no alias {alias!r} in {self.tracking_uri!r} "
                                    f"(its aliases: {aliases or 'none'}). Gate a version (registry.gate) or "
                                    f"set_alias first.")
        mv = self._version(name, version)
        model_dir = self._local_files(name, version, mv.source)
        try:
            path = flavor.serving_path(model_dir)
            reference = flavor.load_reference(model_dir)
        except (OSError, ValueError) as exc:
            raise self._missing(name, version, mv.source, exc) from exc
        if not os.path.exists(path):
            raise self._missing(name, version, mv.source, FileNotFoundError(path))
        return ResolvedModel(name, version, path, json.loads(mv.tags.get(D.TAG_SIGNATURE, "{}")), reference, model_dir)

    def _local_files(self, name: str, version: int, source: str) -> str:
        from mlflow.artifacts import download_artifacts

        scheme = urlparse(source).scheme
        if scheme in ("", "file"):
            local = source[len("file://"):] if scheme == "file" else source
            if not os.path.isdir(local):
                raise self._missing(name, version, source, FileNotFoundError(local))
            return local
        key = hashlib.sha1(f"{self.tracking_uri}|{source}".encode()).hexdigest()[:16]
        cache = os.path.join(D.zoo_home(), "registry-cache", f"{name}-{version}-{key}")
        if os.path.exists(os.path.join(cache, "MLmodel")):
            return cache
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        try:
            # Downloaded beside the cache (one file system), then renamed into place: a reader
            # never sees half a version, and of processes resolving it at once one rename wins.
            with tempfile.TemporaryDirectory(prefix=".download-", dir=os.path.dirname(cache)) as tmp:
                downloaded = download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=self.tracking_uri)
                try:
                    os.replace(downloaded, cache)
                except OSError:
                    if not os.path.exists(os.path.join(cache, "MLmodel")):
                        raise
        except Exception as exc:  # noqa: BLE001 - MLflow's artifact stores raise many classes
            raise self._missing(name, version, source, exc) from exc
        return cache

    def _missing(self, name: str, version: int, source: str, cause: BaseException) -> RegistryError:
        return RegistryError(
            f"The files of version {version} of model {name!r} are missing or unreadable at {source!r} "
            f"({short(cause)}). Publish it again, or point the alias at another version "
            f"(registry.rollback / set_alias).")

    # -------------------------------------------------------------------------------- internals
    def _call(self, call, what: str):
        try:
            return call()
        except RegistryError:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow raises MlflowException and transport errors
            raise RegistryError(f"Could not {what} in the registry {self.tracking_uri!r}: {short(exc)}") from exc

    def _experiment_id(self) -> str:
        experiment = self._client.get_experiment_by_name(D.EXPERIMENT_NAME)
        if experiment is not None:
            return experiment.experiment_id
        return self._client.create_experiment(D.EXPERIMENT_NAME,
                                              artifact_location=_mlflow.artifact_location(self.tracking_uri))

    def _ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.get_registered_model(name)
        except MlflowException:
            self._call(lambda: self._client.create_registered_model(name), f"create the model {name!r}")

    def _model(self, name: str):
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_registered_model(name)
        except MlflowException as exc:
            raise RegistryError(f"There is no registered model {name!r} in {self.tracking_uri!r}. Publish a "
                                f"version first (registry.publish), or check the name.") from exc

    def _version(self, name: str, version: int):
        from mlflow.exceptions import MlflowException

        self._model(name)
        try:
            return self._client.get_model_version(name, str(version))
        except MlflowException as exc:
            known = [v.version for v in self.versions(name)]
            raise RegistryError(f"Model {name!r} has no version {version} in {self.tracking_uri!r} "
                                f"(its versions: {known or 'none'}).") from exc

    def _alias_version(self, name: str, alias: str) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            return int(self._client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def _recorded_metric(self, name: str, version: int, metric_name: str) -> float | None:
        """The held-out metric the gate judged ``version`` on, if it was ``metric_name`` (never a
        training metric: those are measured on other rows)."""
        tags = self._version(name, version).tags
        if tags.get(D.TAG_GATE_METRIC_NAME) == metric_name and D.TAG_GATE_METRIC in tags:
            return float(tags[D.TAG_GATE_METRIC])
        return None

    def _set_tags(self, name: str, version: int, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(lambda: self._client.set_model_version_tag(name, str(version), key, value),
                       f"tag version {version} of {name!r}")

    def _history(self, name: str, alias: str) -> list[int]:
        return [int(v) for v in json.loads(self._model(name).tags.get(D.TAG_ALIAS_HISTORY_PREFIX + alias, "[]"))]

    def _save_history(self, name: str, alias: str, history: list[int]) -> None:
        kept = json.dumps(history[-D.MAX_ALIAS_HISTORY:])
        self._call(lambda: self._client.set_registered_model_tag(name, D.TAG_ALIAS_HISTORY_PREFIX + alias, kept),
                   f"record the history of alias {alias!r} of {name!r}")

    def _move(self, name: str, alias: str, version: int, former_status: str, cause: str) -> None:
        """Point the alias at ``version``, log the move, update statuses (champion only), notify."""
        former = self._alias_version(name, alias)
        self._call(lambda: self._client.set_registered_model_alias(name, alias, str(version)),
                   f"point alias {alias!r} of {name!r} at version {version}")
        log = self.alias_log(name, alias) + [{"version": version, "from": former, "by": cause, "at_ms": _now_ms()}]
        kept = json.dumps(log[-D.MAX_ALIAS_HISTORY:])
        self._call(lambda: self._client.set_registered_model_tag(name, D.TAG_ALIAS_LOG_PREFIX + alias, kept),
                   f"log the move of alias {alias!r} of {name!r}")
        if alias == D.CHAMPION:
            if former is not None and former != version:
                self._set_tags(name, former, {D.TAG_STATUS: former_status})
            self._set_tags(name, version, {D.TAG_STATUS: D.STATUS_CHAMPION})
        self._notify(name, alias, version)

    def _notify(self, name: str, alias: str, version: int) -> None:
        """Publish the move on Redis. A failure is logged, not raised: the alias has moved, and
        followers that poll the registry pick the move up anyway."""
        if self.redis_url is None:
            return
        from zoo.serving.connection import connect

        message = json.dumps({"name": name, "alias": alias, "version": version})
        try:
            client = connect(self.redis_url)
            try:
                client.publish(D.alias_channel(name), message)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - any Redis failure: followers fall back to polling
            logger.warning("Alias %r of %r moved to version %d, but publishing it on %s failed (%s: %s); "
                           "followers will see it when they poll the registry.",
                           alias, name, version, self.redis_url, type(exc).__name__, exc)


def _info(mv, aliases: list[str]) -> VersionInfo:
    tags = mv.tags
    metrics = {k[len(D.TAG_METRIC_PREFIX):]: float(v) for k, v in tags.items() if k.startswith(D.TAG_METRIC_PREFIX)}
    parent = tags.get(D.TAG_PARENT)
    gate_metric = tags.get(D.TAG_GATE_METRIC)
    return VersionInfo(
        name=mv.name, version=int(mv.version), status=tags.get(D.TAG_STATUS, ""), metrics=metrics,
        offsets=json.loads(tags.get(D.TAG_OFFSETS, "null")), parent=int(parent) if parent else None,
        aliases=sorted(aliases), rejected_reason=tags.get(D.TAG_REJECTED_REASON),
        gate_metric=None if gate_metric is None else float(gate_metric),
        signature=json.loads(tags.get(D.TAG_SIGNATURE, "{}")), source=mv.source)


def _check_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not name or "/" in name or "@" in name:
        raise ZooValueError(f"Expected `{what}` to be a non-empty str without '/' or '@'. Received: {what}={name!r}.")
    return name


def _check_version(version: Any, what: str) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ZooTypeError(f"Expected `{what}` to be a version number (int >= 1). Received: {what}={version!r}.")
    return version


def _finite(what: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ZooValueError(f"Expected `{what}` to be a finite number. Received: {what}={value!r}.")
    return number


def _check_metrics(metrics: dict | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise ZooTypeError(f"Expected `metrics` to be a dict of name -> float. Received: {type(metrics).__name__}.")
    return {str(k): _finite(f"metrics[{k!r}]", v) for k, v in metrics.items()}


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
