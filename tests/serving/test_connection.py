"""Redis connections: a finite read timeout, and result waits longer than it."""

import socket
import threading
import time

import numpy as np
import pytest
import redis

from zoo.serving import OutputQueue, codec
from zoo.serving import defaults as D
from zoo.serving.connection import connect


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and reads, but never answers: a half-open peer."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted, stop = [], threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_silent_redis_raises_a_timeout_instead_of_hanging(silent_server):
    client = connect(silent_server)
    began = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    waited = time.monotonic() - began
    assert D.MAX_BLOCKING_READ_S < waited < D.DEFAULT_REDIS_SOCKET_TIMEOUT_S + 5, (
        f"a silent peer was given up after {waited:.1f} s; expected about "
        f"{D.DEFAULT_REDIS_SOCKET_TIMEOUT_S} s (DEFAULT_REDIS_SOCKET_TIMEOUT_S)")


def test_a_result_waited_for_longer_than_the_read_timeout_arrives(redis_server):
    """The wait is several blocking reads of at most MAX_BLOCKING_READ_S, each inside the read
    timeout, so the client's one connection is never timed out and replaced."""
    wait_s = D.DEFAULT_REDIS_SOCKET_TIMEOUT_S + 3
    answer = np.arange(4, dtype=np.float32)
    key = D.result_key("late", "uri-1")
    writer = connect(redis_server.url)
    writer.delete(key)
    answered = threading.Event()

    def answer_late():
        # The answer comes after the reader has blocked through more than a read timeout.
        if not answered.wait(D.DEFAULT_REDIS_SOCKET_TIMEOUT_S + 1):
            writer.rpush(key, codec.encode({"ok": answer}))

    connections_before = writer.info("stats")["total_connections_received"]
    thread = threading.Thread(target=answer_late)
    thread.start()
    try:
        with OutputQueue(redis_server.url, "late") as outputs:
            began = time.monotonic()
            value = outputs.query("uri-1", timeout=wait_s)
            waited = time.monotonic() - began
    finally:
        answered.set()
        thread.join()
        connections = writer.info("stats")["total_connections_received"] - connections_before
        writer.delete(key)
    np.testing.assert_array_equal(value, answer)
    assert waited > D.DEFAULT_REDIS_SOCKET_TIMEOUT_S, f"answered after {waited:.1f} s, before the answer was sent"
    assert connections == 1, f"the wait opened {connections} connections; a read timed out and was retried"
