"""A serving worker: one readable loop over a Redis consumer group.

    read a batch (XREADGROUP; batch size or max wait, whichever first)
      -> check, decode + preprocess each request (a bad one gets an error result, never stops the loop)
      -> InferenceModel.predict on records of the same input shapes
      -> write results, metrics, XACK + XDEL in one MULTI (acknowledged only with its result)
      -> heartbeat; every second reclaim entries of dead workers (XAUTOCLAIM), one at a time

Entries a worker holds are leased: a thread resets their idle time while the worker lives, so only
the entries of a dead worker are ever reclaimed, however slow the model. A reclaimed entry is a
suspect (its worker died holding it) and runs alone; one delivered more than ``max_deliveries``
times goes to the model's dead-letter stream with an error result, so a request that kills
workers takes down at most ``max_deliveries`` of them and never the requests that shared its
batch. After losing Redis the worker first finishes the entries it still holds (at-least-once).

A model ``path: models:/name@alias`` is served from the registry: a follow thread loads each
version the alias names, and the worker swaps to it between two batches (`zoo.serving.follow`);
each result then carries the version that produced it.

Run one with ``python -m zoo.serving.worker --config config.yaml --model NAME``; `zoo-serving start`
starts ``workers`` of them per model, and `zoo.serving.spark` runs the same loop in Spark tasks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import redis

from zoo import storage
from zoo.serving import codec
from zoo.serving import defaults as D
from zoo.serving.config import ModelConfig, QueueConfig, load_config
from zoo.serving.connection import UNAVAILABLE, connect_config, publish_info
from zoo.serving.errors import ServingConfigError
from zoo.serving.follow import AliasFollower, ServedVersion, is_registry_uri, open_registry, resolve
from zoo.serving.metrics import record_batch, record_dead_letters
from zoo.serving.quality import DriftExport, observe_drift, remember_answers
from zoo.serving.processing import to_model_inputs, top_n

logger = logging.getLogger(__name__)

#: Seconds between two checks of the model's stop key.
STOP_CHECK_INTERVAL_S = 0.5
#: Stream entry fields as redis-py returns them (bytes).
_URI, _DATA, _ENQUEUED_AT = (name.encode() for name in (D.FIELD_URI, D.FIELD_DATA, D.FIELD_ENQUEUED_AT))
#: Milliseconds an idle worker blocks in XREADGROUP before it checks heartbeat and stop key again.
IDLE_BLOCK_MS = 250
#: Seconds between two polls of the stream while a batch fills.
FILL_POLL_S = 0.0005
#: Longest pause between two reconnection attempts when Redis is unreachable.
MAX_BACKOFF_S = 5.0

#: Lua: reset the idle time of the given entries (XCLAIM JUSTID, which counts no delivery), each
#: only while ``consumer`` still owns it. KEYS[1] the stream; ARGV: group, consumer, ids...
RENEW_SCRIPT = """
local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
"""


def check_model_paths(models: list[ModelConfig], where: str = "config.yaml") -> None:
    """Raise unless the model file of every model exists (local paths and URLs, through
    `zoo.storage`), and every registry model (``models:/...``) resolves to a version whose files exist.

    Raises:
        ServingConfigError: naming the missing paths, or why a URL could not be read (a missing
            package such as s3fs, missing S3 credentials, an unreachable endpoint), or why the
            registry could not resolve a model.
    """
    missing = []
    for model in models:
        if is_registry_uri(model.path):
            resolve(open_registry(model), model)
            continue
        try:
            if not storage.exists(model.path):
                missing.append(model.path)
        except (storage.StorageError, ImportError) as exc:
            raise ServingConfigError(f"Cannot read the model path of model {model.name!r}: {exc}") from exc
    if missing:
        raise ServingConfigError(f"Model file(s) {missing} do not exist. Fix `path` in {where}.")


def load_model(model: ModelConfig, path: str | None = None) -> Any:
    """The `zoo.inference.InferenceModel` for ``path`` (default ``model.path``; any kind it detects,
    a URL is fetched into the local cache first), limited to ``model.threads_per_worker`` intra-op threads."""
    try:
        from zoo.inference import InferenceModel
        from zoo.inference.detect import ONNX, OPENVINO, detect_format, local_model
    except ImportError as exc:
        raise ServingConfigError(
            f"Cluster Serving needs zoo.inference to load models ({exc}). Install Zoo with the "
            f"`inference` extra: pip install 'spark-zoo[inference,serving]'."
        ) from exc
    if path is not None:
        model = dataclasses.replace(model, path=path, registry=None)
    elif is_registry_uri(model.path):
        raise ServingConfigError(
            f"Model {model.name!r} is served from the registry ({model.path}): a ServingWorker resolves and follows "
            f"it (local worker processes and Spark jobs do). The Flink engine serves model files only; set `path` to "
            f"a file, or start the deployment without --engine flink.")
    check_model_paths([model])
    _limit_threads(model.threads_per_worker)
    local = local_model(model.path)
    kind = detect_format(local)
    options = {ONNX: {"intra_op_threads": model.threads_per_worker},
               OPENVINO: {"threads": model.threads_per_worker}}.get(kind, {})
    return InferenceModel(concurrent_num=1).load(local, **options)


def _limit_threads(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


def _split(outputs: Any, n: int) -> list[Any]:
    """Per-record outputs of a batch prediction (array, list/tuple of arrays, or dict of arrays)."""
    if isinstance(outputs, dict):
        parts = {k: _split(v, n) for k, v in outputs.items()}
        return [{k: parts[k][i] for k in parts} for i in range(n)]
    if isinstance(outputs, (list, tuple)):
        parts = [_split(v, n) for v in outputs]
        return [[p[i] for p in parts] for i in range(n)]
    outputs = np.asarray(outputs)
    if outputs.ndim == 0 or outputs.shape[0] != n:
        raise ValueError(
            f"The model returned an output of shape {list(outputs.shape)} for a batch of {n} records; "
            f"expected the batch as the first dimension."
        )
    return list(outputs)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _Record:
    entry_id: bytes
    uri: str | None
    enqueued_at: float | None
    fields: dict = field(default_factory=dict)
    inputs: dict[str, np.ndarray] | None = None
    result: dict[str, Any] | None = None
    signature: tuple = field(default=())
    dead_letter: str | None = None
    deliveries: int = 1
    version: int | None = None
    output: Any = None


class _Lease:
    """Keeps the entries a worker holds from looking abandoned: every third of ``claim_idle_ms`` a
    thread resets their idle time (only while the worker still owns them), so that other workers
    reclaim the entries of a dead worker quickly and never those of a slow one."""

    def __init__(self, client: redis.Redis, stream: str, consumer: str, claim_idle_ms: int):
        self._renew = client.register_script(RENEW_SCRIPT)
        self._stream, self._consumer = stream, consumer
        self._interval_s = claim_idle_ms / 3000.0
        self._ids: list[bytes] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"zoo-serving-lease-{consumer}", daemon=True)
        self._thread.start()

    def hold(self, ids: list[bytes]) -> None:
        """The entries held from now on (an empty list once they are acknowledged)."""
        with self._lock:
            self._ids = list(ids)

    def renew(self, ids: list[bytes]) -> None:
        """Reset the idle time of ``ids`` now (those this worker still owns)."""
        self._renew(keys=[self._stream], args=[D.CONSUMER_GROUP, self._consumer, *ids])

    def close(self) -> None:
        """Stop renewing."""
        self._stopped.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            with self._lock:
                ids = list(self._ids)
            if ids:
                try:
                    self.renew(ids)
                except redis.RedisError as exc:  # Redis away: the worker's loop deals with it
                    logger.debug("lease renewal of %d entries failed: %s", len(ids), exc)


class ServingWorker:
    """Serves one model from its request stream until stopped.

    Args:
        model: the model's section of config.yaml.
        queue: the queue section (result TTL, reclaim timing, queue limit).
        client: a synchronous `redis.Redis` (see `zoo.serving.connection.connect`).
        consumer: this worker's consumer name in the group (default ``host-pid-thread``).
        inference_model: an already loaded `InferenceModel`; loaded from ``model.path`` when ``None``.
        registry: the `zoo.registry.ModelRegistry` of a ``models:/`` path; opened from
            ``model.registry`` when ``None``.
    """

    def __init__(self, model: ModelConfig, queue: QueueConfig, client: redis.Redis, consumer: str | None = None,
                 inference_model: Any = None, registry: Any = None):
        self.model = model
        self.queue = queue
        self.redis = client
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident() % 100000}"
        self.inference_model = inference_model
        self.served = ServedVersion(None, inference_model)
        self.registry = registry
        self._follower: AliasFollower | None = None
        self._last_input: Any = None
        self._drift = DriftExport(client, model.name, self.consumer)
        self.stream = D.stream_key(model.name)
        self.answered = 0
        self._stop = threading.Event()
        self._next_heartbeat = 0.0
        self._next_stop_check = 0.0
        self._next_claim = 0.0
        self._lease: _Lease | None = None
        self._backoff = 0.0
        # entries this consumer holds from before: a previous process of the same name died holding
        # them (suspects), or this one lost Redis while processing them
        self._resume: str | None = "died"

    # ---- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return."""
        self._stop.set()

    def run(self) -> int:
        """Serve until `stop` is called or the model's stop key appears; returns records answered."""
        owns_model = self.inference_model is None
        try:
            if owns_model:
                self._load()
            self.start()
            while not self._stop.is_set():
                self._stop.wait(self.turn())
        finally:
            self._teardown(owns_model)
        return self.answered

    def _load(self) -> None:
        """Load the model file, or resolve the registry model, load its version and follow its alias."""
        if not is_registry_uri(self.model.path):
            self.served = ServedVersion(None, load_model(self.model))
        else:
            registry = self.registry if self.registry is not None else open_registry(self.model)
            self._follower = AliasFollower(self.model, registry, self.redis, self._load_warm, self.consumer)
            self.served = self._follower.start()
        self.inference_model = self.served.model

    def _load_warm(self, path: str) -> Any:
        """Load a version's file, and run it once on the inputs of the last batch served (in the
        follow thread, before the swap): runtimes that optimise on their first calls (TorchScript's
        profiling executor) do so before the version answers requests, and a version that fails
        on real inputs is refused."""
        loaded = load_model(self.model, path)
        sample = self._last_input
        if sample is not None:
            loaded.predict(sample)
        return loaded

    def _swap(self) -> None:
        """Between two batches: switch to the version the follower loaded, if any, and free the old one."""
        successor = self._follower.take() if self._follower is not None else None
        if successor is None:
            return
        previous, self.served = self.served, successor
        self.inference_model = successor.model
        self._next_heartbeat = self._next_stop_check = 0.0  # the heartbeat names the version served
        self._drift.export(previous, force=True)
        previous.release()

    def start(self) -> None:
        """Join the consumer group, publish the model's info and start leasing held entries:
        what a worker does once before its first `turn`."""
        self._join_group()
        publish_info(self.redis, self.model, self.queue)
        self._lease = _Lease(self.redis, self.stream, self.consumer, self.queue.claim_idle_ms)
        logger.info("worker %s serving model %r", self.consumer, self.model.name)

    def turn(self) -> float:
        """One turn of the loop (see `_step`), surviving a Redis outage or a deleted stream.

        Returns:
            Seconds to wait before the next turn: 0, or the backoff while Redis is away.
        """
        try:
            self._step()
            self._backoff = 0.0
        except UNAVAILABLE as exc:
            self._resume = self._resume or "outage"
            self._backoff = min(max(self._backoff * 2, 0.1), MAX_BACKOFF_S)
            logger.warning("worker %s lost Redis (%s); retrying in %.1f s", self.consumer, exc, self._backoff)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc) and "no longer exists" not in str(exc):
                raise
            logger.warning("the stream or group of model %r was deleted; joining again", self.model.name)
            self._join_group()
        finally:
            self._lease.hold([])
        return self._backoff

    def _step(self) -> None:
        """One turn of the loop: swap to a newly loaded version (between two batches), heartbeat
        (naming the version), then entries held from before, a reclaimed entry, or a fresh batch."""
        self._swap()
        self._heartbeat()
        self._drift.export(self.served)
        if self._resume is not None:
            held = self._held_from_before()
            if held:
                self._process(held, suspect=self._resume == "died")
                return
            self._resume = None
        reclaimed = self._reclaim()
        if reclaimed:
            self._process(reclaimed, suspect=True)
            return
        entries = self._read_batch()
        if entries:
            self._process(entries)

    def _join_group(self) -> None:
        try:
            # Start at "0": requests queued before the first worker came up are served too.
            self.redis.xgroup_create(self.stream, D.CONSUMER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _heartbeat(self) -> None:
        """Refresh the heartbeat key every few seconds; check the stop key twice a second."""
        now = time.monotonic()
        if now < self._next_stop_check:
            return
        self._next_stop_check = now + STOP_CHECK_INTERVAL_S
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(D.stop_key(self.model.name))
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + D.DEFAULT_HEARTBEAT_TTL_S / 3
            info = json.dumps({"consumer": self.consumer, "pid": os.getpid(), "host": socket.gethostname(),
                               "answered": self.answered, "time": time.time(), "version": self.served.version})
            pipe.set(D.heartbeat_key(self.model.name, self.consumer), info, ex=D.DEFAULT_HEARTBEAT_TTL_S)
        if pipe.execute()[0]:
            logger.info("worker %s found the stop key of model %r", self.consumer, self.model.name)
            self._stop.set()

    def _teardown(self, owns_model: bool) -> None:
        if self._lease is not None:
            self._lease.close()
        if self._follower is not None:
            self._follower.close()
        try:
            self.redis.delete(D.heartbeat_key(self.model.name, self.consumer))
            pending = self.redis.xpending_range(self.stream, D.CONSUMER_GROUP, "-", "+", 1, consumername=self.consumer)
            if not pending:
                self.redis.xgroup_delconsumer(self.stream, D.CONSUMER_GROUP, self.consumer)
        except redis.RedisError as exc:
            logger.warning("worker %s could not clean up in Redis: %s", self.consumer, exc)
        if owns_model and self.inference_model is not None:
            self.served.release()

    # ---- read ----------------------------------------------------------------------------------

    def _read(self, count: int, block_ms: int | None, new: bool = True) -> list:
        """New entries (``>``), or with ``new=False`` this consumer's own pending ones (``0``)."""
        reply = self.redis.xreadgroup(D.CONSUMER_GROUP, self.consumer, {self.stream: ">" if new else "0"},
                                      count=count, block=block_ms)
        entries = reply[0][1] if reply else []
        gone = [entry_id for entry_id, fields in entries if fields is None]
        if gone:  # pending entries trimmed from the stream: nothing left to answer
            self.redis.xack(self.stream, D.CONSUMER_GROUP, *gone)
        return [entry for entry in entries if entry[1] is not None]

    def _read_batch(self) -> list:
        """Up to ``batch_size`` entries: block for the first, then wait ``max_batch_wait_ms`` at most.

        The fill wait polls without BLOCK: Redis times blocked commands out on its ``hz`` clock
        (every 100 ms by default), far coarser than a few milliseconds of batch wait.
        """
        size = self.model.batch_size
        entries = self._read(size, block_ms=IDLE_BLOCK_MS)
        if not entries:
            return entries
        self._lease.hold([entry_id for entry_id, _ in entries])
        deadline = time.monotonic() + self.model.max_batch_wait_ms / 1000.0
        while len(entries) < size:
            more = self._read(size - len(entries), block_ms=None)
            entries.extend(more)
            if more:
                self._lease.hold([entry_id for entry_id, _ in entries])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not more:
                time.sleep(min(FILL_POLL_S, remaining))
        return entries

    def _reclaim(self) -> list:
        """One entry of a worker that died holding it (its lease lapsed: idle > claim_idle_ms),
        taken over by this one; while there are more, the next turn reclaims again at once."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        reply = self.redis.xautoclaim(self.stream, D.CONSUMER_GROUP, self.consumer,
                                      min_idle_time=self.queue.claim_idle_ms, start_id="0-0", count=1)
        entries = [entry for entry in reply[1] if entry[1] is not None] if reply else []
        deleted = [entry[0] for entry in reply[1] if entry[1] is None] if reply else []
        if deleted:  # entries trimmed from the stream while pending: nothing left to answer
            self.redis.xack(self.stream, D.CONSUMER_GROUP, *deleted)
        self._next_claim = now if entries or deleted else now + D.DEFAULT_CLAIM_INTERVAL_S
        if entries:
            logger.warning("worker %s reclaimed entry %s of a dead worker", self.consumer, entries[0][0])
        return entries

    def _held_from_before(self) -> list:
        """Entries this consumer still holds: after a restart under the same name they are read
        again (one at a time, each counted as a delivery: its worker died); after losing Redis,
        all of them, with their lease renewed and no delivery counted."""
        if self._resume == "died":
            return self._read(1, block_ms=None, new=False)
        pending = self.redis.xpending_range(self.stream, D.CONSUMER_GROUP, "-", "+", self.model.batch_size,
                                            consumername=self.consumer)
        ids = [p["message_id"] for p in pending]
        if not ids:
            return []
        self._lease.renew(ids)
        pipe = self.redis.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xrange(self.stream, entry_id, entry_id, count=1)
        entries = [found[0] for found in pipe.execute() if found]
        gone = set(ids) - {entry_id for entry_id, _ in entries}
        if gone:  # trimmed while held
            self.redis.xack(self.stream, D.CONSUMER_GROUP, *gone)
        if entries:
            logger.info("worker %s resumes %d entries it held when Redis went away", self.consumer, len(entries))
        return entries

    # ---- process ------------------------------------------------------------------------------

    def _process(self, entries: list, suspect: bool = False) -> None:
        self._lease.hold([entry_id for entry_id, _ in entries])
        exhausted = self._exhausted(entries) if suspect else {}
        records = [self._dead_letter(entry_id, fields, exhausted[entry_id]) if entry_id in exhausted
                   else self._decode(entry_id, fields) for entry_id, fields in entries]
        groups: dict[tuple, list[_Record]] = {}
        for record in records:
            if record.result is None:
                groups.setdefault(record.signature, []).append(record)
        served = self.served
        for group in groups.values():
            observe_drift(served.drift, [record.inputs for record in group])
            self._predict(group, served)
        self._write(records)

    def _decode(self, entry_id: bytes, fields: dict) -> _Record:
        uri = fields.get(_URI)
        record = _Record(entry_id, uri.decode("utf-8", "replace") if uri is not None else None, None, fields)
        try:
            if uri is None:
                raise ValueError(f"the stream entry has no `{D.FIELD_URI}` field")
            record.enqueued_at = float(fields.get(_ENQUEUED_AT, b"nan"))
            if _DATA not in fields:
                raise ValueError(f"the stream entry has no `{D.FIELD_DATA}` field")
            record.inputs = to_model_inputs(codec.decode(fields[_DATA]), self.model)
            record.signature = tuple((name, a.shape, a.dtype.str) for name, a in record.inputs.items())
        except Exception as exc:  # a poison request is answered, never raised
            record.result = {D.RESULT_ERROR: f"Cannot read request: {_error_text(exc)}"}
        return record

    def _exhausted(self, entries: list) -> dict[bytes, int]:
        """Entry id -> deliveries, for the entries delivered more than ``max_deliveries`` times
        (the delivery now under way included): their workers kept dying."""
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, _ in entries:
            pipe.xpending_range(self.stream, D.CONSUMER_GROUP, entry_id, entry_id, 1)
        deliveries = {entry_id: pending[0]["times_delivered"] if pending else 1
                      for (entry_id, _), pending in zip(entries, pipe.execute())}
        return {entry_id: n for entry_id, n in deliveries.items() if n > self.queue.max_deliveries}

    def _dead_letter(self, entry_id: bytes, fields: dict, deliveries: int) -> _Record:
        """A record for an exhausted entry, bound for the dead-letter stream; it is not decoded,
        since decoding may be what killed its workers."""
        uri = fields.get(_URI)
        reason = (f"delivered {deliveries} times (queue.max_deliveries={self.queue.max_deliveries}) and every "
                  f"worker holding it died")
        return _Record(entry_id, uri.decode("utf-8", "replace") if uri is not None else None, None,
                       fields=fields, dead_letter=reason, deliveries=deliveries,
                       result={D.RESULT_ERROR: f"The request was {reason}; it is not retried again. It was moved to the "
                                        f"dead-letter stream {D.dead_letter_key(self.model.name)} (id "
                                        f"{entry_id.decode()})."})

    def _predict(self, group: list[_Record], served: ServedVersion) -> None:
        """Predict records of one input signature together; on failure, one by one to isolate the bad ones."""
        try:
            outputs = self._predict_batch(group, served.model)
        except Exception as exc:
            if len(group) == 1:
                group[0].result = {D.RESULT_ERROR: f"Prediction failed: {_error_text(exc)}"}
                return
            for record in group:
                self._predict([record], served)
            return
        for record, output in zip(group, outputs):
            try:
                record.result = {D.RESULT_OK: top_n(output, self.model.top_n) if self.model.top_n else output}
            except Exception as exc:
                record.result = {D.RESULT_ERROR: f"Postprocessing failed: {_error_text(exc)}"}
                continue
            record.output = output
            if served.version is not None:
                record.version = record.result[D.RESULT_VERSION] = served.version

    def _predict_batch(self, group: list[_Record], model: Any) -> list[Any]:
        names = list(group[0].inputs)
        batches = {name: np.stack([record.inputs[name] for record in group]) for name in names}
        model_input = batches[names[0]] if len(names) == 1 else batches
        outputs = _split(model.predict(model_input), len(group))
        self._last_input = model_input
        return outputs

    # ---- write ---------------------------------------------------------------------------------

    def _write(self, records: list[_Record]) -> None:
        """Results, metrics, XACK and XDEL in one transaction: an entry is acknowledged only with its result."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        errors = 0
        latencies = []
        for record in records:
            if record.uri is None:
                logger.error("dropping stream entry %r of model %r: it has no `%s` field", record.entry_id,
                             self.model.name, D.FIELD_URI)
                errors += 1
                continue
            errors += D.RESULT_ERROR in record.result
            if record.enqueued_at is not None and np.isfinite(record.enqueued_at):
                latencies.append(max(0.0, now - record.enqueued_at))
            key = D.result_key(self.model.name, record.uri)
            try:
                payload = codec.encode(record.result)
            except Exception as exc:
                errors += D.RESULT_ERROR not in record.result
                payload = codec.encode({D.RESULT_ERROR: f"The model output cannot be encoded: {_error_text(exc)}"})
            pipe.delete(key)
            pipe.rpush(key, payload)
            pipe.expire(key, self.queue.result_ttl_s)
        dead = [record for record in records if record.dead_letter]
        for record in dead:
            kept = {key.decode(): record.fields[key] for key in (_URI, _DATA, _ENQUEUED_AT) if key in record.fields}
            pipe.xadd(D.dead_letter_key(self.model.name),
                      {**kept, "id": record.entry_id, "reason": record.dead_letter, "deliveries": record.deliveries,
                       "dead_lettered_at": repr(now)}, maxlen=D.DEFAULT_DEAD_LETTER_MAX_LENGTH, approximate=True)
        if self.model.feedback_ttl_s:
            remember_answers(pipe, self.model.name, [(r.uri, r.version, r.output) for r in records if r.version is not None],
                             self.model.feedback_ttl_s)
        record_batch(pipe, self.model.name, len(records), errors, latencies)
        record_dead_letters(pipe, self.model.name, len(dead))
        ids = [record.entry_id for record in records]
        pipe.xack(self.stream, D.CONSUMER_GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        self.answered += len(records)


def main(argv: list[str] | None = None) -> int:
    """Entry point of one worker process (``python -m zoo.serving.worker``)."""
    parser = argparse.ArgumentParser(description="Run one Cluster Serving worker.")
    parser.add_argument("--config", required=True, help="path of config.yaml")
    parser.add_argument("--model", default=None, help="model name (default: the first in config.yaml)")
    parser.add_argument("--consumer", default=None, help="consumer name in the group")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    worker = ServingWorker(config.model(args.model), config.queue, connect_config(config), consumer=args.consumer)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
