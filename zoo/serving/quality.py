"""Live quality of the served versions: feedback on answers, live accuracy and input drift.

- A worker serving a registry model keeps, for ``feedback_ttl_s`` (config.yaml), the version and
  the raw prediction of each answer (`remember_answers`).
- Feedback (`InputQueue.feedback`, HTTP ``POST /feedback``) goes to the model's feedback stream
  (`defaults.feedback_stream`, what the ``zoo-redis-stream`` source trains from) with the version
  that answered, and scores that answer against its label in the model's quality hash
  (`defaults.quality_key`): a whole-number label of a prediction of several values is a class
  (accuracy: the arg-max is the label), anything else a regression target (mean absolute error).
- Each worker observes the inputs it serves with the version's `DriftMonitor` and writes its PSI
  per feature to the same hash every ``DEFAULT_DRIFT_EXPORT_S`` (`DriftExport`).
- `families` turns the hash into Prometheus metrics for the frontend's ``/metrics``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Iterable

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from zoo.serving import codec
from zoo.serving import defaults as D
from zoo.serving.errors import InputError

logger = logging.getLogger(__name__)

_FEEDBACK, _CLASSIFIED, _CORRECT, _REGRESSED, _ABS_ERROR = "feedback", "classified", "correct", "regressed", "abs_error"
_PSI = re.compile(r"^psi:(?P<version>[0-9]+):(?P<feature>.+)$")


def remember_answers(pipe: Any, model: str, answers: Iterable[tuple[str, int, Any]], ttl_s: int) -> None:
    """Queue on ``pipe`` what answered each ``(uri, version, raw output)``, kept ``ttl_s`` seconds."""
    for uri, version, output in answers:
        pipe.set(D.served_key(model, uri), codec.encode({"version": version, "output": output}), ex=ttl_s)


def score(version: int, output: Any, label: Any) -> dict[str, int | float]:
    """The quality-hash increments of one answer of ``version`` given its true ``label``.

    Raises:
        InputError: the label is not numeric, or its size fits neither the prediction nor one class.
    """
    try:
        predicted = np.asarray(output, dtype=np.float64).ravel()
        truth = np.asarray(label, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError(f"Expected a numeric `label` (a number, or a list matching the prediction). Received "
                         f"{label!r}.") from None
    if truth.size == 1 and predicted.size > 1 and float(truth[0]).is_integer():
        correct = int(np.argmax(predicted) == int(truth[0]))
        return {f"{_FEEDBACK}:{version}": 1, f"{_CLASSIFIED}:{version}": 1, f"{_CORRECT}:{version}": correct}
    if truth.size not in (1, predicted.size):
        raise InputError(f"Expected a `label` of 1 or {predicted.size} values (the prediction's size), or a class "
                         f"index. Received {truth.size} values.")
    error = float(np.mean(np.abs(predicted - truth)))
    return {f"{_FEEDBACK}:{version}": 1, f"{_REGRESSED}:{version}": 1, f"{_ABS_ERROR}:{version}": error}


def feedback_entry(uri: str, label: Any, features: Any, served: bytes | None) -> tuple[dict[str, str], dict]:
    """The feedback-stream fields of one label, and the quality increments of the answer it
    scores (none when the answer is not known: expired, or from a model file).

    Args:
        uri: the request the label is about.
        label: its true value (a number, a list, an ndarray).
        features: the inputs to train on, or None.
        served: what `remember_answers` kept for ``uri``, or None.
    """
    if not isinstance(uri, str) or not uri:
        raise InputError(f"Expected `uri` as the non-empty id of an answered request. Received {uri!r}.")
    if label is None:
        raise InputError(f"Expected a `label` for request {uri!r}. Received None.")
    try:
        fields = {D.FIELD_URI: uri, "label": json.dumps(codec.to_json(label)),
                  "features": json.dumps(codec.to_json(features))}
    except (TypeError, ValueError) as exc:
        raise InputError(f"Expected a JSON-able `label` and `features` (numbers, lists, ndarrays). {exc}") from None
    if served is None:
        return fields, {}
    answer = codec.decode(served)
    fields["version"] = str(answer["version"])
    return fields, score(answer["version"], answer["output"], label)


def write_feedback(pipe: Any, model: str, fields: dict[str, str], increments: dict) -> None:
    """Queue on ``pipe`` the feedback entry and the quality increments of `feedback_entry`."""
    pipe.xadd(D.feedback_stream(model), fields, maxlen=D.DEFAULT_FEEDBACK_MAX_LENGTH, approximate=True)
    for field, value in increments.items():
        if isinstance(value, float):
            pipe.hincrbyfloat(D.quality_key(model), field, value)
        else:
            pipe.hincrby(D.quality_key(model), field, value)


def _columns(reference: Any) -> list[str]:
    return list(getattr(reference, "features", None) or [])


def drift_columns(inputs: dict[str, np.ndarray], reference_features: list[str]) -> dict[str, np.ndarray]:
    """The served inputs (each a batch) under the column names of the training window's reference:
    as named when the reference knows the name; a model's only input under the reference's only
    column otherwise (a model trained on ``features`` is served an ``input``)."""
    bases = {name.split("[", 1)[0] for name in reference_features}
    if set(inputs) & bases or len(inputs) != 1 or len(bases) != 1:
        return {name: batch for name, batch in inputs.items() if name in bases}
    (batch,) = inputs.values()
    return {next(iter(bases)): batch}


def observe_drift(monitor: Any, records: list[dict[str, np.ndarray]]) -> None:
    """Add the inputs of one batch (records of the same signature) to a version's drift monitor;
    a monitor that cannot read them logs why and never fails the batch."""
    if monitor is None or not records:
        return
    try:
        batches = {name: np.stack([record[name] for record in records]) for name in records[0]}
        columns = drift_columns(batches, _columns(monitor.reference))
        if columns:
            monitor.observe(columns)
    except Exception as exc:  # noqa: BLE001 - monitoring must not fail predictions
        logger.warning("drift monitoring skipped a batch: %s: %s", type(exc).__name__, exc)


class DriftExport:
    """Writes a worker's drift report (PSI per feature of the version it serves) to the model's
    quality hash every ``interval_s`` seconds."""

    def __init__(self, client: Any, model: str, consumer: str, interval_s: float = D.DEFAULT_DRIFT_EXPORT_S):
        self.redis, self.model, self.consumer, self.interval_s = client, model, consumer, interval_s
        self._next = 0.0

    def export(self, served: Any, force: bool = False) -> None:
        """Write ``served``'s PSI per feature when due (or at once with ``force``)."""
        now = time.monotonic()
        if served.drift is None or served.version is None or (now < self._next and not force):
            return
        self._next = now + self.interval_s
        try:
            report = served.drift.report()
        except Exception as exc:  # noqa: BLE001 - nothing observed yet, or a monitor that cannot report
            logger.debug("no drift report for version %s: %s", served.version, exc)
            return
        values = {f"psi:{served.version}:{feature}": float(psi) for feature, psi in report.items()
                  if psi is not None and np.isfinite(psi)}
        if values:
            self.redis.hset(D.quality_key(self.model), mapping=values)


def families(quality: dict[str, dict]) -> Iterable[Any]:
    """Prometheus metric families of the quality hashes (model name -> HGETALL)."""
    feedback = CounterMetricFamily("zoo_serving_feedback", "Labels received through feedback on answers of each "
                                   "version.", labels=["model", "version"])
    accuracy = GaugeMetricFamily("zoo_serving_live_accuracy", "Share of the answers of each version whose feedback "
                                 "label is the predicted class.", labels=["model", "version"])
    mae = GaugeMetricFamily("zoo_serving_live_mae", "Mean absolute error of the answers of each version against "
                            "their feedback labels.", labels=["model", "version"])
    psi = GaugeMetricFamily("zoo_serving_drift_psi", "Population stability index of each feature of the served "
                            "inputs against the version's training window.", labels=["model", "version", "feature"])
    for model, raw in quality.items():
        fields = {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}
        versions = sorted({int(f.split(":", 1)[1]) for f in fields if f.startswith(_FEEDBACK + ":")})
        for version in versions:
            feedback.add_metric([model, str(version)], fields[f"{_FEEDBACK}:{version}"])
            if fields.get(f"{_CLASSIFIED}:{version}"):
                accuracy.add_metric([model, str(version)],
                                    fields.get(f"{_CORRECT}:{version}", 0.0) / fields[f"{_CLASSIFIED}:{version}"])
            if fields.get(f"{_REGRESSED}:{version}"):
                mae.add_metric([model, str(version)],
                               fields.get(f"{_ABS_ERROR}:{version}", 0.0) / fields[f"{_REGRESSED}:{version}"])
        for field, value in sorted(fields.items()):
            match = _PSI.match(field)
            if match:
                psi.add_metric([model, match.group("version"), match.group("feature")], value)
    return [feedback, accuracy, mae, psi]
