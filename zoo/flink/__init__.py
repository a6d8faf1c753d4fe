"""Zoo on Apache Flink: SQL and Table inference, Cluster Serving as a Flink job, and training
inside Flink operators on Zoo's engine.

PyFlink runs in its own environment (`.venv-flink`, built by ``bash scripts/setup_flink.sh``):
PyFlink's apache-beam needs protobuf<6 and TensorFlow needs protobuf>=6.31, so they cannot share
one. ``import zoo.flink`` works anywhere; a function that needs PyFlink raises `FlinkSetupError`
naming that command when PyFlink is missing.
"""

from zoo.flink.errors import FlinkSetupError, ModelPathError, ModelSignatureError
from zoo.flink.inference import inference_function, model_signature, predict
from zoo.flink.models import create_model, create_model_sql, register_java_function
from zoo.flink.runtime import stream_environment, table_environment
from zoo.flink.training import VERSION_FIELDS, StreamFit, as_bytes, fit, fit_stream

__all__ = [
    "inference_function",
    "predict",
    "model_signature",
    "create_model",
    "create_model_sql",
    "register_java_function",
    "fit",
    "fit_stream",
    "StreamFit",
    "VERSION_FIELDS",
    "as_bytes",
    "table_environment",
    "stream_environment",
    "FlinkSetupError",
    "ModelPathError",
    "ModelSignatureError",
]
