"""A fixed pool of compiled requests shared by the threads that call ``predict``.

Each request (an OpenVINO infer request, an ONNX Runtime session, a torch/Keras model handle) is
used by one thread at a time; a thread that finds none free waits for one.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, TypeVar

from zoo.inference.errors import NotLoadedError

R = TypeVar("R")


class RequestPool(Generic[R]):
    """``size`` requests built by ``factory``; :meth:`acquire` lends one to the calling thread."""

    def __init__(self, factory: Callable[[], R], size: int):
        self._free: queue.LifoQueue[R] = queue.LifoQueue()
        self._all = [factory() for _ in range(size)]
        for request in self._all:
            self._free.put(request)
        self._closed = threading.Event()
        self.size = size

    @contextmanager
    def acquire(self) -> Iterator[R]:
        """Lend a free request for the ``with`` block, waiting until one is free."""
        while True:
            if self._closed.is_set():
                raise NotLoadedError("The model was released. Load a model again before calling predict.")
            try:
                request = self._free.get(timeout=0.1)
                break
            except queue.Empty:
                continue
        try:
            yield request
        finally:
            self._free.put(request)

    def close(self) -> None:
        """Refuse new work; requests in use finish what they run."""
        self._closed.set()
        self._all.clear()
