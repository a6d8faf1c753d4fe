"""Streaming sources for training on live events: the "zoo-redis-stream" Spark data source."""

from zoo.streaming.redis_source import SOURCE_NAME, RedisStreamDataSource, register_redis_source

__all__ = ["SOURCE_NAME", "RedisStreamDataSource", "register_redis_source"]
