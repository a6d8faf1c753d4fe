"""A Cluster Serving client for the multi-host tests, run on the edge host.

    serving_load.py REDIS_URL MODEL INPUTS.npy OUT.json [--kill-at N]

Enqueues one request per row of INPUTS (ids r0, r1, ...) with `InputQueue.enqueue`, keeping at
most 64 unanswered at a time, prints ``KILL`` once N requests are in (the test then kills a
host's workers), then reads every result with `OutputQueue.query` and writes
{"sent", "answered", "results": {id: output}, "lost": [ids], "errors": {id: message},
"requests_total": the workers' counter} to OUT.json.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from zoo.serving import InputQueue, OutputQueue
from zoo.serving import defaults as D
from zoo.serving.client import PredictionError
from zoo.serving.connection import connect
from zoo.serving.metrics import REQUESTS

IN_FLIGHT = 64
RESULT_DEADLINE_S = 120


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("out")
    parser.add_argument("--kill-at", type=int, default=-1)
    args = parser.parse_args()
    inputs = np.load(args.inputs)
    queue, results = InputQueue(args.redis_url, args.model), OutputQueue(args.redis_url, args.model)
    answered: dict[str, list] = {}
    errors: dict[str, str] = {}
    pending: list[str] = []

    def collect(wait_s: float) -> None:
        for uri in list(pending):
            try:
                value = results.query(uri, timeout=wait_s if uri == pending[0] else 0)
            except PredictionError as exc:
                errors[uri] = str(exc)
                pending.remove(uri)
                continue
            if value is not None:
                answered[uri] = np.asarray(value).tolist()
                pending.remove(uri)

    for i, row in enumerate(inputs):
        if i == args.kill_at:
            print("KILL", flush=True)
        while len(pending) >= IN_FLIGHT:
            collect(1.0)
        uri = f"r{i}"
        queue.enqueue(uri, input=row)
        pending.append(uri)
    deadline = time.monotonic() + RESULT_DEADLINE_S
    while pending and time.monotonic() < deadline:
        collect(1.0)
    counters = connect(args.redis_url).hgetall(D.metrics_key(args.model))
    with open(args.out, "w") as f:
        json.dump({"sent": len(inputs), "answered": len(answered), "results": answered, "lost": pending,
                   "errors": errors, "requests_total": int(counters.get(REQUESTS.encode(), 0))}, f)


if __name__ == "__main__":
    main()
