"""Live progress from the workers to the driver: a tqdm bar, TensorBoard events and a history.

The driver listens on a TCP port of its own host; workers connect and send JSON lines. Rank 0
sends training progress; any worker sends its traceback when it fails, so the driver can cancel
the stage at once instead of waiting for Spark's retries. Rank 0 also sends the trained weights
this way (a header line, then the raw bytes) rather than through the Spark job's result, which
would hold several copies of them in the driver JVM's heap.

TensorBoard events go to a local directory as they come. When the TensorBoard directory is a
remote URL (hdfs://, s3://), they are written to a local temporary directory and uploaded to the
URL at flush points (each validation result, and at most every `DEFAULT_TENSORBOARD_SYNC_S`
seconds of training steps) and when the server closes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback

from zoo import storage

logger = logging.getLogger(__name__)

#: Seconds between two progress messages from rank 0 (errors and validation are sent at once).
DEFAULT_REPORT_INTERVAL_S = 0.25
#: Seconds between two uploads of TensorBoard events to a remote URL during training steps.
DEFAULT_TENSORBOARD_SYNC_S = 30.0
#: Seconds the driver waits for the trained weights after the job has finished (they are sent
#: before the job's result, so this is only the tail of their transfer).
DEFAULT_RESULT_TIMEOUT_S = 120.0
#: Seconds one send of the weights may stall before the worker gives up on the driver.
RESULT_SEND_TIMEOUT_S = 60.0
#: Seconds `close` waits, in all, for the workers' progress connections to deliver their last
#: messages. Tasks close them when they end, so this is reached only on a host that vanished;
#: on a loaded driver a few seconds were not always enough to read the last step's losses.
DRAIN_TIMEOUT_S = 30.0


class ProgressServer:
    """Driver side: accepts worker connections and dispatches their messages.

    Attributes:
        history: one {"event": "step", "iteration", "epoch", "loss"} per training step, the
            "validation" messages, and a {"event": "start", "iteration"} each time the stage
            starts (more than one when Spark retried it and it resumed from a checkpoint).
        failures: (rank, traceback) of every worker that reported an error.
        non_finite_loss: (iteration, epoch, loss) when a worker stopped on a NaN/Inf loss, else None.
        started_at: wall time when `start` was called; `first_step_at` when the first step arrived.
        topology: the workers' hosts and transport, as rank 0 reported them (logged once).
    """

    def __init__(self, host: str, show_progress: bool = True, tensorboard_dir: str | None = None,
                 on_failure=None):
        self.host = host
        self.show_progress = show_progress
        self.tensorboard_dir = tensorboard_dir
        self.on_failure = on_failure
        self.history: list[dict] = []
        self.failures: list[tuple[int, str]] = []
        self.non_finite_loss: tuple[int, int, float] | None = None
        self.started_at = time.time()
        self.first_step_at: float | None = None
        self.topology: str | None = None
        self._bar = None
        self._writers: dict[str, object] = {}
        remote = tensorboard_dir is not None and not storage.is_local(tensorboard_dir)
        self._events_dir = tempfile.mkdtemp(prefix="zoo-tensorboard-") if remote else tensorboard_dir
        self._synced_at = time.time()
        self._lock = threading.Lock()
        self._results: dict[str, bytes] = {}
        self._results_ready = threading.Condition()
        self._socket = socket.create_server((host, 0))
        self._socket.settimeout(0.5)
        self._closed = threading.Event()
        self._readers: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept_loop, name="zoo-progress", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the workers connect to."""
        return self.host, self._socket.getsockname()[1]

    def start(self) -> "ProgressServer":
        """Start accepting connections in a background thread."""
        self.started_at = time.time()
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening, close the bar and flush TensorBoard files (uploading them to a remote
        TensorBoard URL)."""
        self._closed.set()
        self._thread.join(timeout=5)
        self._socket.close()
        # Workers close their connection when their task ends: drain what they sent last.
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        for reader in self._readers:
            reader.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            if self._bar is not None:
                self._bar.close()
            for writer in self._writers.values():
                writer.close()
            self._sync_events(final=True)

    def _sync_events(self, final: bool = False) -> None:
        """Upload the local TensorBoard events to a remote `tensorboard_dir` (no-op when local);
        `final` removes the local copy once uploaded."""
        if self._events_dir == self.tensorboard_dir:
            return
        if self._writers:
            for writer in self._writers.values():
                writer.flush()
            try:
                storage.upload(self._events_dir, self.tensorboard_dir)
            except Exception:  # noqa: BLE001 - lost logs must not fail the fit; they stay on local disk
                logger.warning("Could not upload TensorBoard events to %s; they are kept in %s",
                               self.tensorboard_dir, self._events_dir, exc_info=True)
                return
            self._synced_at = time.time()
        if final:
            shutil.rmtree(self._events_dir, ignore_errors=True)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._socket.accept()
            except (socket.timeout, OSError):
                continue
            reader = threading.Thread(target=self._read_loop, args=(conn,), daemon=True)
            self._readers.append(reader)
            reader.start()

    def _read_loop(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream:
            for line in stream:
                try:
                    message = json.loads(line)
                    if message.get("event") == "result":
                        self._receive_result(message, stream.read(int(message["size"])))
                    else:
                        self.handle(message)
                except Exception:  # a bad message must never take the driver down
                    logger.exception("Ignoring a progress message that could not be handled")

    def _receive_result(self, header: dict, blob: bytes) -> None:
        digest = hashlib.sha1(blob).hexdigest()
        if len(blob) != int(header["size"]) or digest != header["sha1"]:
            logger.warning("A worker's result arrived incomplete (%d of %s bytes); ignored", len(blob), header["size"])
            return
        with self._results_ready:
            self._results[digest] = blob
            self._results_ready.notify_all()

    def wait_for_result(self, digest: str, timeout_s: float = DEFAULT_RESULT_TIMEOUT_S) -> bytes | None:
        """The result bytes whose SHA-1 is `digest` (sent by `ProgressClient.send_result`), once
        they have arrived; None if they do not arrive within `timeout_s`."""
        with self._results_ready:
            self._results_ready.wait_for(lambda: digest in self._results, timeout=timeout_s)
            return self._results.get(digest)

    def handle(self, message: dict) -> None:
        """Dispatch one message from a worker."""
        kind = message.get("event")
        with self._lock:
            if kind == "start":
                self.history.append({"event": "start", "iteration": message.get("iteration", 0)})
                if message.get("topology") and self.topology is None:
                    self.topology = message["topology"]
                    logger.info("Zoo fit topology: %s", self.topology)
                self._start_bar(message)
            elif kind == "step":
                self._on_step(message)
            elif kind == "validation":
                self.history.append(message)
                self._scalars("validation", message["iteration"], message["metrics"])
                self._sync_events()
                if self._bar is not None:
                    self._bar.write(f"Validation at iteration {message['iteration']}: " + ", ".join(
                        f"{k}={v:.4f}" for k, v in message["metrics"].items()))
            elif kind == "error":
                self.failures.append((int(message["rank"]), message["traceback"]))
                if message.get("non_finite_loss") and self.non_finite_loss is None:
                    iteration, epoch, loss = message["non_finite_loss"]
                    self.non_finite_loss = (int(iteration), int(epoch), float(loss))
        if kind == "error" and self.on_failure is not None:
            self.on_failure()

    def _start_bar(self, message: dict) -> None:
        if not self.show_progress or self._bar is not None:
            return
        from tqdm.auto import tqdm

        total = message.get("total_iterations")
        self._bar = tqdm(total=total, initial=message.get("iteration", 0), unit="it", desc="Zoo fit",
                         dynamic_ncols=True)

    def _on_step(self, message: dict) -> None:
        if self.first_step_at is None:
            self.first_step_at = time.time()
        for iteration, loss in message["losses"]:
            self.history.append({"event": "step", "iteration": iteration, "epoch": message["epoch"], "loss": loss})
            self._scalars("train", iteration, {"Loss": loss})
        self._scalars("train", message["iteration"], {"Throughput": message["samples_per_sec"]})
        if time.time() - self._synced_at >= DEFAULT_TENSORBOARD_SYNC_S:
            self._sync_events()
        if self._bar is not None:
            self._bar.n = message["iteration"]
            self._bar.set_postfix(epoch=message["epoch"] + 1, loss=f"{message['loss']:.4f}",
                                  samples_per_s=f"{message['samples_per_sec']:.0f}", refresh=False)
            self._bar.refresh()

    def write_profile(self, profiles: list[dict], iteration: int) -> None:
        """Write every worker's step-time breakdown (`StepProfile.summary()`, rank order) to
        TensorBoard under profile/: one scalar per phase and rank (`<phase>_ms/rank<r>`) at
        `iteration`, and the text table. No-op without a TensorBoard directory."""
        if self.tensorboard_dir is None:
            return
        from zoo.engine.profile import PHASES, format_table

        with self._lock:
            for rank, summary in enumerate(profiles):
                self._scalars("profile", iteration, {f"{phase}_ms/rank{rank}": summary[phase]
                                                     for phase in PHASES + ("other", "step_ms")})
            # Markdown renders the table as code only when it is indented.
            table = "\n".join("    " + line for line in format_table(profiles).splitlines())
            self._writers["profile"].add_text("step_time_breakdown", table, iteration)

    def _scalars(self, split: str, step: int, values: dict) -> None:
        if self.tensorboard_dir is None:
            return
        writer = self._writers.get(split)
        if writer is None:
            from torch.utils.tensorboard import SummaryWriter

            writer = self._writers[split] = SummaryWriter(os.path.join(self._events_dir, split))
        for name, value in values.items():
            writer.add_scalar(name, value, step)


class ProgressClient:
    """Worker side: sends JSON lines to the driver; never lets a broken connection stop training."""

    def __init__(self, address: tuple[str, int], rank: int, interval_s: float = DEFAULT_REPORT_INTERVAL_S):
        self.address = tuple(address)
        self.rank = rank
        self.interval_s = interval_s
        self._socket: socket.socket | None = None
        self._last_sent = 0.0
        self._losses: list[tuple[int, float]] = []

    def _send(self, message: dict) -> None:
        try:
            if self._socket is None:
                self._socket = socket.create_connection(self.address, timeout=10)
            self._socket.sendall((json.dumps(message) + "\n").encode("utf-8"))
        except OSError:
            logger.warning("Progress channel to the driver at %s is down", self.address)
            self.close()

    def start(self, **fields) -> None:
        """Announce the run (total iterations, where it resumes)."""
        self._send({"event": "start", **fields})

    def step(self, iteration: int, loss: float, force: bool = False, **fields) -> None:
        """Record one step's loss; send the losses recorded so far at most every `interval_s`
        (or now, with `force`) together with `fields`."""
        self._losses.append((iteration, loss))
        now = time.time()
        if force or now - self._last_sent >= self.interval_s:
            self._last_sent = now
            losses, self._losses = self._losses, []
            self._send({"event": "step", "iteration": iteration, "loss": loss, "losses": losses, **fields})

    def validation(self, iteration: int, epoch: int, metrics: dict) -> None:
        """Report validation results."""
        self._send({"event": "validation", "iteration": iteration, "epoch": epoch, "metrics": metrics})

    def send_result(self, blob: bytes) -> str:
        """Send `blob` (the trained weights) to the driver on a connection of its own; return its
        SHA-1, which the driver asks `ProgressServer.wait_for_result` for.

        Raises:
            OSError: the driver could not be reached (unlike progress, a lost result fails the task).
        """
        digest = hashlib.sha1(blob).hexdigest()
        header = json.dumps({"event": "result", "rank": self.rank, "size": len(blob), "sha1": digest}) + "\n"
        with socket.create_connection(self.address, timeout=RESULT_SEND_TIMEOUT_S) as connection:
            connection.sendall(header.encode("utf-8"))
            connection.sendall(blob)
        return digest

    def error(self, exc: BaseException) -> None:
        """Report this worker's failure with its traceback."""
        from zoo.errors import NonFiniteLossError

        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = {"event": "error", "rank": self.rank, "traceback": text}
        if isinstance(exc, NonFiniteLossError):
            # The loss as text: JSON has no NaN or Infinity.
            message["non_finite_loss"] = [exc.iteration, exc.epoch, str(exc.loss)]
        self._send(message)

    def close(self) -> None:
        """Close the connection."""
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None
