"""Redis with a password and over TLS: the managed server, the client and the worker all speak it."""

import shutil

import numpy as np
import pytest
import redis

from zoo.serving import InputQueue, OutputQueue
from zoo.serving.errors import ServingConfigError
from zoo.serving.redis_server import RedisServer

from .conftest import LOOPBACK, make_certificates, make_config


def test_password_and_tls_end_to_end(tmp_path, models, start_workers):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    ca, cert, key = make_certificates(tmp_path)
    path, reference = models["cnn"]
    with RedisServer(host=LOOPBACK, password="pw-123", tls_cert=cert, tls_key=key, tls_ca_cert=ca) as server:
        assert server.url.startswith("rediss://")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(server.url, ssl_ca_certs=ca).ping()
        with pytest.raises(redis.ConnectionError):  # plain TCP to the TLS port fails
            redis.Redis.from_url(server.url.replace("rediss", "redis"), password="pw-123", socket_timeout=2).ping()
        config = make_config(server.url, [{"name": "cnn", "path": path}])
        config.redis.password, config.redis.tls_ca_cert = "pw-123", ca
        start_workers(config)
        x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
        inputs = InputQueue(server.url, "cnn", password="pw-123", tls_ca_cert=ca)
        np.testing.assert_allclose(inputs.predict(x[0], timeout=10), reference(x)[0], rtol=1e-5, atol=1e-5)
        inputs.enqueue("async", input=x[0])
        out = OutputQueue(server.url, "cnn", password="pw-123", tls_ca_cert=ca).query("async", timeout=10)
        np.testing.assert_allclose(out, reference(x)[0], rtol=1e-5, atol=1e-5)
        start_workers.stop_all()


def test_redis_server_errors_are_explained(tmp_path):
    with pytest.raises(ServingConfigError, match="tls_cert"):
        RedisServer(tls_cert="x.crt")
    with pytest.raises(ServingConfigError, match="rediss"):
        InputQueue("redis://127.0.0.1:1/0", "m", tls_ca_cert="ca.crt")
