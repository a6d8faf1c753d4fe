"""spark-submit example: the whole online-learning loop on a laptop, through a concept drift.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master local[2] \
        scripts/examples/online_learning.py --workdir /var/tmp/zoo-online [--seconds 90] [--plot loop.png]

1. A classifier is trained on the first concept (label = x0 + x1 > 0), published to the MLflow
   Model Registry (sqlite under --workdir) and gated: it becomes `champion`.
2. Cluster Serving starts with `path: models:/online-demo@champion`: it follows the alias.
3. `NNClassifier.fitStream` trains on the serving feedback stream (Redis Streams, read by the
   "zoo-redis-stream" source), continuing from the champion; every micro-batch publishes a
   version, which the gate compares with the champion on the most recent labelled events.
4. A client sends events, reads each answer with the version that produced it, and sends the
   true label back as feedback. Halfway, the concept drifts (label = x0 - x1 > 0): the served
   accuracy dips, new versions learn the new concept, pass the gate and are swapped in, and the
   accuracy recovers. The timeline is printed (and plotted with --plot), with the freshness of
   each version: the time from the newest event it trained on to the first answer it gave.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np

NAME = "online-demo"
FEATURES = 2
#: Labelled events the gate judges a new version and the champion on.
GATE_WINDOW = 400


def concept(x: np.ndarray, drifted: bool) -> np.ndarray:
    """The true class of each row of `x`: before the drift x0 + x1 > 0, after it x0 - x1 > 0."""
    return ((x[:, 0] - x[:, 1] if drifted else x[:, 0] + x[:, 1]) > 0).astype(np.float64)


def build_estimator(batch_size: int = 64):
    """The classifier: an MLP 2-16-2 trained with Adam, one pass per micro-batch."""
    import torch

    from zoo.nnframes import NNClassifier

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    return (NNClassifier(model=net, criterion=torch.nn.CrossEntropyLoss())
            .setOptimMethod(torch.optim.Adam).setLearningRate(0.02).setBatchSize(batch_size).setMaxEpoch(1))


def frame(spark, x: np.ndarray, y: np.ndarray):
    """A DataFrame of `features` (array<double>) and `label` rows."""
    return spark.createDataFrame([(row.tolist(), float(label)) for row, label in zip(x, y)],
                                 "features array<double>, label double")


@dataclasses.dataclass
class Answer:
    """One served event: when it was answered, by which version, whether it was right, its input."""

    at: float
    version: int | None
    correct: bool
    drifted: bool
    features: np.ndarray


class RecentEvents:
    """The last `size` labelled events (the gate's moving held-out window), shared between threads."""

    def __init__(self, spark, size: int = GATE_WINDOW):
        self.spark, self.size = spark, size
        self._lock = threading.Lock()
        self._x: list[np.ndarray] = []
        self._y: list[float] = []

    def add(self, x: np.ndarray, label: float) -> None:
        """Remember one labelled event."""
        with self._lock:
            self._x.append(x)
            self._y.append(label)
            del self._x[:-self.size], self._y[:-self.size]

    def window(self):
        """The recent events as a DataFrame (what `Gate(heldout=...)` calls before each judgement)."""
        with self._lock:
            x, y = np.array(self._x), np.array(self._y)
        return frame(self.spark, x, y)


def write_config(workdir: pathlib.Path, port: int, tracking_uri: str) -> pathlib.Path:
    """A config.yaml serving the registry's champion with one worker and a managed Redis."""
    config = workdir / "config.yaml"
    config.write_text(
        f"redis:\n  host: 127.0.0.1\n  port: {port}\n"
        f"models:\n  - name: {NAME}\n    path: models:/{NAME}@champion\n    registry: {tracking_uri}\n"
        f"    workers: 1\n    batch_size: 16\n    max_batch_wait_ms: 2\n    follow_poll_s: 2\n")
    return config


def serving(command: str, config: pathlib.Path) -> None:
    """Run `zoo-serving <command> -c config` and fail loudly if it fails."""
    done = subprocess.run([sys.executable, "-m", "zoo.serving.cli", command, "-c", str(config)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"zoo-serving {command} failed:\n{done.stdout}\n{done.stderr}")


def send_events(queue, recent: RecentEvents, seconds: float, rate: float, seed: int = 1) -> list[Answer]:
    """Send events at `rate` per second for `seconds`, the concept drifting halfway; each answer is
    scored and its true label goes back as feedback (the training stream)."""
    rng = np.random.default_rng(seed)
    answers, started = [], time.monotonic()
    while (now := time.monotonic() - started) < seconds:
        drifted = now >= seconds / 2
        x = rng.uniform(-1, 1, size=(1, FEATURES))
        label = float(concept(x, drifted)[0])
        answer = queue.predict(x[0].astype(np.float32), with_version=True)
        predicted = float(np.argmax(np.asarray(answer.value).reshape(-1)))
        answers.append(Answer(now, answer.version, predicted == label, drifted, x[0]))
        queue.feedback(answer.uri, label, features=x[0].tolist())
        recent.add(x[0], label)
        time.sleep(max(0.0, (len(answers) / rate) - (time.monotonic() - started)))
    return answers


def freshness(registry, answers: list[Answer], started_wall: float) -> dict[int, float]:
    """Seconds from the newest event each served version trained on to its first answer."""
    from zoo.streaming.redis_source import parse_id

    first_answer: dict[int, float] = {}
    for answer in answers:
        if answer.version is not None:
            first_answer.setdefault(answer.version, started_wall + answer.at)
    result = {}
    for info in registry.versions(NAME):
        sources = (info.offsets or {}).get("sources") or []
        ids = [s.get("id") for s in sources if isinstance(s, dict) and s.get("id")]
        if ids and info.version in first_answer:
            newest_event_s = max(parse_id(i)[0] for i in ids) / 1000.0
            result[info.version] = first_answer[info.version] - newest_event_s
    return result


def timeline(answers: list[Answer], bucket_s: float = 5.0) -> list[tuple[float, float, set]]:
    """(bucket start, served accuracy, versions that answered) per `bucket_s` seconds."""
    rows = []
    if not answers:
        return rows
    for start in np.arange(0.0, answers[-1].at + bucket_s, bucket_s):
        inside = [a for a in answers if start <= a.at < start + bucket_s]
        if inside:
            rows.append((float(start), float(np.mean([a.correct for a in inside])), {a.version for a in inside}))
    return rows


def plot(rows, drift_at: float, path: str) -> None:
    """Write `draw_timeline`'s figure to the PNG file `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    draw_timeline(ax, rows, drift_at)
    fig.tight_layout()
    fig.savefig(path)


def draw_timeline(ax, rows, drift_at: float) -> None:
    """Served accuracy over time (`timeline` rows), the drift and the versions answering in each interval."""
    ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o")
    ax.axvline(drift_at, color="red", linestyle="--", label="concept drift")
    for start, accuracy, versions in rows:
        ax.annotate(",".join(f"v{v}" for v in sorted(v for v in versions if v is not None)), (start, accuracy),
                    textcoords="offset points", xytext=(0, 6), fontsize=7, ha="center")
    ax.set_xlabel("seconds")
    ax.set_ylabel("served accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")


def run(spark, workdir: pathlib.Path, seconds: float = 90.0, rate: float = 100.0, trigger_s: float = 3.0):
    """The whole loop; returns (answers, registry, the streaming fit's history, freshness per version)."""
    from zoo.nnframes.streaming import Gate
    from zoo.registry import ModelRegistry
    from zoo.serving import InputQueue
    from zoo.serving.defaults import feedback_stream
    from zoo.serving.redis_server import free_port
    from zoo.streaming import register_redis_source

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    registry = ModelRegistry(tracking_uri)  # Redis starts with serving, below

    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, size=(2000, FEATURES))
    first = build_estimator().fit(frame(spark, x0, concept(x0, False)))
    losses = [h["loss"] for h in first.history if h.get("event") == "step"]
    version = registry.publish(NAME, first, metrics={"loss": float(losses[-1])})
    held = rng.uniform(-1, 1, size=(GATE_WINDOW, FEATURES))
    from zoo.registry import evaluate

    registry.gate(NAME, version, metric=evaluate(first, frame(spark, held, concept(held, False)), "accuracy"),
                  higher_is_better=True, metric_name="accuracy")

    config = write_config(workdir, port, tracking_uri)
    serving("start", config)
    registry = ModelRegistry(tracking_uri, redis_url=url)  # from now on alias moves are announced
    fit = None
    try:
        register_redis_source(spark)
        stream = (spark.readStream.format("zoo-redis-stream").option("url", url)
                  .option("stream", feedback_stream(NAME)).schema("features array<double>, label double").load())
        recent = RecentEvents(spark)
        fit = build_estimator().fitStream(
            stream, checkpoint_location=str(workdir / "stream"), registry=registry, model_name=NAME,
            initial_model=first, publish_every_batches=1, trigger={"processingTime": f"{trigger_s} seconds"},
            gate=Gate(heldout=recent.window, metric="accuracy", tolerance=0.02))
        queue = InputQueue(url, NAME)
        started_wall = time.time()
        answers = send_events(queue, recent, seconds, rate)
    finally:
        if fit is not None:
            fit.stop()
        serving("stop", config)
    return answers, registry, fit.history, freshness(registry, answers, started_wall)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="folder for the registry, stream state and serving")
    parser.add_argument("--seconds", type=float, default=90.0, help="how long events flow (the drift is halfway)")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--plot", default=None, help="write the accuracy-over-time plot to this PNG")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from zoo import init_spark

    spark = init_spark(app_name="zoo-online-learning")
    answers, registry, history, fresh = run(spark, pathlib.Path(args.workdir), args.seconds, args.rate)
    rows = timeline(answers)
    print("seconds  served accuracy  versions")
    for start, accuracy, versions in rows:
        print(f"{start:7.0f}  {accuracy:15.3f}  {sorted(v for v in versions if v is not None)}")
    for info in registry.versions(NAME):
        note = f" ({info.rejected_reason})" if info.rejected_reason else ""
        print(f"v{info.version}: {info.status}{note}")
    if fresh:
        print(f"freshness: median {np.median(list(fresh.values())):.1f} s, max {max(fresh.values()):.1f} s "
              f"over {len(fresh)} served versions")
    before = [a.correct for a in answers if not a.drifted]
    tail = [a.correct for a in answers if a.at >= 0.85 * args.seconds]
    print(f"accuracy before the drift {np.mean(before):.3f}, at the end {np.mean(tail):.3f}; "
          f"{len(history)} micro-batches trained")
    if args.plot:
        plot(rows, args.seconds / 2, args.plot)
        print(f"plot written to {args.plot}")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
