"""Serving metrics: workers add to counters in Redis, the HTTP frontend renders them for Prometheus.

Each model's counters live in one Redis hash (`defaults.metrics_key`), so every worker process,
local or in a Spark task, adds to the same numbers and any frontend reads the whole deployment.
Histograms are stored cumulatively (one field per ``le`` bucket), as Prometheus exposes them.
`render` hands them to Prometheus' client library (``prometheus_client``) as metric families,
which writes the text exposition format.
"""

from __future__ import annotations

from typing import Any, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from zoo.serving import defaults as D
from zoo.serving.quality import families

REQUESTS = "requests_total"
ERRORS = "errors_total"
DEAD_LETTERS = "dead_letters_total"
BATCHES = "batch_size_count"
BATCH_SUM = "batch_size_sum"
LATENCY_COUNT = "latency_seconds_count"
LATENCY_SUM = "latency_seconds_sum"
SWAPS = "swaps_total"
SWAPS_REFUSED = "swaps_refused_total"


def _bucket_field(name: str, le: float | str) -> str:
    return f"{name}_bucket:{le}"


def record_batch(pipe: Any, model: str, batch_size: int, errors: int, latencies_s: Iterable[float]) -> None:
    """Queue on ``pipe`` the HINCRBYs that account for one answered batch of ``model``."""
    key = D.metrics_key(model)
    latencies = list(latencies_s)
    pipe.hincrby(key, REQUESTS, batch_size)
    if errors:
        pipe.hincrby(key, ERRORS, errors)
    pipe.hincrby(key, BATCHES, 1)
    pipe.hincrby(key, BATCH_SUM, batch_size)
    for le in D.BATCH_SIZE_BUCKETS:
        if batch_size <= le:
            pipe.hincrby(key, _bucket_field("batch_size", le), 1)
    pipe.hincrby(key, _bucket_field("batch_size", "+Inf"), 1)
    if latencies:
        pipe.hincrby(key, LATENCY_COUNT, len(latencies))
        pipe.hincrbyfloat(key, LATENCY_SUM, sum(latencies))
        for le in D.LATENCY_BUCKETS_S:
            count = sum(1 for value in latencies if value <= le)
            if count:
                pipe.hincrby(key, _bucket_field("latency_seconds", le), count)
        pipe.hincrby(key, _bucket_field("latency_seconds", "+Inf"), len(latencies))


def record_dead_letters(pipe: Any, model: str, count: int) -> None:
    """Queue on ``pipe`` the HINCRBY that counts ``count`` requests moved to the dead-letter stream."""
    if count:
        pipe.hincrby(D.metrics_key(model), DEAD_LETTERS, count)


def record_swap(client: Any, model: str, refused: bool) -> None:
    """Count one version swap of a worker of ``model``, or one refused before the swap."""
    client.hincrby(D.metrics_key(model), SWAPS_REFUSED if refused else SWAPS, 1)


def _number(raw: dict, field: str) -> float:
    return float(raw.get(field.encode(), raw.get(field, 0)))


class _Deployment:
    """A Prometheus collector over the numbers `render` was given (read from Redis per scrape)."""

    def __init__(self, per_model: dict[str, dict], queue_lengths: dict[str, int], workers: dict[str, int],
                 http_counts: dict[tuple[str, int], int], quality: dict[str, dict]):
        self.per_model, self.queue_lengths, self.workers, self.http_counts = per_model, queue_lengths, workers, http_counts
        self.quality = quality

    def collect(self):
        """The metric families of the deployment."""
        for name, field, help_text in (
            ("zoo_serving_requests", REQUESTS, "Requests answered by the workers (successes and errors)."),
            ("zoo_serving_errors", ERRORS, "Requests answered with an error."),
            ("zoo_serving_dead_letters", DEAD_LETTERS,
             "Requests moved to the dead-letter stream after their workers died max_deliveries times."),
            ("zoo_serving_swaps", SWAPS, "Model versions the workers swapped to (registry models)."),
            ("zoo_serving_swaps_refused", SWAPS_REFUSED,
             "Model versions refused before the swap (load failed, files missing, other input signature)."),
        ):
            family = CounterMetricFamily(name, help_text, labels=["model"])
            for model, raw in self.per_model.items():
                family.add_metric([model], _number(raw, field))
            yield family
        for metric, buckets, help_text in (
            ("batch_size", D.BATCH_SIZE_BUCKETS, "Records per worker batch."),
            ("latency_seconds", D.LATENCY_BUCKETS_S, "Seconds from enqueue to result written."),
        ):
            family = HistogramMetricFamily(f"zoo_serving_{metric}", help_text, labels=["model"])
            for model, raw in self.per_model.items():
                counts = [(str(le), _number(raw, _bucket_field(metric, le))) for le in (*buckets, "+Inf")]
                family.add_metric([model], counts, _number(raw, f"{metric}_sum"))
            yield family
        for name, values, help_text in (
            ("zoo_serving_queue_length", self.queue_lengths, "Requests waiting in the model's stream (read or not yet)."),
            ("zoo_serving_workers", self.workers, "Workers with a fresh heartbeat."),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["model"])
            for model, value in values.items():
                family.add_metric([model], value)
            yield family
        family = CounterMetricFamily("zoo_serving_http_requests", "HTTP requests answered by this frontend, by route "
                                     "and status.", labels=["route", "code"])
        for (route, code), count in sorted(self.http_counts.items()):
            family.add_metric([route, str(code)], count)
        yield family
        yield from families(self.quality)


def render(per_model: dict[str, dict], queue_lengths: dict[str, int], workers: dict[str, int],
           http_counts: dict[tuple[str, int], int], quality: dict[str, dict] | None = None) -> str:
    """Prometheus text exposition of the deployment.

    Args:
        per_model: model name -> the HGETALL of its metrics hash.
        queue_lengths: model name -> entries waiting in its stream.
        workers: model name -> live workers (fresh heartbeats).
        http_counts: ``(route, status code)`` -> requests the frontend answered.
        quality: model name -> the HGETALL of its quality hash (live accuracy, drift; see
            `zoo.serving.quality`).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Deployment(per_model, queue_lengths, workers, http_counts, quality or {}))
    return generate_latest(registry).decode()


def parse(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition as ``{'name{labels}': value}``, labels sorted by
    name (for tests and status)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples
