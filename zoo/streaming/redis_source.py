"""The "zoo-redis-stream" Spark data source: a Redis stream as a (streaming) DataFrame.

Built on pyspark 4's Python Data Source API. Each stream entry is one row; its fields hold JSON
values keyed by column name (fields the schema does not name are ignored, a missing field is
null, and a column named ``_id`` gets the entry id). These are the entries Cluster Serving's
feedback stream holds (`zoo.serving.defaults.feedback_stream`), so served predictions whose
labels come back can be trained on with `NNEstimator.fitStream`::

    from zoo.streaming import register_redis_source

    register_redis_source(spark)
    stream = (spark.readStream.format("zoo-redis-stream").option("url", "redis://localhost:6379")
              .option("stream", "zoo:feedback:net").schema("features array<double>, label double").load())

Options:
    url: the Redis URL (required). stream: the stream key (required).
    partitions: how many Spark partitions read one micro-batch (default 1); the micro-batch's id
        range is cut by entry time into this many slices.
    maxEntriesPerBatch: at most this many entries per micro-batch (default: all available).
    startingId: where a new query starts: "earliest" (default), "latest", or an entry id (exclusive).
    trimOnCommit: "true" deletes entries from Redis once Spark committed the micro-batch that read them.

Offsets are entry ids, ``{"id": "<ms>-<seq>"}``: a micro-batch reads the ids after its start
(exclusive) up to its end (inclusive), so a replayed micro-batch reads exactly the same entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.types import (
    ArrayType, BooleanType, DoubleType, FloatType, IntegralType, StringType, StructType,
)

from zoo.errors import SchemaDriftError, ZooValueError

#: The format name: spark.readStream.format(SOURCE_NAME).
SOURCE_NAME = "zoo-redis-stream"
#: The column that receives each entry's id.
ID_COLUMN = "_id"
#: The id before every entry.
FIRST_ID = "0-0"
#: Redis sequence numbers are unsigned 64-bit: an id range cut at a millisecond ends at this sequence.
MAX_SEQUENCE = 2**64 - 1
#: Entries fetched per XRANGE call while reading a partition.
READ_CHUNK = 1000


def parse_id(entry_id: str) -> tuple[int, int]:
    """(milliseconds, sequence) of a Redis stream entry id."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class SourceOptions:
    """The source's options, validated (names as given to `.option(...)`)."""

    url: str
    stream: str
    partitions: int = 1
    max_entries: int | None = None
    starting_id: str = "earliest"
    trim_on_commit: bool = False

    @classmethod
    def parse(cls, options: dict) -> "SourceOptions":
        """From the options of spark.read/readStream; raises naming the option and the fix."""
        for name in ("url", "stream"):
            if not options.get(name):
                raise ZooValueError(f"The {SOURCE_NAME} source needs the `{name}` option: "
                                    f".option('url', 'redis://host:6379').option('stream', 'key').")

        def positive(name):
            value = options.get(name)
            if value is None:
                return None
            if not str(value).isdigit() or int(value) < 1:
                raise ZooValueError(f"Expected the {SOURCE_NAME} option `{name}` to be an integer >= 1. "
                                    f"Received: {value!r}.")
            return int(value)

        starting = options.get("startingId", "earliest")
        if starting not in ("earliest", "latest"):
            try:
                parse_id(starting)
            except ValueError:
                raise ZooValueError(f"Expected the {SOURCE_NAME} option `startingId` to be 'earliest', 'latest' or an "
                                    f"entry id like '1700000000000-0'. Received: {starting!r}.") from None
        trim = str(options.get("trimOnCommit", "false")).lower()
        if trim not in ("true", "false"):
            raise ZooValueError(f"Expected the {SOURCE_NAME} option `trimOnCommit` to be 'true' or 'false'. "
                                f"Received: {options['trimOnCommit']!r}.")
        return cls(options["url"], options["stream"], positive("partitions") or 1, positive("maxEntriesPerBatch"),
                   starting, trim == "true")

    def client(self):
        """A redis-py client (created where it is used: clients do not pickle)."""
        import redis

        return redis.Redis.from_url(self.url)


def _as_type(value, data_type):
    if value is None:
        return None
    if isinstance(data_type, StringType):
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(data_type, (DoubleType, FloatType)) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(data_type, IntegralType) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(data_type, BooleanType) and isinstance(value, bool):
        return value
    if isinstance(data_type, ArrayType) and isinstance(value, list):
        return [_as_type(v, data_type.elementType) for v in value]
    if not isinstance(data_type, (StringType, DoubleType, FloatType, IntegralType, BooleanType, ArrayType)):
        return value
    raise SchemaDriftError(f"{value!r} is not {data_type.simpleString()}")  # _convert reports the whole value


def _convert(value, data_type, where: str):
    """`value` (parsed JSON) as `data_type` wants it; SchemaDriftError naming `where` otherwise."""
    try:
        return _as_type(value, data_type)
    except SchemaDriftError:
        raise SchemaDriftError(
            f"{where} holds {json.dumps(value)[:80]} ({type(value).__name__}), but the source's schema declares "
            f"{data_type.simpleString()}. Fix the producer of the stream, or read it with a schema that "
            f"matches.") from None


class EntryConverter:
    """Turns a stream entry (id, {field: JSON bytes}) into a row of the schema."""

    def __init__(self, schema: StructType, stream: str):
        self.fields = [(f.name, f.dataType) for f in schema.fields]
        self.stream = stream

    def __call__(self, entry_id: str, fields: dict) -> tuple:
        row = []
        for name, data_type in self.fields:
            if name == ID_COLUMN:
                row.append(entry_id)
                continue
            raw = fields.get(name.encode())
            where = f"Entry {entry_id} of Redis stream {self.stream!r}: field `{name}`"
            if raw is None:
                row.append(None)
                continue
            text = raw.decode()
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                if not isinstance(data_type, StringType):
                    raise SchemaDriftError(f"{where} holds {text[:80]!r}, which is not JSON; the source's schema "
                                           f"declares {data_type.simpleString()}. Write fields as JSON values "
                                           f"(json.dumps).") from None
                value = text
            row.append(_convert(value, data_type, where))
        return tuple(row)


class IdRange(InputPartition):
    """Entries with after < id <= last."""

    def __init__(self, after: str, last: str):
        super().__init__((after, last))
        self.after = after
        self.last = last


def split_range(after: str, last: str, parts: int) -> list[IdRange]:
    """(after, last] cut by entry time into at most `parts` disjoint ranges that cover it."""
    if parse_id(last) <= parse_id(after):
        return []
    low, high = parse_id(after)[0], parse_id(last)[0]
    parts = max(1, min(parts, high - low))
    cuts = [f"{low + (high - low) * i // parts}-{MAX_SEQUENCE}" for i in range(1, parts)]
    bounds = [after, *cuts, last]
    return [IdRange(a, b) for a, b in zip(bounds, bounds[1:])]


def read_range(options: SourceOptions, converter: EntryConverter, part: IdRange):
    """The rows of one partition, read in chunks."""
    client = options.client()
    try:
        after = part.after
        while True:
            entries = client.xrange(options.stream, min=f"({after}", max=part.last, count=READ_CHUNK)
            for entry_id, fields in entries:
                yield converter(entry_id.decode(), fields)
            if len(entries) < READ_CHUNK:
                return
            after = entries[-1][0].decode()
    finally:
        client.close()


def last_id(client, stream: str) -> str:
    """The id of the stream's newest entry, or FIRST_ID for an empty or missing stream."""
    newest = client.xrevrange(stream, count=1)
    return newest[0][0].decode() if newest else FIRST_ID


class RedisStreamReader(DataSourceStreamReader):
    """The streaming reader: offsets are entry ids ({"id": ...})."""

    def __init__(self, options: SourceOptions, schema: StructType):
        self.options = options
        self.converter = EntryConverter(schema, options.stream)

    def initialOffset(self) -> dict:
        """Where a new query starts (the `startingId` option)."""
        start = self.options.starting_id
        if start == "earliest":
            return {"id": FIRST_ID}
        if start == "latest":
            client = self.options.client()
            try:
                return {"id": last_id(client, self.options.stream)}
            finally:
                client.close()
        return {"id": start}

    def getDefaultReadLimit(self):
        """At most `maxEntriesPerBatch` entries per micro-batch, when set."""
        from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

        return ReadMaxRows(self.options.max_entries) if self.options.max_entries else ReadAllAvailable()

    def latestOffset(self, start: dict, limit) -> dict:
        """The end of the next micro-batch: the newest entry, or the last of `limit` entries after `start`."""
        from pyspark.sql.streaming.datasource import ReadMaxRows

        client = self.options.client()
        try:
            if isinstance(limit, ReadMaxRows):
                entries = client.xrange(self.options.stream, min=f"({start['id']}", max="+", count=limit.max_rows)
                return {"id": entries[-1][0].decode()} if entries else start
            newest = last_id(client, self.options.stream)
            return {"id": newest} if parse_id(newest) > parse_id(start["id"]) else start
        finally:
            client.close()

    def partitions(self, start: dict, end: dict) -> list[IdRange]:
        """The micro-batch's id range cut into `partitions` slices."""
        return split_range(start["id"], end["id"], self.options.partitions)

    def read(self, partition: IdRange):
        """The rows of one slice (on an executor)."""
        return read_range(self.options, self.converter, partition)

    def commit(self, end: dict) -> None:
        """With `trimOnCommit`, delete the entries up to `end` (Spark committed the micro-batch)."""
        if not self.options.trim_on_commit or end["id"] == FIRST_ID:
            return
        ms, seq = parse_id(end["id"])
        client = self.options.client()
        try:
            client.xtrim(self.options.stream, approximate=False, minid=f"{ms}-{seq + 1}" if seq < MAX_SEQUENCE else f"{ms + 1}-0")
        finally:
            client.close()


class RedisStreamBatchReader(DataSourceReader):
    """The batch reader (spark.read): every entry there is now."""

    def __init__(self, options: SourceOptions, schema: StructType):
        self.options = options
        self.converter = EntryConverter(schema, options.stream)

    def partitions(self) -> list[IdRange]:
        """The stream's id range now, cut into `partitions` slices."""
        client = self.options.client()
        try:
            return split_range(FIRST_ID, last_id(client, self.options.stream), self.options.partitions)
        finally:
            client.close()

    def read(self, partition: IdRange):
        """The rows of one slice (on an executor)."""
        return read_range(self.options, self.converter, partition)


class RedisStreamDataSource(DataSource):
    """The "zoo-redis-stream" data source (register it with `register_redis_source`)."""

    @classmethod
    def name(cls) -> str:
        """The format name."""
        return SOURCE_NAME

    def schema(self):
        """Only called when the reader was given no schema: the source cannot guess one."""
        raise ZooValueError(f"The {SOURCE_NAME} source needs a schema naming the fields to read, e.g. "
                            f".schema('features array<double>, label double'). Entries' fields hold JSON values.")

    def reader(self, schema: StructType) -> RedisStreamBatchReader:
        """The batch reader."""
        return RedisStreamBatchReader(SourceOptions.parse(self.options), schema)

    def streamReader(self, schema: StructType) -> RedisStreamReader:
        """The streaming reader."""
        return RedisStreamReader(SourceOptions.parse(self.options), schema)


def register_redis_source(spark=None) -> None:
    """Make "zoo-redis-stream" available to spark.read/readStream.format (the active session by default)."""
    from pyspark.sql import SparkSession

    (spark or SparkSession.active()).dataSource.register(RedisStreamDataSource)
