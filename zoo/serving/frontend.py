"""The HTTP frontend of Cluster Serving (FastAPI + uvicorn): a synchronous API over the queues.

Routes:

- ``POST /predict`` and ``POST /models/{name}/predict``: ``{"instances": [...]}`` -> ``{"predictions": [...]}``.
  ``/predict`` routes to the first model of config.yaml. Each instance is one value or an object of
  named inputs (see `zoo.serving.codec.value_from_json` for the JSON forms). 503 + ``Retry-After``
  when the model's queue is full, 413 over ``http.max_request_bytes``, 422 when some instance
  failed (the others are still answered), 504 on timeout.
- ``GET /models``: the models, their settings, queue lengths and live workers.
- ``GET /metrics``: Prometheus text.
- ``GET /health``: 200 when Redis answers (never needs the token).

With ``http.token`` set, every route but ``/health`` needs ``Authorization: Bearer <token>``.
The layer is thin: it encodes, enqueues with the same script as `InputQueue`, and waits on the
result keys; HTTP errors exist only here.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from zoo.serving import codec
from zoo.serving import defaults as D
from zoo.serving import metrics
from zoo.serving.client import decode_result, enqueue_args
from zoo.serving.config import ServingConfig, load_config
from zoo.serving.connection import ENQUEUE_SCRIPT, connect
from zoo.serving.errors import InputError, PredictionError

logger = logging.getLogger(__name__)


class HTTPError(Exception):
    """An error answered as JSON ``{"error": message}`` with ``status`` (raised only in this module)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes "
                             f"(http.max_request_bytes). Send fewer instances per request.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"Request body exceeds the limit of {limit} bytes (http.max_request_bytes). "
                                 f"Send fewer instances per request.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_instances(body: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise HTTPError(400, f"Request body is not valid JSON ({exc}). Send {{\"instances\": [...]}}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list) or not document["instances"]:
        raise HTTPError(400, 'Expected a JSON object {"instances": [...]} with at least one instance.')
    try:
        return [codec.instance_from_json(instance, D.DEFAULT_INPUT_NAME) for instance in document["instances"]]
    except InputError as exc:
        raise HTTPError(400, str(exc)) from None


def create_app(config: ServingConfig) -> FastAPI:
    """The FastAPI application serving the models of ``config``."""
    state: dict[str, Any] = {"counts": Counter()}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        client = connect(config.redis.effective_url, asyncio=True, **config.redis.connection_options())
        state["redis"] = client
        state["enqueue"] = client.register_script(ENQUEUE_SCRIPT)
        try:
            yield
        finally:
            await client.aclose()

    app = FastAPI(title="Zoo Cluster Serving", lifespan=lifespan)
    models = {m.name: m for m in config.models}

    def check_token(request: Request) -> None:
        token = config.http.token
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPError(401, "Missing or wrong bearer token. Send `Authorization: Bearer <http.token>`.",
                            {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, exc: HTTPError):
        state["counts"][(request.url.path if request.url.path in ("/predict", "/models", "/metrics", "/health")
                         else "/models/{name}/predict", exc.status)] += 1
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    async def predict(request: Request, name: str, route: str) -> Response:
        check_token(request)
        if name not in models:
            raise HTTPError(404, f"No model named {name!r}. Served models: {sorted(models)}.")
        instances = _parse_instances(await _read_body(request, config.http.max_request_bytes))
        prefix = f"http-{uuid.uuid4().hex}"
        requests = [(f"{prefix}-{i}", codec.encode(inputs)) for i, inputs in enumerate(instances)]
        added = await state["enqueue"](keys=[D.stream_key(name), D.info_key(name)],
                                       args=enqueue_args(requests, config.queue.max_queue_length))
        if added < 0:
            retry = config.queue.retry_after_s
            raise HTTPError(503, f"The queue of model {name!r} is full ({-added - 1} requests waiting). "
                                 f"Retry after {retry} s.", {"Retry-After": str(retry)})
        results = await _wait(state["redis"], name, [uri for uri, _ in requests], config.http.timeout_s)
        predictions, errors = [], []
        for index, (uri, _) in enumerate(requests):
            value = decode_result(uri, results[uri])
            if isinstance(value, PredictionError):
                predictions.append(None)
                errors.append({"index": index, "error": value.reason})
            else:
                predictions.append(codec.to_json(value))
        body: dict[str, Any] = {"predictions": predictions}
        status = 200
        if errors:
            body["errors"] = errors
            status = 422
        state["counts"][(route, status)] += 1
        return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")

    @app.post("/predict")
    async def predict_default(request: Request):
        return await predict(request, config.models[0].name, "/predict")

    @app.post("/models/{name}/predict")
    async def predict_named(request: Request, name: str):
        return await predict(request, name, "/models/{name}/predict")

    @app.get("/models")
    async def list_models(request: Request):
        check_token(request)
        client = state["redis"]
        lengths, alive = await _queue_state(client, list(models))
        listed = []
        for name, model in models.items():
            listed.append({
                "name": name, "path": model.path, "batch_size": model.batch_size,
                "max_batch_wait_ms": model.max_batch_wait_ms, "workers": model.workers,
                "live_workers": alive[name], "queue_length": lengths[name], "top_n": model.top_n,
                "predict": f"/models/{name}/predict",
            })
        state["counts"][("/models", 200)] += 1
        return JSONResponse({"models": listed, "default": config.models[0].name})

    @app.get("/metrics")
    async def get_metrics(request: Request):
        check_token(request)
        client = state["redis"]
        pipe = client.pipeline(transaction=False)
        for name in models:
            pipe.hgetall(D.metrics_key(name))
        raw = dict(zip(models, await pipe.execute()))
        lengths, alive = await _queue_state(client, list(models))
        state["counts"][("/metrics", 200)] += 1
        text = metrics.render(raw, lengths, alive, dict(state["counts"]))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/health")
    async def health(request: Request):
        try:
            await asyncio.wait_for(state["redis"].ping(), timeout=2.0)
        except Exception as exc:  # any Redis failure means unhealthy
            state["counts"][("/health", 503)] += 1
            return JSONResponse({"status": "unavailable", "error": f"Redis does not answer: {exc}"}, status_code=503)
        state["counts"][("/health", 200)] += 1
        return JSONResponse({"status": "ok", "models": list(models)})

    return app


async def _wait(client: Any, model: str, uris: list[str], timeout_s: float) -> dict[str, bytes]:
    """Pop the result of every uri (BLPOP), or raise 504 at the deadline."""
    keys = {D.result_key(model, uri): uri for uri in uris}
    results: dict[str, bytes] = {}
    deadline = time.monotonic() + timeout_s
    while len(results) < len(keys):
        remaining = deadline - time.monotonic()
        popped = await client.blpop([k for k, u in keys.items() if u not in results], timeout=max(remaining, 0.01)) \
            if remaining > 0 else None
        if popped is None:
            raise HTTPError(504, f"No result from model {model!r} within {timeout_s} s for {len(keys) - len(results)} "
                                 f"of {len(keys)} instances. Check `zoo-serving status` for live workers.")
        results[keys[popped[0].decode()]] = popped[1]
    return results


async def _queue_state(client: Any, names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.xlen(D.stream_key(name))
    lengths = dict(zip(names, await pipe.execute()))
    alive = {}
    for name in names:
        alive[name] = len([key async for key in client.scan_iter(match=D.heartbeat_pattern(name), count=1000)])
    return lengths, alive


def serve(config: ServingConfig, host: str | None = None, port: int | None = None) -> None:
    """Run the frontend with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(config), host=host or config.http.host, port=port or config.http.port,
                log_level="warning", access_log=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the frontend process (``python -m zoo.serving.frontend --config config.yaml``)."""
    parser = argparse.ArgumentParser(description="Run the Cluster Serving HTTP frontend.")
    parser.add_argument("--config", required=True, help="path of config.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(load_config(args.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
