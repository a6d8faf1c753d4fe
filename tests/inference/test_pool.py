"""Many threads calling predict on one handle get their own, correct results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from zoo.inference import InferenceModel

THREADS = 8
CALLS_PER_THREAD = 6


@pytest.mark.parametrize("backend", ["torch", "openvino", "onnxruntime"])
def test_threads_share_one_handle_and_get_correct_results(cnn, backend, torch_outputs):
    module, example = cnn
    handle = InferenceModel.from_torch(module, example, backend=backend, concurrent_num=3)
    rng = np.random.default_rng(7)
    # Each call gets different data and a different batch size, so a mix-up between threads shows.
    jobs = [rng.standard_normal((1 + i % 5, 1, 12, 12)).astype(np.float32) for i in range(THREADS * CALLS_PER_THREAD)]
    expected = [torch_outputs(module, x)[0] for x in jobs]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(handle.predict, jobs))
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


class _Probe(torch.nn.Module):
    """Counts how many forwards run at the same time. Each forward waits inside the model for a
    second one once `armed` (loading runs a forward alone), so two requests that may run together
    do, and a third would be seen."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.partner = threading.Barrier(2, timeout=30)
        self.armed = False
        self.running = 0
        self.peak = 0

    def forward(self, x):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        if self.armed:
            self.partner.wait()
        with self.lock:
            self.running -= 1
        return x * 2


def test_at_most_concurrent_num_requests_run_at_once():
    probe = _Probe()
    x = np.ones((1, 3), np.float32)
    handle = InferenceModel.from_torch(probe, x, backend="torch", concurrent_num=2)
    probe.armed, probe.peak = True, 0
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(handle.predict, [x * i for i in range(24)]))
    assert probe.peak == 2
    assert [float(r[0, 0]) for r in results] == [2.0 * i for i in range(24)]
