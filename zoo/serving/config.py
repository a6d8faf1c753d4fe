"""`config.yaml` of Cluster Serving: one dataclass per section, validated when built.

A minimal file names one model::

    models:
      - name: resnet
        path: /models/resnet.onnx

Everything else has a documented default in `zoo.serving.defaults`. `TEMPLATE` is the commented
file that ``zoo-serving init`` writes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from zoo import storage
from zoo.serving import defaults as D
from zoo.serving.errors import ServingConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ServingConfigError(message)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a service reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or 0.0.0.0-style wildcards written otherwise: exposed
        return False


def _number(value: Any, low: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low


#: ``redis.appendfsync`` values (Redis' own names).
APPENDFSYNC_POLICIES = ("always", "everysec", "no")


@dataclass
class RedisConfig:
    """Where the request streams and results live.

    Args:
        url: ``redis://host:port/db`` or ``rediss://`` (TLS) of an existing Redis. ``None``: ``zoo-serving
            start`` starts and manages a local ``redis-server`` on ``host:port``.
        password: Redis password (``AUTH``); for a managed server it becomes ``requirepass``.
        host: bind address of a managed server (loopback by default).
        port: port of a managed server.
        tls_ca_cert: CA file that verifies a ``rediss://`` server (the managed one too).
        tls_cert: client certificate for a server that checks clients (mutual TLS).
        tls_key: the key of ``tls_cert``.
        server_tls_cert: with ``url`` empty, the managed server's certificate: it then serves TLS
            only, and every client verifies it against ``tls_ca_cert``.
        server_tls_key: the key of ``server_tls_cert``.
        appendonly: the managed server logs every write to an append-only file, so queued
            requests and results survive a restart of Redis (at-least-once). Turn it off only
            when losing the queue on a restart is acceptable.
        appendfsync: when the managed server flushes that file to disk: ``everysec`` (default: a
            crash of redis-server loses nothing acknowledged, a crash of the whole host up to
            about one second of writes), ``always`` (nothing, at a cost in throughput) or ``no``
            (the operating system decides, typically within 30 s).
        retry_s: seconds the HTTP frontend keeps retrying, with backoff, while Redis is
            unreachable before it answers 503 (the Python client has the same setting).
        allow_insecure: let the managed server listen on a non-loopback ``host`` without a
            password (only inside a network nobody else reaches).
    """

    url: str | None = None
    password: str | None = None
    host: str = D.DEFAULT_HOST
    port: int = D.DEFAULT_REDIS_PORT
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    server_tls_cert: str | None = None
    server_tls_key: str | None = None
    appendonly: bool = True
    appendfsync: str = D.DEFAULT_APPENDFSYNC
    retry_s: float = D.DEFAULT_REDIS_RETRY_S
    allow_insecure: bool = False

    def __post_init__(self):
        _require(
            self.url is None or str(self.url).startswith(("redis://", "rediss://", "unix://")),
            f"Expected `redis.url` to start with redis://, rediss:// or unix://. Received url={self.url!r}. "
            f"Leave it empty to let zoo-serving start a local redis-server.",
        )
        _require(isinstance(self.port, int) and 0 < self.port < 65536,
                 f"Expected `redis.port` in 1..65535. Received port={self.port!r}.")
        _require((self.tls_cert is None) == (self.tls_key is None),
                 "Expected `redis.tls_cert` and `redis.tls_key` together (mutual TLS needs both). "
                 f"Received tls_cert={self.tls_cert!r}, tls_key={self.tls_key!r}.")
        if self.server_tls_cert is not None or self.server_tls_key is not None:
            _require(self.url is None,
                     f"`redis.server_tls_cert` and `redis.server_tls_key` configure the redis-server that zoo-serving "
                     f"starts itself, but `redis.url` is set ({self.url!r}). For an existing server use a rediss:// "
                     f"url with `redis.tls_ca_cert`; or remove `redis.url`.")
            _require(None not in (self.server_tls_cert, self.server_tls_key, self.tls_ca_cert),
                     "Expected `redis.server_tls_cert`, `redis.server_tls_key` and `redis.tls_ca_cert` together to "
                     f"serve TLS from the managed redis-server. Received server_tls_cert={self.server_tls_cert!r}, "
                     f"server_tls_key={self.server_tls_key!r}, tls_ca_cert={self.tls_ca_cert!r}.")
        _require(self.appendfsync in APPENDFSYNC_POLICIES,
                 f"Expected `redis.appendfsync` to be one of {list(APPENDFSYNC_POLICIES)}. Received {self.appendfsync!r}.")
        _require(isinstance(self.appendonly, bool), f"Expected `redis.appendonly` true or false. Received {self.appendonly!r}.")
        _require(_number(self.retry_s, 0), f"Expected `redis.retry_s` as seconds >= 0. Received {self.retry_s!r}.")
        _require(self.url is not None or is_loopback(self.host) or self.password or self.allow_insecure,
                 f"`redis.host` is {self.host!r}, which is not a loopback address, but `redis.password` is not set: "
                 f"anyone who reaches port {self.port} could read and write the queues. Set `redis.password` "
                 f"(`zoo-serving init --secrets` generates one), or set `redis.allow_insecure: true` if nobody "
                 f"else can reach that network.")

    @property
    def effective_url(self) -> str:
        """The URL clients connect to: ``url``, or the managed server's loopback address
        (``rediss://`` when it serves TLS)."""
        scheme = "rediss" if self.server_tls_cert else "redis"
        return self.url or f"{scheme}://{self.host}:{self.port}/0"

    def connection_options(self) -> dict[str, Any]:
        """Keyword arguments of `zoo.serving.connection.connect` for this section (``retry_s``
        is not one: callers apply it)."""
        return {"password": self.password, "tls_ca_cert": self.tls_ca_cert, "tls_cert": self.tls_cert,
                "tls_key": self.tls_key}


@dataclass
class ImageConfig:
    """How workers turn an encoded image input into a tensor.

    Args:
        resize: ``[height, width]`` to resize to (bilinear); ``None`` keeps the decoded size.
        layout: ``"CHW"`` (PyTorch) or ``"HWC"`` (Keras/TF).
        scale: factor applied to the uint8 pixels (default 1/255).
        mean: per-channel mean subtracted after scaling, or ``None``.
        std: per-channel std divided by after the mean, or ``None``.
        mode: Pillow mode the image is converted to (``"RGB"`` or ``"L"``).
        max_pixels: width x height an image may have; larger ones (decompression bombs: a 100 KB
            PNG can hold 36 million pixels) are refused from their header, before decoding.
    """

    resize: list[int] | None = None
    layout: str = D.DEFAULT_IMAGE_LAYOUT
    scale: float = D.DEFAULT_IMAGE_SCALE
    mean: list[float] | None = None
    std: list[float] | None = None
    mode: str = "RGB"
    max_pixels: int = D.DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self):
        if self.resize is not None:
            _require(isinstance(self.resize, (list, tuple)) and len(self.resize) == 2
                     and all(isinstance(v, int) and v > 0 for v in self.resize),
                     f"Expected `image.resize` as [height, width] of positive ints. Received {self.resize!r}.")
            self.resize = [int(v) for v in self.resize]
        _require(self.layout in ("CHW", "HWC"), f"Expected `image.layout` 'CHW' or 'HWC'. Received {self.layout!r}.")
        _require(self.mode in ("RGB", "L"), f"Expected `image.mode` 'RGB' or 'L'. Received {self.mode!r}.")
        channels = 3 if self.mode == "RGB" else 1
        for key in ("mean", "std"):
            value = getattr(self, key)
            _require(value is None or (isinstance(value, (list, tuple)) and len(value) == channels),
                     f"Expected `image.{key}` as a list of {channels} numbers (mode {self.mode}). Received {value!r}.")
        _require(self.std is None or all(v != 0 for v in self.std), f"`image.std` must not hold 0. Received {self.std!r}.")
        _require(isinstance(self.max_pixels, int) and not isinstance(self.max_pixels, bool) and self.max_pixels >= 1,
                 f"Expected `image.max_pixels` as an int >= 1. Received {self.max_pixels!r}.")


@dataclass
class ModelConfig:
    """One served model.

    Args:
        name: routing name (letters, digits, ``_ . -``); requests name it, HTTP routes use it.
        path: model file or directory, any kind `zoo.inference.InferenceModel.load` reads
            (TorchScript ``.pt``, ONNX ``.onnx``, OpenVINO ``.xml``, Keras ``.keras``): a local path
            or a URL (``s3://``, ``hdfs://``, ...), which each worker fetches into its local cache.
            Or a registry model: ``models:/name@alias`` (workers follow the alias and swap to each
            version it names, see `zoo.serving.follow`) or ``models:/name/3`` (one version).
        registry: MLflow tracking URI of the registry of a ``models:/`` path; None: the default of
            `zoo.registry.ModelRegistry` (``MLFLOW_TRACKING_URI``, else sqlite under ``ZOO_HOME``).
        follow_poll_s: seconds between two reads of a followed alias, the fallback for a missed
            pub/sub notification.
        feedback_ttl_s: seconds the workers of a registry model keep each answer (version and
            prediction) for feedback to score it; 0 keeps none (feedback is then stored without
            its version and scores nothing). Redis holds about requests/s x this x the
            prediction's size.
        batch_size: records per predict call at most.
        max_batch_wait_ms: how long a worker waits for a batch to fill after its first record.
        workers: worker processes (or Spark tasks) for this model.
        threads_per_worker: intra-op threads of each worker's model.
        image: image preprocessing, or ``None`` when the model takes no images (image inputs are
            then refused).
        string_max_length: when set, string inputs become uint8 tensors of this length (UTF-8,
            zero padded); when ``None`` they reach the model as numpy string arrays.
        top_n: when set, each output row becomes its ``top_n`` ``[index, value]`` pairs, highest first.
        max_input_elements: elements a tensor input may hold once decoded (a sparse tensor's dense
            shape included); larger inputs are refused before they are expanded.
    """

    name: str
    path: str
    batch_size: int = D.DEFAULT_BATCH_SIZE
    max_batch_wait_ms: float = D.DEFAULT_MAX_BATCH_WAIT_MS
    workers: int = D.DEFAULT_NUM_WORKERS
    threads_per_worker: int = D.DEFAULT_THREADS_PER_WORKER
    image: ImageConfig | None = None
    string_max_length: int | None = None
    top_n: int | None = None
    max_input_elements: int = D.DEFAULT_MAX_INPUT_ELEMENTS
    registry: str | None = None
    follow_poll_s: float = D.DEFAULT_FOLLOW_POLL_S
    feedback_ttl_s: int = D.DEFAULT_FEEDBACK_TTL_S

    def __post_init__(self):
        _require(isinstance(self.name, str) and bool(_NAME.match(self.name)),
                 f"Expected a model `name` of 1-64 letters, digits, '_', '.' or '-'. Received name={self.name!r}.")
        _require(isinstance(self.path, str) and bool(self.path),
                 f"Expected `path` of model {self.name!r} as a file path. Received path={self.path!r}.")
        for key, low in (("batch_size", 1), ("workers", 1), ("threads_per_worker", 1), ("max_input_elements", 1),
                         ("feedback_ttl_s", 0)):
            value = getattr(self, key)
            _require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
                     f"Expected `{key}` >= {low} for model {self.name!r}. Received {key}={value!r}.")
        _require(isinstance(self.max_batch_wait_ms, (int, float)) and self.max_batch_wait_ms >= 0,
                 f"Expected `max_batch_wait_ms` >= 0 for model {self.name!r}. Received {self.max_batch_wait_ms!r}.")
        for key in ("string_max_length", "top_n"):
            value = getattr(self, key)
            _require(value is None or (isinstance(value, int) and value >= 1),
                     f"Expected `{key}` >= 1 or null for model {self.name!r}. Received {key}={value!r}.")
        if isinstance(self.image, dict):
            self.image = _build(ImageConfig, self.image, f"models[{self.name}].image")
        _require(_number(self.follow_poll_s, 0.01),
                 f"Expected `follow_poll_s` as seconds >= 0.01 for model {self.name!r}. Received {self.follow_poll_s!r}.")
        if self.path.startswith("models:/"):
            from zoo.serving.follow import parse_model_uri

            parse_model_uri(self.path)
        else:
            _require(self.registry is None,
                     f"`registry` of model {self.name!r} is set ({self.registry!r}) but its path {self.path!r} is a "
                     f"file. Use a registry path such as models:/{self.name}@champion, or remove `registry`.")


@dataclass
class QueueConfig:
    """Queue behaviour shared by every model.

    Args:
        result_ttl_s: seconds an unread result lives.
        max_queue_length: waiting entries per model above which new requests are refused.
        claim_idle_ms: idle time after which an unacknowledged entry is reclaimed from its worker.
        max_deliveries: deliveries after which an entry whose workers died goes to the model's
            dead-letter stream, answered with an error (default 2: the batch it came in, then
            once alone). 1 never lets an entry take down a second worker, but then the other
            requests of a batch whose worker was killed are not retried either.
        retry_after_s: ``Retry-After`` the HTTP frontend sends with a 503.
    """

    result_ttl_s: int = D.DEFAULT_RESULT_TTL_S
    max_queue_length: int = D.DEFAULT_MAX_QUEUE_LENGTH
    claim_idle_ms: int = D.DEFAULT_CLAIM_IDLE_MS
    max_deliveries: int = D.DEFAULT_MAX_DELIVERIES
    retry_after_s: int = D.DEFAULT_RETRY_AFTER_S

    def __post_init__(self):
        for key in ("result_ttl_s", "max_queue_length", "claim_idle_ms", "max_deliveries", "retry_after_s"):
            value = getattr(self, key)
            _require(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                     f"Expected `queue.{key}` as an int >= 1. Received {key}={value!r}.")


@dataclass
class HttpConfig:
    """The HTTP frontend.

    Args:
        host: bind address (loopback by default; set ``0.0.0.0`` deliberately to expose it).
        port: bind port.
        token: when set, every route but ``/health`` (``/docs`` and ``/openapi.json`` too) needs
            ``Authorization: Bearer <token>``. Required when ``host`` is not a loopback address.
        max_request_bytes: larger request bodies get 413.
        max_instances_per_request: requests with more instances get 413 before anything is queued.
        timeout_s: seconds ``/predict`` waits for results before answering 504.
        enabled: ``zoo-serving start`` starts the frontend only when true.
        allow_insecure: serve a non-loopback ``host`` without a token (when a proxy in front
            authenticates every request).
    """

    host: str = D.DEFAULT_HOST
    port: int = D.DEFAULT_HTTP_PORT
    token: str | None = None
    max_request_bytes: int = D.DEFAULT_MAX_REQUEST_BYTES
    max_instances_per_request: int = D.DEFAULT_MAX_INSTANCES_PER_REQUEST
    timeout_s: float = D.DEFAULT_TIMEOUT_S
    enabled: bool = True
    allow_insecure: bool = False

    def __post_init__(self):
        _require(isinstance(self.port, int) and 0 < self.port < 65536,
                 f"Expected `http.port` in 1..65535. Received port={self.port!r}.")
        _require(isinstance(self.max_request_bytes, int) and self.max_request_bytes >= 1,
                 f"Expected `http.max_request_bytes` >= 1. Received {self.max_request_bytes!r}.")
        _require(isinstance(self.max_instances_per_request, int) and self.max_instances_per_request >= 1,
                 f"Expected `http.max_instances_per_request` >= 1. Received {self.max_instances_per_request!r}.")
        _require(isinstance(self.timeout_s, (int, float)) and self.timeout_s > 0,
                 f"Expected `http.timeout_s` > 0. Received {self.timeout_s!r}.")
        _require(is_loopback(self.host) or self.token or self.allow_insecure or not self.enabled,
                 f"`http.host` is {self.host!r}, which is not a loopback address, but `http.token` is not set: "
                 f"anyone who reaches port {self.port} could use the models. Set `http.token` (`zoo-serving init "
                 f"--secrets` generates one), or set `http.allow_insecure: true` if a proxy in front authenticates.")


@dataclass
class ServingConfig:
    """A whole deployment: the models, Redis, the queue and the HTTP frontend."""

    models: list[ModelConfig] = field(default_factory=list)
    redis: RedisConfig = field(default_factory=RedisConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    http: HttpConfig = field(default_factory=HttpConfig)

    def __post_init__(self):
        _require(len(self.models) >= 1, "Expected at least one entry under `models:` in config.yaml. Received none.")
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        _require(not duplicates, f"Expected unique model names. Received duplicates {duplicates}.")

    def model(self, name: str | None) -> ModelConfig:
        """The model called ``name``; ``None`` picks the first one (the default route)."""
        if name is None:
            return self.models[0]
        for model in self.models:
            if model.name == name:
                return model
        raise ServingConfigError(f"No model named {name!r}. Configured models: {[m.name for m in self.models]}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict form (round-trips through `from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServingConfig":
        """Build from the parsed YAML; unknown keys are errors that list the known ones."""
        _require(isinstance(data, dict), f"Expected config.yaml to hold a mapping. Received {type(data).__name__}.")
        data = dict(data)
        if "model" in data:
            _require("models" not in data, "Use either `model:` (one model) or `models:` (a list), not both.")
            data["models"] = [data.pop("model")]
        models = data.get("models") or []
        _require(isinstance(models, list), f"Expected `models:` as a list. Received {type(models).__name__}.")
        return _build(cls, {
            "models": [_build(ModelConfig, m, f"models[{i}]") for i, m in enumerate(models)],
            "redis": _build(RedisConfig, data.get("redis") or {}, "redis"),
            "queue": _build(QueueConfig, data.get("queue") or {}, "queue"),
            "http": _build(HttpConfig, data.get("http") or {}, "http"),
            **{k: v for k, v in data.items() if k not in ("models", "redis", "queue", "http")},
        }, "config")


def _build(cls, data: Any, where: str):
    _require(isinstance(data, dict), f"Expected `{where}` as a mapping. Received {type(data).__name__}: {data!r}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    _require(not unknown, f"Unknown key(s) {unknown} in `{where}`. Known keys: {sorted(known)}.")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ServingConfigError(f"`{where}` is incomplete: {exc}.") from None


def load_config(path: str | pathlib.Path) -> ServingConfig:
    """Read and validate a `config.yaml`; relative model paths resolve against its folder (URLs
    with a scheme are kept as written)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ServingConfigError(f"Config file {str(path)!r} does not exist. Create one with `zoo-serving init`.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ServingConfigError(f"{path} is not valid YAML: {exc}") from None
    config = ServingConfig.from_dict(data or {})
    for model in config.models:
        if storage.has_scheme(model.path):
            continue
        model_path = pathlib.Path(model.path).expanduser()
        if not model_path.is_absolute():
            model.path = str((path.parent / model_path).resolve())
    return config


def save_config(config: ServingConfig, path: str | pathlib.Path) -> None:
    """Write ``config`` as YAML (the inverse of `load_config`)."""
    pathlib.Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def render_template(host: str = D.DEFAULT_HOST, token: str | None = None, password: str | None = None) -> str:
    """The commented config.yaml that ``zoo-serving init`` writes, binding ``host`` (the HTTP
    frontend and the managed Redis), with ``token`` and ``password`` filled in when given."""

    def value(secret: str | None) -> str:
        return "null" if secret is None else f'"{secret}"'

    return f"""\
# Cluster Serving configuration. Every key but models[].name and models[].path is optional.
# Guarantees, limits and running off loopback: docs/operations.md.
models:
  - name: my-model              # routing name: POST /models/my-model/predict, InputQueue(url, "my-model")
    path: ./model.onnx          # TorchScript .pt, ONNX .onnx, OpenVINO .xml or Keras .keras; or s3://, hdfs:// URL
    batch_size: {D.DEFAULT_BATCH_SIZE}               # records per predict call at most
    max_batch_wait_ms: {D.DEFAULT_MAX_BATCH_WAIT_MS}         # wait this long for a batch to fill
    workers: {D.DEFAULT_NUM_WORKERS}                  # worker processes (or Spark tasks)
    threads_per_worker: {D.DEFAULT_THREADS_PER_WORKER}
    # image:                    # decode image inputs (bytes / path / base64) into tensors; without it images are refused
    #   resize: [224, 224]
    #   layout: CHW
    #   max_pixels: {D.DEFAULT_MAX_IMAGE_PIXELS}     # larger images are refused from their header (decompression bombs)
    # string_max_length: 128    # strings -> uint8 tensors of this length
    # top_n: 5                  # answer with the 5 best [index, score] pairs
    # max_input_elements: {D.DEFAULT_MAX_INPUT_ELEMENTS}  # largest decoded tensor (sparse tensors' dense shape too)
    # path: models:/my-model@champion  # a registry model: workers follow the alias, swapping between batches
    # registry: sqlite:///path/mlflow.db  # its MLflow tracking URI (default: MLFLOW_TRACKING_URI or ~/.zoo)
    # follow_poll_s: {D.DEFAULT_FOLLOW_POLL_S}       # read the alias this often too (pub/sub notifies at once)
    # feedback_ttl_s: {D.DEFAULT_FEEDBACK_TTL_S}       # keep each answer this long for feedback to score it (0: none)

redis:
  url: null                     # null: zoo-serving starts a local redis-server on host:port
  host: {host}
  port: {D.DEFAULT_REDIS_PORT}
  password: {value(password)}
  appendonly: true              # queued requests survive a Redis restart (at-least-once)
  appendfsync: {D.DEFAULT_APPENDFSYNC}         # everysec: a host crash may lose ~1 s; always: nothing, slower
  retry_s: {D.DEFAULT_REDIS_RETRY_S}                  # the HTTP frontend retries this long while Redis is down, then 503
  # tls_ca_cert: /path/ca.crt   # for rediss:// URLs, and for the managed server's TLS below
  # server_tls_cert: /path/redis.crt  # the managed server serves TLS only (with server_tls_key)
  # server_tls_key: /path/redis.key

queue:
  result_ttl_s: {D.DEFAULT_RESULT_TTL_S}
  max_queue_length: {D.DEFAULT_MAX_QUEUE_LENGTH}       # requests waiting per model; more get 503 + Retry-After
  max_deliveries: {D.DEFAULT_MAX_DELIVERIES}             # a request whose workers died this often goes to the dead-letter stream

http:
  host: {host}
  port: {D.DEFAULT_HTTP_PORT}
  token: {value(token)}{'' if token else '                   # set to require "Authorization: Bearer <token>" (required off loopback)'}
  max_request_bytes: {D.DEFAULT_MAX_REQUEST_BYTES}
  max_instances_per_request: {D.DEFAULT_MAX_INSTANCES_PER_REQUEST}
"""


#: The config.yaml ``zoo-serving init`` writes by default (loopback, no secrets).
TEMPLATE = render_template()
