"""Cluster Serving: online inference over Redis Streams.

Requests go into a Redis stream per model, a consumer group of workers batches and predicts them
with `zoo.inference.InferenceModel`, and results come back through Redis. `InputQueue` and
`OutputQueue` are the Python client; `zoo.serving.frontend` is the HTTP API; ``zoo-serving
init|start|stop|status|rollback`` runs a deployment described by a `config.yaml`. A model path
``models:/name@champion`` serves the registry version an alias names and follows the alias
(`zoo.serving.follow`); feedback on answers scores each version live (`zoo.serving.quality`).
"""

from zoo.serving.client import InputQueue, OutputQueue, Prediction
from zoo.serving.codec import Image, SparseTensor
from zoo.serving.config import ServingConfig, load_config
from zoo.serving.errors import (InputError, PredictionError, QueueFullError, RedisUnavailableError, ResultTimeoutError,
                                ServingConfigError)

__all__ = [
    "InputQueue",
    "OutputQueue",
    "Prediction",
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
