"""Zoo models in plain Flink SQL through Java: the `zoo` model provider (``CREATE MODEL`` +
``ML_PREDICT``) and the Java ScalarFunction over zoo/serving_java_api.

Both run inside the JVM on OpenVINO (ONNX or OpenVINO IR files), with no Python worker; their
jars are built by ``zoo/flink/java/build.sh`` into Flink's lib/ folder (`zoo.flink.runtime`).
"""

from __future__ import annotations

from typing import Any

from zoo.flink import runtime
from zoo.flink.inference import model_signature
from zoo.flink.signature import absolute_model_path

#: Class of the Java ScalarFunction (``zoo_predict('/models/m.xml', features)``).
JAVA_FUNCTION_CLASS = "zoo.flink.ZooInferenceFunction"
#: Value of ``'provider'`` in ``CREATE MODEL ... WITH (...)`` that selects Zoo's provider.
PROVIDER = "zoo"


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def create_model_sql(name: str, model: Any, *, temporary: bool = True, batch_size: int | None = None,
                     max_wait_ms: int | None = None, concurrent_num: int | None = None,
                     threads: int | None = None) -> str:
    """The ``CREATE MODEL`` statement of `model` for the `zoo` provider, with INPUT and OUTPUT
    written from the model file's signature (see `zoo.flink.signature`)."""
    signature = model_signature(model)
    path = absolute_model_path(model)
    options = {"provider": PROVIDER, "path": path, "batch-size": batch_size, "max-wait-ms": max_wait_ms,
               "concurrent-num": concurrent_num, "threads": threads}
    inputs = ", ".join(f"`{c.name}` {c.sql}" for c in signature.inputs)
    outputs = ", ".join(f"`{c.name}` {c.sql}" for c in signature.outputs)
    with_ = ", ".join(f"{_quote(k)} = {_quote(v)}" for k, v in options.items() if v is not None)
    return (f"CREATE {'TEMPORARY ' if temporary else ''}MODEL `{name}` INPUT ({inputs}) OUTPUT ({outputs}) "
            f"WITH ({with_})")


def create_model(t_env, name: str, model: Any, **options: Any) -> str:
    """Register `model` as the SQL model `name` (``ML_PREDICT(TABLE t, MODEL name, DESCRIPTOR(...))``).

    Args:
        t_env: a TableEnvironment (`zoo.flink.table_environment`).
        name: the model's name in SQL.
        model: an ONNX file or OpenVINO IR ``.xml``, readable on every TaskManager.
        **options: `create_model_sql`'s keywords (``batch_size`` and ``max_wait_ms`` apply when
            ML_PREDICT runs asynchronously: ``MAP['async', 'true']``; ``threads`` caps each task's
            CPU threads, all cores when unset).

    Returns:
        the statement that was executed.
    """
    runtime.zoo_jar_paths(required=True)
    statement = create_model_sql(name, model, **options)
    t_env.execute_sql(statement)
    return statement


def register_java_function(t_env, name: str = "zoo_predict") -> None:
    """Register the Java ScalarFunction over Zoo's Java inference handle as `name`:
    ``name('/models/m.xml', features)`` returns the model's first output as ARRAY<FLOAT>."""
    runtime.zoo_jar_paths(required=True)
    t_env.create_java_temporary_function(name, JAVA_FUNCTION_CLASS)
