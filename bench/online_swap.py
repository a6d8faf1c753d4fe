"""Swap cost of serving that follows a registry alias: p99 latency while versions swap against steady state.

One worker process serves ``models:/cnn@champion`` from a sqlite MLflow registry; client threads
send requests through `InputQueue.predict`. Each round has three phases under the same load:
steady (the alias stays put), control (another process moves an alias the worker does not follow
every ``--swap-every`` seconds: what moving costs the machine, apart from swaps) and swapping (it
moves ``champion`` between two versions; each move is published on Redis, the worker loads the
version in the background and swaps between batches). The table gives requests/s, p50 and p99 of
each phase (medians over the rounds), the ratio of the p99s (target: <= 1.5) and the version
changes the answers show. A failed request fails the run.

    .venv/bin/python bench/online_swap.py            # full run
    .venv/bin/python bench/online_swap.py --quick    # smoke run

Needs redis-server (apt) and the registry extra (MLflow).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from serving_load import BATCH_SIZE, BATCH_WAIT_MS, INPUT_SHAPE, LOOPBACK, build_model, thread_load  # noqa: E402

#: The p99 during swaps may be at most this many times the steady p99.
TARGET_RATIO = 1.5
#: Seconds the alias-moving process gets to start (import MLflow, open the registry).
MOVER_START_S = 15.0
#: Seconds of load before the steady phase, not measured.
WARMUP_S = 5.0
#: Seconds between two phases.
GAP_S = 1.0
NAME = "cnn"


def publish_versions(registry, folder: str) -> list[int]:
    """Two versions of the CNN (other weights, same inputs)."""
    import torch

    versions = []
    for seed in (0, 1):
        path = build_model(folder)
        net = torch.jit.load(path)
        with torch.no_grad():
            for parameter in net.parameters():
                parameter.mul_(1 + seed)
        torch.jit.save(net, path)
        versions.append(registry.publish(NAME, path, input_example=np.zeros((1, *INPUT_SHAPE), np.float32)))
    return versions


#: The phases of one round: the alias the mover process moves during it (None: it moves none).
#: "shadow" is an alias the worker does not follow: what moving costs the machine, apart from swaps.
PHASES = (("steady", None), ("control", "shadow"), ("swapping", "champion"))


def run(concurrency: int, seconds: float, swap_every_s: float, rounds: int) -> dict:
    """Rows per phase (the median p99 over ``rounds`` rounds of steady, control, swapping)."""
    from zoo.registry import ModelRegistry
    from zoo.serving import InputQueue
    from zoo.serving.config import ServingConfig, save_config
    from zoo.serving.redis_server import RedisServer

    folder = tempfile.mkdtemp(prefix="zoo-online-swap-")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "ZOO_HOME": os.path.join(folder, "home")}
    os.environ["ZOO_HOME"] = env["ZOO_HOME"]
    server = RedisServer(host=LOOPBACK).start()
    registry = ModelRegistry(f"sqlite:///{folder}/mlflow.db", redis_url=server.url)
    versions = publish_versions(registry, folder)
    registry.set_alias(NAME, "champion", versions[0])
    config = ServingConfig.from_dict({
        "model": {"name": NAME, "path": f"models:/{NAME}@champion", "registry": registry.tracking_uri,
                  "batch_size": BATCH_SIZE, "max_batch_wait_ms": BATCH_WAIT_MS, "threads_per_worker": 1},
        "redis": {"url": server.url},
    })
    config_path = os.path.join(folder, "config.yaml")
    save_config(config, config_path)
    worker = subprocess.Popen([sys.executable, "-m", "zoo.serving.worker", "--config", config_path], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x = np.random.default_rng(0).random(INPUT_SHAPE, dtype=np.float32)
    seen: list[int] = []
    mover = None
    try:
        queue = InputQueue(server.url, NAME)
        queue.predict(x, timeout=120)  # ready

        def call():
            seen.append(queue.predict(x, timeout=30, with_version=True).version)

        total = 10 ** 9
        thread_load(call, concurrency, total, WARMUP_S)  # batch shapes the runtime has not seen yet: not measured
        # one process moves the aliases on a schedule, as a trainer's gate would from elsewhere
        first = time.time() + MOVER_START_S
        schedule = [(kind, alias, first + i * (seconds + GAP_S), first + i * (seconds + GAP_S) + seconds)
                    for i, (kind, alias) in enumerate(PHASES * rounds)]
        mover = subprocess.Popen([sys.executable, __file__, "--move", registry.tracking_uri, server.url,
                                  str(swap_every_s), json.dumps([[a, s, e] for _, a, s, e in schedule if a]),
                                  *map(str, versions)], env=env, stdout=subprocess.PIPE, text=True)
        rows: dict[str, list[dict]] = {kind: [] for kind, _ in PHASES}
        changes = 0
        for kind, _, start, _ in schedule:
            time.sleep(max(0.0, start - time.time()))
            seen.clear()
            rows[kind].append(thread_load(call, concurrency, total, seconds))
            if kind == "swapping":
                changes += sum(1 for a, b in zip(seen, seen[1:]) if a != b)
        moves = json.loads(mover.communicate(timeout=120)[0])
        mover = None
        result = {kind: {key: statistics.median(row[key] for row in found) for key in ("rps", "p50", "p99")}
                  | {"n": sum(row["n"] for row in found)} for kind, found in rows.items()}
        return {**result, "moves": moves.get("champion", 0), "observed_swaps": changes}
    finally:
        if mover is not None:
            mover.kill()
        worker.terminate()
        worker.wait(30)
        server.stop()


def move_alias(tracking_uri: str, redis_url: str, every_s: float, windows: list, versions: list[int]) -> int:
    """In each ``[alias, start, end]`` window (epoch seconds), point ``alias`` at the next of
    ``versions`` every ``every_s`` seconds; prints the moves per alias as JSON."""
    from zoo.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri, redis_url=redis_url)
    moves: dict[str, int] = {}
    for alias, start, end in windows:
        time.sleep(max(0.0, start - time.time()))
        while time.time() + every_s < end:
            time.sleep(every_s)
            moves[alias] = moves.get(alias, 0) + 1
            registry.set_alias(NAME, alias, versions[moves[alias] % len(versions)])
    print(json.dumps(moves))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--move"]:
        uri, redis_url, every, windows, *versions = argv[1:]
        return move_alias(uri, redis_url, float(every), json.loads(windows), [int(v) for v in versions])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (smoke run)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=None, help="length of each phase")
    parser.add_argument("--swap-every", type=float, default=None, help="seconds between two alias moves")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the three phases (median p99 reported)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    swap_every = args.swap_every or (2.0 if args.quick else 4.0)
    rounds = args.rounds or (1 if args.quick else 3)
    result = run(args.concurrency, seconds, swap_every, rounds)
    steady, control, swapping = result["steady"], result["control"], result["swapping"]
    ratio = swapping["p99"] / steady["p99"]
    print(f"Swap cost, {args.concurrency} client threads, {rounds} round(s) of {seconds:g} s per phase (medians), "
          f"alias moved every {swap_every:g} s ({result['moves']} moves; the answers show {result['observed_swaps']} "
          f"version changes)")
    print(f"{'phase':<12}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'answers':>10}")
    for phase, row in (("steady", steady), ("control", control), ("swapping", swapping)):
        print(f"{phase:<12}{row['rps']:>10.1f}{row['p50']:>10.2f}{row['p99']:>10.2f}{row['n']:>10d}")
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"swap cost: p99 during swaps / steady p99 = {ratio:.2f} ({verdict} the target <= {TARGET_RATIO}); "
          f"p99 during swaps / control p99 = {swapping['p99'] / control['p99']:.2f} (control: the same moves, of an "
          f"alias the worker does not follow)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
