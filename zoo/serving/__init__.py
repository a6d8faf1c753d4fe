"""Cluster Serving: online inference over Redis Streams.

Requests go into a Redis stream per model, a consumer group of workers batches and predicts them
with `zoo.inference.InferenceModel`, and results come back through Redis. `InputQueue` and
`OutputQueue` are the Python client; `zoo.serving.frontend` is the HTTP API; ``zoo-serving
init|start|stop|status`` runs a deployment described by a `config.yaml`.
"""

from zoo.serving.client import InputQueue, OutputQueue
from zoo.serving.codec import Image, SparseTensor
from zoo.serving.config import ServingConfig, load_config
from zoo.serving.errors import (InputError, PredictionError, QueueFullError, RedisUnavailableError, ResultTimeoutError,
                                ServingConfigError)

__all__ = [
    "InputQueue",
    "OutputQueue",
    "Image",
    "SparseTensor",
    "ServingConfig",
    "load_config",
    "InputError",
    "PredictionError",
    "QueueFullError",
    "RedisUnavailableError",
    "ResultTimeoutError",
    "ServingConfigError",
]
