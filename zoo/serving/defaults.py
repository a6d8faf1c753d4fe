"""Defaults and Redis key names of Cluster Serving, declared once.

Every tunable of `config.yaml` has its default here as a documented ``DEFAULT_*`` constant, and
every Redis key the service touches is built by one function of this module, so the client, the
workers, the HTTP frontend and the CLI agree on the layout without repeating strings.
"""

from __future__ import annotations

#: Number of records a worker hands to the model at most in one predict call.
DEFAULT_BATCH_SIZE = 32
#: Milliseconds a worker waits for a batch to fill once it holds its first record.
DEFAULT_MAX_BATCH_WAIT_MS = 5
#: Worker processes (or Spark tasks) per model.
DEFAULT_NUM_WORKERS = 1
#: Intra-op threads each worker gives its model.
DEFAULT_THREADS_PER_WORKER = 1
#: Seconds a result stays in Redis before it expires when nobody reads it.
DEFAULT_RESULT_TTL_S = 600
#: Entries a model's request stream may hold before new requests are refused (backpressure).
DEFAULT_MAX_QUEUE_LENGTH = 10_000
#: Milliseconds an entry may stay delivered-but-unacknowledged before another worker reclaims it.
DEFAULT_CLAIM_IDLE_MS = 10_000
#: Seconds between two reclaim passes (XAUTOCLAIM) of a worker.
DEFAULT_CLAIM_INTERVAL_S = 1.0
#: Deliveries after which an entry whose workers died goes to the dead-letter stream instead of a
#: worker: 2 lets it run in the batch it came in, then once alone.
DEFAULT_MAX_DELIVERIES = 2
#: Entries a model's dead-letter stream keeps; older ones are trimmed.
DEFAULT_DEAD_LETTER_MAX_LENGTH = 10_000
#: Seconds a worker's heartbeat key lives; a worker refreshes it every third of that.
DEFAULT_HEARTBEAT_TTL_S = 15
#: Seconds a client call (InputQueue, OutputQueue, the HTTP frontend) keeps retrying, with backoff,
#: while Redis refuses connections or is loading its data after a restart.
DEFAULT_REDIS_RETRY_S = 5.0
#: Seconds a connection attempt to Redis may take before it counts as a failure (and is retried).
DEFAULT_REDIS_CONNECT_TIMEOUT_S = 5.0
#: The longest a single blocking Redis read waits (a result's BLMOVE); a longer wait is several
#: such reads, so every connection can have the finite read timeout below.
MAX_BLOCKING_READ_S = 5.0
#: Seconds a Redis reply may take before the connection counts as broken (and is retried): above
#: the longest blocking read, so only a half-open or hung connection trips it, rather than
#: hanging a worker or the frontend forever (as rq does with its socket timeout).
DEFAULT_REDIS_SOCKET_TIMEOUT_S = MAX_BLOCKING_READ_S + 5.0
#: When the managed redis-server fsyncs its append-only file: "everysec" (a crash of the host loses
#: at most about a second of requests; a crash of redis-server itself loses none), "always"
#: (nothing, at a cost in throughput) or "no" (the operating system decides).
DEFAULT_APPENDFSYNC = "everysec"
#: Port of the Redis server `zoo-serving start` manages when no ``redis.url`` is configured.
DEFAULT_REDIS_PORT = 6379
#: Loopback address the managed Redis server and the HTTP frontend bind to by default.
DEFAULT_HOST = "127.0.0.1"
#: Port of the HTTP frontend.
DEFAULT_HTTP_PORT = 10020
#: Largest request body the HTTP frontend accepts, in bytes (10 MiB).
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
#: Instances one HTTP request may carry; more are refused with 413 before anything is queued.
DEFAULT_MAX_INSTANCES_PER_REQUEST = 1000
#: Pixels (width x height) an image input may have; read from its header, refused before decoding.
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
#: Elements a tensor input may hold once decoded, a sparse tensor's dense shape included (64 MiB
#: of float32).
DEFAULT_MAX_INPUT_ELEMENTS = 16 * 1024 * 1024
#: Seconds the HTTP frontend and `InputQueue.predict` wait for a result.
DEFAULT_TIMEOUT_S = 30.0
#: Seconds a client is told to wait (``Retry-After``) when the queue is full.
DEFAULT_RETRY_AFTER_S = 1
#: Name an input gets when a request carries one unnamed value.
DEFAULT_INPUT_NAME = "input"
#: Pixel scale applied to decoded images (uint8 0..255 -> float 0..1).
DEFAULT_IMAGE_SCALE = 1.0 / 255.0
#: Image layout handed to the model: "CHW" (PyTorch) or "HWC" (Keras/TF).
DEFAULT_IMAGE_LAYOUT = "CHW"
#: Seconds between two reads of a followed alias (``models:/name@alias``) in the registry: the
#: fallback for a missed pub/sub notification.
DEFAULT_FOLLOW_POLL_S = 10.0
#: Seconds a worker keeps what it answered a request of a registry model (the version and the raw
#: prediction), so that feedback on the request counts towards that version's live accuracy. Redis
#: holds about requests/s x this x the encoded prediction's size for it.
DEFAULT_FEEDBACK_TTL_S = 600
#: Entries a model's feedback stream keeps; older ones are trimmed.
DEFAULT_FEEDBACK_MAX_LENGTH = 1_000_000
#: Seconds between two exports of a worker's drift report (PSI per feature) to Redis.
DEFAULT_DRIFT_EXPORT_S = 5.0
#: Upper bounds (seconds) of the end-to-end latency histogram.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Upper bounds of the batch-size histogram.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

#: Prefix of every Redis key Cluster Serving writes.
KEY_PREFIX = "zoo:serving"
#: Consumer group all workers of one model join.
CONSUMER_GROUP = "zoo-serving-workers"

#: Fields of a request entry in a model's stream: the request's id, its encoded inputs, and the
#: enqueue time (seconds since the epoch, for the latency metric).
FIELD_URI = "uri"
FIELD_DATA = "data"
FIELD_ENQUEUED_AT = "t"
#: Keys of a result envelope: exactly one of them, the prediction or the reason it failed.
RESULT_OK = "ok"
RESULT_ERROR = "error"
#: Key of a result envelope beside ``ok``/``error``: the model version that answered (registry
#: models only).
RESULT_VERSION = "version"
#: Field of a model's info hash that holds its queue limit (read by the enqueue script).
INFO_MAX_QUEUE_LENGTH = "max_queue_length"


def stream_key(model: str) -> str:
    """Redis stream that carries the requests of ``model``."""
    return f"{KEY_PREFIX}:{model}:requests"


def result_key(model: str, uri: str) -> str:
    """Redis list that holds the result of request ``uri`` of ``model`` (one element)."""
    return f"{KEY_PREFIX}:{model}:result:{uri}"


def result_pattern(model: str) -> str:
    """SCAN pattern that matches every result key of ``model``."""
    return f"{KEY_PREFIX}:{model}:result:*"


def dead_letter_key(model: str) -> str:
    """Redis stream that keeps the requests of ``model`` whose workers kept dying (poison entries)."""
    return f"{KEY_PREFIX}:{model}:dead-letter"


def info_key(model: str) -> str:
    """Redis hash that describes a deployed model (path, batch size, queue limits)."""
    return f"{KEY_PREFIX}:{model}:info"


def metrics_key(model: str) -> str:
    """Redis hash of the counters and histograms that the workers of ``model`` keep."""
    return f"{KEY_PREFIX}:{model}:metrics"


def heartbeat_key(model: str, consumer: str) -> str:
    """Key whose presence says that worker ``consumer`` of ``model`` is alive."""
    return f"{KEY_PREFIX}:{model}:worker:{consumer}"


def heartbeat_pattern(model: str) -> str:
    """SCAN pattern that matches the heartbeat keys of every worker of ``model``."""
    return f"{KEY_PREFIX}:{model}:worker:*"


def stop_key(model: str) -> str:
    """Key that, when present, tells every worker of ``model`` to finish its batch and exit."""
    return f"{KEY_PREFIX}:{model}:stop"


def feedback_stream(model: str) -> str:
    """Redis stream of the labelled feedback on the answers of ``model`` (fields ``uri``,
    ``label``, ``features``, ``version``): what the ``zoo-redis-stream`` source trains from."""
    return f"{KEY_PREFIX}:{model}:feedback"


def served_key(model: str, uri: str) -> str:
    """Key that keeps, for a while, the version and raw prediction that answered ``uri`` of ``model``."""
    return f"{KEY_PREFIX}:{model}:served:{uri}"


def quality_key(model: str) -> str:
    """Redis hash of the live quality of ``model`` per version: feedback counts, absolute error
    sums, correct answers, swaps and the drift (PSI) each worker last reported."""
    return f"{KEY_PREFIX}:{model}:quality"
