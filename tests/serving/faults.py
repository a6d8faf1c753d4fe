"""Helpers of the fault-injection tests: the counts every one of them reports, hostile payloads,
worker processes that can be killed, and a restartable Redis."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from zoo.serving import InputQueue, OutputQueue
from zoo.serving import defaults as D
from zoo.serving.config import ServingConfig, save_config

REPO = pathlib.Path(__file__).resolve().parents[2]


@dataclass
class Tally:
    """What a fault-injection run tried and what became of it; ``str`` goes into every assertion.

    ``tried`` counts requests (or hostile inputs); each ends as ``answered`` (a correct answer),
    ``clear_error`` (refused with an error that names the problem), ``lost`` (no answer),
    ``wrong`` (an answer that differs from the model's), or an entry in ``failures`` (anything
    else, described). ``duplicated`` counts extra deliveries (at-least-once), reported, allowed.
    """

    name: str
    tried: int = 0
    answered: int = 0
    clear_error: int = 0
    lost: int = 0
    wrong: int = 0
    duplicated: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        """Record an outcome that is neither an answer nor a clear error."""
        self.failures.append(what)

    def __str__(self) -> str:
        shown = "".join(f"\n  - {f}" for f in self.failures[:20])
        return (f"{self.name}: tried {self.tried}, answered {self.answered}, clear errors {self.clear_error}, "
                f"lost {self.lost}, wrong {self.wrong}, duplicated {self.duplicated}, "
                f"other failures {len(self.failures)}{shown}")


class LoadClients:
    """Client threads that load a deployment with requests ``r<i>`` (inputs ``x[i]``) and count in
    ``tally`` what becomes of each: answered right, wrong, lost, or failed."""

    def __init__(self, redis_url: str, model: str, x: np.ndarray, expected: np.ndarray, tally: Tally):
        self.redis_url, self.model, self.x, self.expected, self.tally = redis_url, model, x, expected, tally
        self.accepted: list[int] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def record(self, got, indices) -> None:
        """Count answers ``got`` for requests ``indices`` against the model's own outputs."""
        with self.lock:
            for answer, i in zip(got, indices):
                right = close_enough(answer, self.expected[i])
                self.tally.answered += right
                self.tally.wrong += not right

    def enqueue(self, indices) -> None:
        """`InputQueue.enqueue` each request; the accepted ones are answered later (`collect`)."""
        with InputQueue(self.redis_url, self.model) as queue:
            for i in indices:
                try:
                    queue.enqueue(f"r{i}", input=self.x[i])
                except Exception as exc:  # every failure is counted, none is expected
                    self.tally.fail(f"enqueue r{i}: {type(exc).__name__}: {exc}")
                    continue
                with self.lock:
                    self.accepted.append(i)

    def predict(self, indices, timeout_s: float = 60.0) -> None:
        """`InputQueue.predict` each request, one after the other."""
        with InputQueue(self.redis_url, self.model) as queue:
            for i in indices:
                try:
                    got = queue.predict(self.x[i], timeout=timeout_s)
                except Exception as exc:
                    self.tally.fail(f"predict {i}: {type(exc).__name__}: {exc}")
                    continue
                self.record([got], [i])

    def start(self, *jobs) -> None:
        """Run each ``(method, indices)`` in a thread of its own."""
        for job, indices in jobs:
            self.tally.tried += len(indices)
            self.threads.append(threading.Thread(target=job, args=(list(indices),), daemon=True))
            self.threads[-1].start()

    def join(self, timeout_s: float = 180.0) -> None:
        """Wait for the client threads; fail when one hangs."""
        for thread in self.threads:
            thread.join(timeout_s)
        assert not any(t.is_alive() for t in self.threads), f"client threads hang. {self.tally}"

    def collect(self, timeout_s: float = 60.0) -> None:
        """Read the result of every accepted request (waiting up to ``timeout_s`` in all)."""
        deadline = time.monotonic() + timeout_s
        with OutputQueue(self.redis_url, self.model) as outputs:
            for i in self.accepted:
                got = outputs.query(f"r{i}", timeout=max(deadline - time.monotonic(), 0))
                if got is None:
                    self.tally.lost += 1
                else:
                    self.record([got], [i])


def wait_until(predicate, timeout_s: float = 30.0, what: str = "condition", poll_s: float = 0.01):
    """Poll ``predicate`` until it returns something truthy (returned) or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(poll_s)


def png_bomb(width: int, height: int) -> bytes:
    """A valid black RGB PNG of ``width`` x ``height`` whose file is tiny (zlib of zeros), built
    row by row so the test never holds the decoded image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * width)  # filter byte + RGB
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def nested_list(depth: int) -> bytes:
    """``{"instances": [[[...[0.0]...]]]}`` nested ``depth`` levels deep."""
    return b'{"instances": ' + b"[" * depth + b"0.0" + b"]" * depth + b"}"


def nested_object(depth: int) -> bytes:
    """``{"instances": [{"a": {"a": ... 0.0}}]}`` nested ``depth`` objects deep."""
    return b'{"instances": [' + b'{"a": ' * depth + b"0.0" + b"}" * depth + b"]}"


class WorkerProcesses:
    """Serving workers as real processes (``python -m zoo.serving.worker``), each with its own
    consumer name, so a test can ``kill -9`` them."""

    def __init__(self, config: ServingConfig, folder: pathlib.Path):
        self.config_path = folder / "workers.yaml"
        save_config(config, self.config_path)
        self.folder = folder
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, *consumers: str, model: str | None = None) -> None:
        """Start one worker per consumer name (not waiting for them)."""
        for consumer in consumers:
            log = open(self.folder / f"{consumer}.log", "ab")
            args = [sys.executable, "-m", "zoo.serving.worker", "--config", str(self.config_path), "--consumer", consumer]
            if model:
                args += ["--model", model]
            self.processes[consumer] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                                        env={**os.environ, "PYTHONPATH": str(REPO)})
            log.close()

    def wait_ready(self, client, model: str, timeout_s: float = 120.0) -> None:
        """Wait until every started worker has a heartbeat."""
        def ready():
            for consumer, process in self.processes.items():
                assert process.poll() is None, f"worker {consumer} exited: {self.log(consumer)}"
            return all(client.exists(D.heartbeat_key(model, c)) for c in self.processes)
        wait_until(ready, timeout_s, "the worker processes to start", poll_s=0.05)

    def kill(self, consumer: str) -> None:
        """SIGKILL one worker and reap it."""
        process = self.processes[consumer]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def alive(self) -> list[str]:
        """Consumer names of the workers still running."""
        return [c for c, p in self.processes.items() if p.poll() is None]

    def peak_rss_mb(self, consumer: str) -> float:
        """Peak resident memory (VmHWM) of a worker, in MiB."""
        with open(f"/proc/{self.processes[consumer].pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise AssertionError("VmHWM missing from /proc/<pid>/status")

    def log(self, consumer: str) -> str:
        """The tail of a worker's log."""
        path = self.folder / f"{consumer}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def stop_all(self) -> None:
        """Kill every worker still running."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


def restart_redis(server, kill: bool = True) -> float:
    """Kill (SIGKILL) or stop (SIGTERM) the server's process and start it again on the same port
    and data folder; returns the seconds it was unreachable."""
    began = time.monotonic()
    server.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    server.process.wait(10)
    server.start()
    return time.monotonic() - began


def close_enough(got, expected) -> bool:
    """Whether a prediction matches the reference (float32 tolerance)."""
    return bool(np.allclose(np.asarray(got, dtype=np.float32), expected, rtol=1e-4, atol=1e-5))


def strict_json(text: str):
    """Parse ``text`` as strict JSON (``NaN`` and ``Infinity`` are errors, as in browsers)."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)
