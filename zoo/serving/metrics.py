"""Serving metrics: workers add to counters in Redis, the HTTP frontend renders them for Prometheus.

Each model's counters live in one Redis hash (`defaults.metrics_key`), so every worker process,
local or in a Spark task, adds to the same numbers and any frontend reads the whole deployment.
Histograms are stored cumulatively (one field per ``le`` bucket), as Prometheus exposes them.
"""

from __future__ import annotations

from typing import Any, Iterable

from zoo.serving import defaults as D

REQUESTS = "requests_total"
ERRORS = "errors_total"
BATCHES = "batch_size_count"
BATCH_SUM = "batch_size_sum"
LATENCY_COUNT = "latency_seconds_count"
LATENCY_SUM = "latency_seconds_sum"


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


def _number(raw: dict, field: str) -> float:
    value = raw.get(field.encode(), raw.get(field, 0))
    value = float(value)
    return int(value) if value.is_integer() else value


def render(per_model: dict[str, dict], queue_lengths: dict[str, int], workers: dict[str, int],
           http_counts: dict[tuple[str, int], int]) -> str:
    """Prometheus text exposition of the deployment.

    Args:
        per_model: model name -> the HGETALL of its metrics hash.
        queue_lengths: model name -> entries waiting in its stream.
        workers: model name -> live workers (fresh heartbeats).
        http_counts: ``(route, status code)`` -> requests the frontend answered.
    """
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("zoo_serving_requests_total", "counter", "Requests answered by the workers (successes and errors).")
    for model, raw in per_model.items():
        lines.append(f'zoo_serving_requests_total{{model="{model}"}} {_number(raw, REQUESTS)}')
    family("zoo_serving_errors_total", "counter", "Requests answered with an error.")
    for model, raw in per_model.items():
        lines.append(f'zoo_serving_errors_total{{model="{model}"}} {_number(raw, ERRORS)}')
    for metric, buckets, help_text in (
        ("batch_size", D.BATCH_SIZE_BUCKETS, "Records per worker batch."),
        ("latency_seconds", D.LATENCY_BUCKETS_S, "Seconds from enqueue to result written."),
    ):
        name = f"zoo_serving_{metric}"
        family(name, "histogram", help_text)
        for model, raw in per_model.items():
            for le in (*buckets, "+Inf"):
                lines.append(f'{name}_bucket{{model="{model}",le="{le}"}} {_number(raw, _bucket_field(metric, le))}')
            lines.append(f'{name}_sum{{model="{model}"}} {_number(raw, f"{metric}_sum")}')
            lines.append(f'{name}_count{{model="{model}"}} {_number(raw, f"{metric}_count")}')
    family("zoo_serving_queue_length", "gauge", "Requests waiting in the model's stream (read or not yet).")
    for model, length in queue_lengths.items():
        lines.append(f'zoo_serving_queue_length{{model="{model}"}} {length}')
    family("zoo_serving_workers", "gauge", "Workers with a fresh heartbeat.")
    for model, count in workers.items():
        lines.append(f'zoo_serving_workers{{model="{model}"}} {count}')
    family("zoo_serving_http_requests_total", "counter", "HTTP requests answered by this frontend, by route and status.")
    for (route, code), count in sorted(http_counts.items()):
        lines.append(f'zoo_serving_http_requests_total{{route="{route}",code="{code}"}} {count}')
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition as ``{'name{labels}': value}`` (for tests and status)."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
