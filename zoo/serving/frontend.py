"""The HTTP frontend of Cluster Serving (FastAPI + uvicorn): a synchronous API over the queues.

Routes:

- ``POST /predict`` and ``POST /models/{name}/predict``: ``{"instances": [...]}`` -> ``{"predictions": [...]}``.
  ``/predict`` routes to the first model of config.yaml. Each instance is one value or an object of
  named inputs (see `zoo.serving.codec.value_from_json` for the JSON forms). The answer also holds
  ``uris`` (one per instance), ``versions`` (the model version that answered each; null for a
  model file) and ``version`` (the version when one answered them all, else null).
- ``POST /feedback`` and ``POST /models/{name}/feedback``: ``{"uri": ..., "label": ..., "features": ...}``, the
  true label of an answered instance (its uri is in the answer's ``uris``); see `zoo.serving.quality`.
- ``GET /models``: the models, their settings, queue lengths, live workers, dead letters and the
  registry versions the live workers serve (``serving_versions``).
- ``GET /metrics``: Prometheus text.
- ``GET /health``: 200 when Redis answers, else 503 (never needs the token).
- ``GET /docs`` and ``GET /openapi.json``: the API description (they need the token when one is set).

Answers are strict JSON, errors included (``{"error": message}``):

- 400: the body is not JSON, is nested too deeply, or an instance cannot be read or is refused
  before queueing (an image over ``image.max_pixels`` or for a model without ``image:``, a tensor
  over ``max_input_elements``, a number its dtype cannot hold exactly); nothing is queued.
- 401: missing or wrong bearer token. 404: unknown model.
- 413: a body over ``http.max_request_bytes``, or more instances than
  ``http.max_instances_per_request``.
- 422: some instances failed in the worker (``errors`` lists them; the others are answered).
- 503 + ``Retry-After``: the queue has no room for the request, or Redis stayed unreachable for
  ``redis.retry_s`` (the frontend retries with backoff until then).
- 504: no result within ``http.timeout_s``.
- 500: anything unexpected (logged); the connection stays usable.

NaN and ±Infinity in a prediction, which JSON cannot carry, are sent as ``null``; a
``warnings`` list names the instances that held any.

With ``http.token`` set, every route but ``/health`` needs ``Authorization: Bearer <token>``.
The layer is thin: it checks, encodes, enqueues with the same script as `InputQueue`, and waits on
the result keys; HTTP errors exist only here.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import json
import logging
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask

from zoo.serving import codec
from zoo.serving import defaults as D
from zoo.serving import metrics
from zoo.serving.client import check_enqueued, decode_answer, enqueue_args, read_result, waiting
from zoo.serving.config import ModelConfig, ServingConfig, load_config
from zoo.serving.connection import ENQUEUE_SCRIPT, UNAVAILABLE, acall_with_retry, connect
from zoo.serving.errors import HTTPError, InputError, PredictionError, QueueFullError, RedisUnavailableError
from zoo.serving.follow import heartbeat_versions
from zoo.serving.processing import check_input
from zoo.serving.quality import feedback_entry, write_feedback

logger = logging.getLogger(__name__)

#: Routes the request counters name as they are (the others are counted as the predict route).
_ROUTES = ("/predict", "/feedback", "/models", "/metrics", "/health", "/docs", "/openapi.json")


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


def _parse_instances(body: bytes, model: ModelConfig, config: ServingConfig) -> list[dict[str, Any]]:
    """The instances of a request body, each checked as the workers would, before anything is queued."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise HTTPError(400, "Request body is nested too deeply to read (JSON nested about a thousand levels or "
                             "more). Send {\"instances\": [...]} with each tensor as nested lists of at most 64 "
                             "dimensions.") from None
    except ValueError as exc:
        raise HTTPError(400, f"Request body is not valid JSON ({exc}). Send {{\"instances\": [...]}}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list) or not document["instances"]:
        raise HTTPError(400, 'Expected a JSON object {"instances": [...]} with at least one instance.')
    count, cap = len(document["instances"]), config.http.max_instances_per_request
    if count > cap:
        raise HTTPError(413, f"The request holds {count} instances; at most {cap} are taken per request "
                             f"(http.max_instances_per_request). Split it into requests of {cap} or fewer.")
    if count > config.queue.max_queue_length:
        raise HTTPError(413, f"The request holds {count} instances, more than the queue ever holds "
                             f"(queue.max_queue_length={config.queue.max_queue_length}). Split it.")
    instances = []
    for index, instance in enumerate(document["instances"]):
        try:
            inputs = codec.instance_from_json(instance, D.DEFAULT_INPUT_NAME)
            for name, value in inputs.items():
                check_input(name, value, model)
        except InputError as exc:
            raise HTTPError(400, f"Instance {index}: {exc}") from None
        instances.append(inputs)
    return instances


def _json_errors(retry_after_s: int):
    """A route decorator that answers whatever the route raises as JSON: a Redis outage as 503
    with ``Retry-After``, anything unexpected as 500 (logged). An exception raised past the route
    would make the server drop the kept-alive connection."""

    def decorate(handler):
        @functools.wraps(handler)
        async def route(*args, **kwargs):
            try:
                return await handler(*args, **kwargs)
            except HTTPError:
                raise
            except RedisUnavailableError as exc:
                raise HTTPError(503, str(exc), {"Retry-After": str(retry_after_s)}) from None
            except Exception as exc:  # noqa: BLE001 - the edge: every failure becomes an answer
                logger.exception("%s failed", handler.__name__)
                raise HTTPError(500, f"Internal error ({type(exc).__name__}: {exc}). The frontend log has the "
                                     f"traceback.") from None

        return route

    return decorate


def create_app(config: ServingConfig) -> FastAPI:
    """The FastAPI application serving the models of ``config``."""
    state: dict[str, Any] = {"counts": Counter()}
    url = config.redis.effective_url
    retry_after = {"Retry-After": str(config.queue.retry_after_s)}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        client = connect(url, asyncio=True, **config.redis.connection_options())
        state["redis"] = client
        state["enqueue"] = client.register_script(ENQUEUE_SCRIPT)
        try:
            yield
        finally:
            await client.aclose()

    # /docs and /openapi.json are routes of their own below, behind the token
    app = FastAPI(title="Zoo Cluster Serving", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    models = {m.name: m for m in config.models}

    answered = _json_errors(config.queue.retry_after_s)

    async def redis_call(call):
        """``await call()``, retried while Redis is unavailable for up to ``redis.retry_s``."""
        return await acall_with_retry(call, url=url, deadline=time.monotonic() + config.redis.retry_s)

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
        path = request.url.path
        named = "/models/{name}/feedback" if path.endswith("/feedback") else "/models/{name}/predict"
        state["counts"][(path if path in _ROUTES else named, exc.status)] += 1
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    async def predict(request: Request, name: str, route: str) -> Response:
        check_token(request)
        if name not in models:
            raise HTTPError(404, f"No model named {name!r}. Served models: {sorted(models)}.")
        instances = _parse_instances(await _read_body(request, config.http.max_request_bytes), models[name], config)
        prefix = f"http-{uuid.uuid4().hex}"
        requests = [(f"{prefix}-{i}", codec.encode(inputs)) for i, inputs in enumerate(instances)]
        args = enqueue_args(requests, config.queue.max_queue_length)
        reply = await redis_call(lambda: state["enqueue"](keys=[D.stream_key(name), D.info_key(name)], args=args))
        try:
            check_enqueued(name, reply, len(requests), config.queue.retry_after_s)
        except QueueFullError as exc:
            raise HTTPError(503, str(exc), retry_after) from None
        uris = [uri for uri, _ in requests]
        results = await _wait(state["redis"], name, uris, config.http.timeout_s, url)
        body = _answer(requests, results)
        status = 422 if "errors" in body else 200
        state["counts"][(route, status)] += 1
        # the results are deleted once the answer is on its way, not before it
        return Response(json.dumps(body, separators=(",", ":"), allow_nan=False), status_code=status,
                        media_type="application/json",
                        background=BackgroundTask(_forget, state["redis"], [D.result_key(name, u) for u in uris]))

    def model_routes(action: str, handler) -> None:
        """``POST /<action>`` (the first model) and ``POST /models/{name}/<action>``, answered by ``handler``."""

        @app.post(f"/{action}", name=f"{action}_default")
        @answered
        async def first_model(request: Request):
            return await handler(request, config.models[0].name, f"/{action}")

        @app.post(f"/models/{{name}}/{action}", name=f"{action}_named")
        @answered
        async def named_model(request: Request, name: str):
            return await handler(request, name, f"/models/{{name}}/{action}")

    model_routes("predict", predict)

    async def feedback(request: Request, name: str, route: str) -> Response:
        check_token(request)
        if name not in models:
            raise HTTPError(404, f"No model named {name!r}. Served models: {sorted(models)}.")
        body = await _read_body(request, config.http.max_request_bytes)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        if not isinstance(document, dict) or "uri" not in document or "label" not in document:
            raise HTTPError(400, 'Expected a JSON object {"uri": "<uri of an answer>", "label": ..., "features": ...} '
                                 f'(features optional). Received {body[:200]!r}.')
        uri = document["uri"]
        served = await redis_call(lambda: state["redis"].get(D.served_key(name, uri))) if isinstance(uri, str) else None
        try:
            fields, increments = feedback_entry(uri, document["label"], document.get("features"), served)
        except InputError as exc:
            raise HTTPError(400, str(exc)) from None

        async def write():
            pipe = state["redis"].pipeline(transaction=True)
            write_feedback(pipe, name, fields, increments)
            await pipe.execute()

        await redis_call(write)
        state["counts"][(route, 200)] += 1
        return JSONResponse({"uri": uri, "version": int(fields["version"]) if "version" in fields else None})

    model_routes("feedback", feedback)

    @app.get("/models")
    @answered
    async def list_models(request: Request):
        check_token(request)
        lengths, alive, dead = await redis_call(lambda: _queue_state(state["redis"], list(models)))
        versions = await redis_call(lambda: _served_versions(state["redis"], list(models)))
        listed = []
        for name, model in models.items():
            listed.append({
                "name": name, "path": model.path, "batch_size": model.batch_size,
                "max_batch_wait_ms": model.max_batch_wait_ms, "workers": model.workers,
                "live_workers": alive[name], "queue_length": lengths[name], "dead_letters": dead[name],
                "top_n": model.top_n, "predict": f"/models/{name}/predict", "serving_versions": versions[name],
            })
        state["counts"][("/models", 200)] += 1
        return JSONResponse({"models": listed, "default": config.models[0].name})

    @app.get("/metrics")
    @answered
    async def get_metrics(request: Request):
        check_token(request)

        async def read():
            pipe = state["redis"].pipeline(transaction=False)
            for name in models:
                pipe.hgetall(D.metrics_key(name))
                pipe.hgetall(D.quality_key(name))
            replies = await pipe.execute()
            raw, quality = dict(zip(models, replies[0::2])), dict(zip(models, replies[1::2]))
            return raw, quality, await _queue_state(state["redis"], list(models))

        raw, quality, (lengths, alive, _) = await redis_call(read)
        state["counts"][("/metrics", 200)] += 1
        text = metrics.render(raw, lengths, alive, dict(state["counts"]), quality)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/health")
    @answered
    async def health(request: Request):
        try:
            await asyncio.wait_for(state["redis"].ping(), timeout=2.0)
        except Exception as exc:  # any Redis failure means unhealthy
            state["counts"][("/health", 503)] += 1
            return JSONResponse({"status": "unavailable", "error": f"Redis does not answer: {exc}"}, status_code=503,
                                headers=retry_after)
        state["counts"][("/health", 200)] += 1
        return JSONResponse({"status": "ok", "models": list(models)})

    @app.get("/openapi.json", include_in_schema=False)
    @answered
    async def openapi(request: Request):
        check_token(request)
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    @answered
    async def docs(request: Request):
        check_token(request)
        # the description is embedded, so the page needs no second, token-less request for it
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title,
                                   swagger_ui_parameters={"spec": app.openapi()})

    return app


def _answer(requests: list[tuple[str, bytes]], results: dict[str, bytes]) -> dict[str, Any]:
    """The JSON body for the results of one request's instances (strict JSON: no NaN): the
    predictions, the uri of each instance (what ``POST /feedback`` names) and the model version
    that answered each (``versions``; ``version`` when one version answered them all)."""
    predictions, errors, warnings, versions = [], [], [], []
    for index, (uri, _) in enumerate(requests):
        value, version = decode_answer(uri, results[uri])
        versions.append(version)
        if isinstance(value, PredictionError):
            predictions.append(None)
            errors.append({"index": index, "error": value.reason})
            continue
        predictions.append(codec.to_json(value))
        non_finite = codec.count_non_finite(value)
        if non_finite:
            plural = non_finite > 1
            warnings.append({"index": index, "warning": f"{non_finite} non-finite value{'s' if plural else ''} "
                                                        f"(NaN or Infinity) {'are' if plural else 'is'} sent as null"})
    answered = {v for v in versions if v is not None}
    body: dict[str, Any] = {"predictions": predictions, "version": answered.pop() if len(answered) == 1 else None,
                            "versions": versions, "uris": [uri for uri, _ in requests]}
    if errors:
        body["errors"] = errors
    if warnings:
        body["warnings"] = warnings
    return body


async def _wait(client: Any, model: str, uris: list[str], timeout_s: float, url: str) -> dict[str, bytes]:
    """The result of every uri; 504 at the deadline. Redis outages are retried until then."""
    deadline = time.monotonic() + timeout_s
    results: dict[str, bytes] = {}
    for uri in uris:
        key = D.result_key(model, uri)
        payload = await acall_with_retry(lambda: read_result(client, key, deadline), url=url, deadline=deadline)
        while payload is None and waiting(deadline):
            payload = await acall_with_retry(lambda: read_result(client, key, deadline), url=url, deadline=deadline)
        if payload is None:
            raise HTTPError(504, f"No result from model {model!r} within {timeout_s} s for {len(uris) - len(results)} "
                                 f"of {len(uris)} instances. Check `zoo-serving status` for live workers.")
        results[uri] = payload
    return results


async def _forget(client: Any, keys: list[str]) -> None:
    """Delete results that were answered (best effort: they expire with their TTL anyway)."""
    try:
        await client.delete(*keys)
    except UNAVAILABLE:
        pass


async def _queue_state(client: Any, names: list[str]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Queue length, live workers and dead letters of each model."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.xlen(D.stream_key(name))
        pipe.xlen(D.dead_letter_key(name))
    replies = await pipe.execute()
    lengths = dict(zip(names, replies[0::2]))
    dead = dict(zip(names, replies[1::2]))
    alive = {}
    for name in names:
        alive[name] = len([key async for key in client.scan_iter(match=D.heartbeat_pattern(name), count=1000)])
    return lengths, alive, dead


async def _served_versions(client: Any, names: list[str]) -> dict[str, list[int]]:
    """The registry versions the live workers of each model serve (from their heartbeats)."""
    served = {}
    for name in names:
        keys = [key async for key in client.scan_iter(match=D.heartbeat_pattern(name), count=1000)]
        served[name] = heartbeat_versions(await client.mget(keys) if keys else [])
    return served


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
