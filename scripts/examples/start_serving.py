"""spark-submit example: run Cluster Serving workers as tasks of a Spark job.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/spark-submit --master local[2] \
        scripts/examples/start_serving.py --model model.xml --redis-url redis://127.0.0.1:6379 \
        --name my-model --workers 2

Each worker is one task of a barrier stage (see zoo.serving.spark): it joins the model's
consumer group on Redis, batches requests, predicts with InferenceModel and writes results back.
Clients send requests with `zoo.serving.InputQueue(redis_url, name)` or the HTTP frontend. The job
runs until `zoo.serving.spark.request_stop` (or ``zoo-serving stop``) sets the model's stop key,
until SIGTERM, or for `--duration` seconds when given. The model path must be readable on
every executor.
"""

import argparse
import logging
import signal
import threading

from zoo import init_spark
from zoo.serving.config import ServingConfig
from zoo.serving.spark import request_stop, serve_on_spark


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model file InferenceModel loads (.xml, .onnx, .pt, .keras)")
    parser.add_argument("--redis-url", required=True, help="redis://host:port of the request queue")
    parser.add_argument("--name", default="model", help="model name clients address")
    parser.add_argument("--workers", type=int, default=2, help="serving tasks (at most the free task slots)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run until stopped)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    config = ServingConfig.from_dict({
        "models": [{"name": args.name, "path": args.model, "workers": args.workers, "batch_size": args.batch_size}],
        "redis": {"url": args.redis_url},
    })
    spark = init_spark(app_name="zoo-serving-example", warm_up=False)  # serving needs no torch warm-up

    def stop(*_):
        threading.Thread(target=request_stop, args=(config,), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.duration > 0:
        threading.Timer(args.duration, stop).start()
    print(f"serving `{args.name}` with {args.workers} Spark task(s) on {args.redis_url}", flush=True)
    results = serve_on_spark(spark, config)  # blocks until the stop key is set
    print(f"stopped; requests answered per worker: {[answered for _, _, answered in sorted(results)]}", flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
