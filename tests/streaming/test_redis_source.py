"""The "zoo-redis-stream" source against a real redis-server: batch and streaming reads, id-range
partitions, read limits, exactly-once replay, trimming on commit, bad entries, and fitStream on
Cluster Serving's feedback entries."""

import json

import numpy as np
import pytest
import torch

from zoo.streaming import register_redis_source
from zoo.streaming.redis_source import FIRST_ID, parse_id, split_range

SCHEMA = "features array<double>, label double"
STREAM = "zoo:feedback:net"


@pytest.fixture
def source(spark, redis_server, redis_client):
    """(client, a function giving a reader of STREAM with extra options)."""
    register_redis_source(spark)

    def reader(read, schema=SCHEMA, **options):
        r = read.format("zoo-redis-stream").option("url", redis_server.url).option("stream", STREAM)
        for key, value in options.items():
            r = r.option(key, value)
        return r.schema(schema)

    return redis_client, reader


def add_feedback(client, count: int, start: int = 0, **extra):
    """XADD `count` entries as Cluster Serving's feedback writes them (uri, label, features, version)."""
    for i in range(start, start + count):
        x = [float(i % 7) / 7.0, 1.0]
        client.xadd(STREAM, {"uri": f"req-{i}", "label": json.dumps(2.0 * x[0] - 1.0),
                             "features": json.dumps(x), "version": "3", **extra})


def test_split_range_covers_the_ids_once_and_cuts_by_time():
    parts = split_range("100-5", "200-3", 3)
    assert [(p.after, p.last) for p in parts] == [
        ("100-5", f"133-{2**64 - 1}"), (f"133-{2**64 - 1}", f"166-{2**64 - 1}"), (f"166-{2**64 - 1}", "200-3")]
    assert split_range("200-3", "200-3", 2) == []
    assert len(split_range(FIRST_ID, "0-9", 4)) == 1
    assert parse_id("1700-12") == (1700, 12)


def test_batch_read_converts_json_fields_ignores_extra_ones_and_nulls_missing_ones(spark, source):
    client, reader = source
    add_feedback(client, 5)
    client.xadd(STREAM, {"label": "1.5"})
    rows = reader(spark.read, schema=f"_id string, uri string, {SCHEMA}", partitions=2).load().collect()
    assert len(rows) == 6
    ids = [e[0].decode() for e in client.xrange(STREAM)]
    assert [r["_id"] for r in rows] == ids
    assert rows[3]["uri"] == "req-3" and rows[3]["features"] == [3 / 7, 1.0] and rows[3]["label"] == 2 * 3 / 7 - 1
    assert rows[5]["features"] is None and rows[5]["label"] == 1.5


def test_streaming_reads_each_entry_exactly_once_within_the_read_limit_and_across_a_restart(spark, source, tmp_path):
    client, reader = source
    add_feedback(client, 120)
    seen = []

    def start():
        stream = reader(spark.readStream, schema="uri string", partitions=2, maxEntriesPerBatch=50).load()
        return (stream.writeStream.foreachBatch(lambda df, _: seen.extend(r.uri for r in df.collect()))
                .option("checkpointLocation", str(tmp_path / "query")).start())

    query = start()
    query.processAllAvailable()
    assert [p["numInputRows"] for p in query.recentProgress if p["numInputRows"]] == [50, 50, 20]
    add_feedback(client, 10, start=120)
    query.processAllAvailable()
    query.stop()
    add_feedback(client, 5, start=130)
    restarted = start()
    restarted.processAllAvailable()
    restarted.stop()
    assert seen == [f"req-{i}" for i in range(135)]


def test_trim_on_commit_deletes_the_entries_of_committed_micro_batches(spark, source, tmp_path):
    client, reader = source
    add_feedback(client, 30)
    stream = reader(spark.readStream, schema="uri string", trimOnCommit="true").load()
    query = stream.writeStream.format("noop").option("checkpointLocation", str(tmp_path / "q")).start()
    query.processAllAvailable()
    add_feedback(client, 4, start=30)
    # The next micro-batch commits the previous one's end offset: what it read is trimmed.
    query.processAllAvailable()
    query.stop()
    assert client.xlen(STREAM) <= 4


def test_an_entry_of_the_wrong_type_is_refused_naming_the_entry_field_and_types(spark, source):
    client, reader = source
    add_feedback(client, 2)
    bad_id = client.xadd(STREAM, {"features": json.dumps("oops"), "label": "1"}).decode()
    with pytest.raises(Exception) as info:
        reader(spark.read).load().collect()
    message = str(info.value)
    assert f"Entry {bad_id} of Redis stream '{STREAM}': field `features` holds \"oops\" (str)" in message
    assert "the source's schema declares array<double>" in message


def test_missing_options_and_schema_are_named(spark, source):
    _, reader = source
    with pytest.raises(Exception, match="needs the `stream` option"):
        spark.read.format("zoo-redis-stream").option("url", "redis://127.0.0.1:1").schema(SCHEMA).load().collect()
    with pytest.raises(Exception, match="`maxEntriesPerBatch` to be an integer >= 1. Received: '0'"):
        reader(spark.read, maxEntriesPerBatch="0").load().collect()
    with pytest.raises(Exception, match="needs a schema naming the fields"):
        spark.read.format("zoo-redis-stream").option("url", "redis://127.0.0.1:1").option("stream", "s").load()


def test_fit_stream_trains_on_serving_feedback_and_stops_on_a_drifted_entry_with_its_last_good_state(
        spark, source, tmp_path):
    from zoo.nnframes import NNEstimator

    client, reader = source
    add_feedback(client, 64)
    torch.manual_seed(0)
    estimator = NNEstimator(model=torch.nn.Linear(2, 1), criterion=torch.nn.MSELoss(), batchSize=16,
                            learningRate=0.2, maxEpoch=3).setShowProgress(False)
    versions = []

    def publisher(model, *, metrics, offsets, parent, reference):
        versions.append(offsets)
        return len(versions)

    handle = estimator.fitStream(reader(spark.readStream, partitions=2).load(), publisher=publisher,
                                 checkpoint_location=str(tmp_path / "state"), publish_every_batches=1)
    handle.processAllAvailable()
    last_entry = client.xrevrange(STREAM, count=1)[0][0].decode()
    assert versions == [{"batch_id": 0, "sources": [{"id": last_entry}]}]
    good = [p.detach().clone() for p in handle.latestModel().model.parameters()]
    client.xadd(STREAM, {"features": json.dumps(["a", "b"]), "label": "0.5"})
    with pytest.raises(Exception, match=r"field `features` holds \[\"a\", \"b\"\] \(list\), but the source's "
                                        r"schema declares array<double>"):
        handle.processAllAvailable()
    assert not handle.isActive
    assert handle.latestVersion() == 1
    for before, after in zip(good, handle.latestModel().model.parameters()):
        torch.testing.assert_close(before, after.detach())
    assert "SchemaDriftError" in str(handle.exception())
    assert np.isfinite(handle.history[0].loss)
