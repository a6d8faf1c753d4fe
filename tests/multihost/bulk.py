"""A bulk TCP transfer between two hosts of a dev cluster, timed at the receiver.

    python bulk.py receive IP PORT BYTES   listen, read BYTES, print {"bytes": n, "seconds": t}
    python bulk.py send IP PORT BYTES      connect (retrying until the receiver listens), send BYTES
"""

from __future__ import annotations

import json
import socket
import sys
import time

CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 20


def receive(ip: str, port: int, total: int) -> None:
    with socket.create_server((ip, port)) as server:
        connection, _ = server.accept()
        with connection:
            got, first = 0, None
            while got < total:
                data = connection.recv(CHUNK)
                if not data:
                    break
                first = first or time.perf_counter()
                got += len(data)
            seconds = time.perf_counter() - first
            connection.sendall(b"k")
    print(json.dumps({"bytes": got, "seconds": seconds}), flush=True)


def send(ip: str, port: int, total: int) -> None:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            connection = socket.create_connection((ip, port), timeout=CONNECT_TIMEOUT_S)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with connection:
        block = b"x" * CHUNK
        for offset in range(0, total, CHUNK):
            connection.sendall(block[:min(CHUNK, total - offset)])
        connection.recv(1)


if __name__ == "__main__":
    {"receive": receive, "send": send}[sys.argv[1]](sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
