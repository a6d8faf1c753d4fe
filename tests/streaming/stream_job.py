"""Driver script of test_streaming_fit's kill test, run in its own process: trains on the files in
argv[1] with state under argv[2] and prints "committed <batch_id>" after each micro-batch, so the
test can kill the whole driver at a known point of the stream."""

import sys

from tests.streaming.conftest import file_stream, regressor
from zoo import init_spark


def report(model, *, metrics, offsets, parent, reference):
    """The publisher: called right after each micro-batch's commit."""
    print(f"committed {offsets['batch_id']}", flush=True)
    return offsets["batch_id"] + 1


def main() -> None:
    """Run the stream until killed (or until every file there is trained)."""
    folder, checkpoint = sys.argv[1], sys.argv[2]
    spark = init_spark("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    handle = regressor().fitStream(file_stream(spark, folder), checkpoint_location=checkpoint, publisher=report,
                                   publish_every_batches=1)
    handle.processAllAvailable()
    handle.stop()
    print("done", flush=True)


if __name__ == "__main__":
    main()
