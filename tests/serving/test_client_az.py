"""The Cluster Serving client in Analytics Zoo's forms, against a real redis-server and real workers:
``InputQueue()`` / ``OutputQueue()`` from ./config.yaml, ``host=``/``port=``, ``frontend_url=``,
``enqueue_tensor``, ``query_and_delete``, and AZ's "[]" for a request not answered yet."""

import json

import numpy as np
import pytest

from zoo.serving import InputQueue, OutputQueue
from zoo.serving.config import save_config
from zoo.serving.errors import InputError, PredictionError, ResultTimeoutError

from .conftest import make_config, torch


class Affine(torch.nn.Module):
    """[B, 2] numbers -> 2x + 1 as float32."""

    def forward(self, x):
        return x.to(torch.float32) * 2 + 1


@pytest.fixture
def affine_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("az-client") / "affine.pt"
    torch.jit.save(torch.jit.trace(Affine(), torch.zeros(1, 2)), str(path))
    return str(path)


@pytest.fixture
def deployment(redis_server, affine_model, start_workers, tmp_path, monkeypatch):
    """A served model "affine" and its config.yaml in the working directory, as
    ``zoo-serving init`` leaves it."""
    config = make_config(redis_server.url, [{"name": "affine", "path": affine_model}])
    save_config(config, tmp_path / "config.yaml")
    monkeypatch.chdir(tmp_path)
    start_workers(config)
    return config


def quick_start_client():
    """Analytics Zoo's Cluster Serving quick-start client, as AZ shipped it, except that
    ``time.sleep(5)`` before the query became a query that waits up to 10 s for the answer."""
    from zoo.serving.client import InputQueue, OutputQueue

    input_api = InputQueue()
    output_api = OutputQueue()
    output_api.dequeue()

    import numpy as np
    a = np.array([1, 2])
    input_api.enqueue('a', p=a)

    return output_api.query('a', timeout=10)


def test_quick_start_client_runs_against_the_deployment_in_config_yaml(deployment):
    np.testing.assert_allclose(quick_start_client(), [3.0, 5.0])


def test_host_port_form_answers_a_pending_request_with_brackets_and_query_and_delete_removes(deployment, redis_server):
    inputs = InputQueue(host=redis_server.host, port=redis_server.port, name="affine")
    outputs = OutputQueue(host=redis_server.host, port=str(redis_server.port), name="affine")

    assert outputs.query("not-sent") == "[]"
    assert OutputQueue(redis_server.url, "affine").query("not-sent") is None  # Zoo's own form
    inputs.enqueue_tensor("t", np.array([[0.5, 1.5]], np.float32)[0])
    np.testing.assert_allclose(outputs.query("t", timeout=10), [2.0, 4.0])
    np.testing.assert_allclose(outputs.query_and_delete("t"), [2.0, 4.0])
    assert outputs.query("t") == "[]"
    inputs.enqueue("bad", t="a string, which this model does not take")
    with pytest.raises(PredictionError, match="Request 'bad' failed"):
        outputs.query_and_delete("bad", timeout=10)
    assert outputs.query("bad") == "[]"  # the failed result is gone too


def test_default_queue_predicts_synchronously_from_az_json(deployment):
    request = json.dumps({"instances": [{"t": [[4, 5]]}]})
    np.testing.assert_allclose(InputQueue().predict(request, timeout=10), [[9.0, 11.0]])
    np.testing.assert_allclose(InputQueue(sync=True).predict(np.array([1.0, 1.0], np.float32), timeout=10), [3.0, 3.0])


def test_frontend_url_predicts_over_http(deployment, http_frontend):
    url = http_frontend(deployment)
    queue = InputQueue(frontend_url=url, sync=True)

    np.testing.assert_allclose(queue.predict(np.array([2.0, 3.0], np.float32), timeout=10), [5.0, 7.0])
    np.testing.assert_allclose(queue.predict(json.dumps({"instances": [{"x": [0, 1]}]}), timeout=10), [1.0, 3.0])


def test_az_form_predict_answers_brackets_at_its_timeout_and_zoo_form_raises(redis_server, redis_client, tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config.yaml, no workers: nothing answers
    assert InputQueue(host=redis_server.host, port=redis_server.port, name="idle").predict(
        np.zeros(2, np.float32), timeout=0.2) == "[]"
    with pytest.raises(ResultTimeoutError):
        InputQueue(redis_server.url, "idle").predict(np.zeros(2, np.float32), timeout=0.2)


def test_unusable_forms_are_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no ./config.yaml to take it from: pass name="):
        InputQueue(host="127.0.0.1", port=1)
    with pytest.raises(InputError, match="pass host='localhost'"):
        InputQueue("localhost", "m")
    with pytest.raises(InputError, match="not both"):
        OutputQueue("redis://127.0.0.1:1/0", "m", host="127.0.0.1")
    with pytest.raises(InputError, match="list of ndarrays"):
        InputQueue("redis://127.0.0.1:1/0", "m").enqueue_tensor("u", [1, 2])
