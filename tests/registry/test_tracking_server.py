"""ModelRegistry against a real MLflow tracking server (``mlflow server`` on loopback, serving
the artifacts itself): the production set-up, where resolve downloads a version's files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from zoo.devcluster.processes import free_port, kill_groups, wait_for
from zoo.inference import InferenceModel
from zoo.nnframes import NNModel
from zoo.registry import ModelRegistry, RegistryError
from tests.conftest import subprocess_env

from .conftest import linear_net, torch_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(tracking URI, artifacts folder) of an ``mlflow server`` with a sqlite backend."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = folder / "server.log"
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    with open(log, "wb") as out:
        proc = subprocess.Popen([mlflow, "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
                                 "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"],
                                stdout=out, stderr=subprocess.STDOUT, env=subprocess_env(), start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{uri}/health", timeout=5).status == 200, "mlflow server",
                 procs=[proc], logs=[str(log)], timeout_s=180)
        yield uri, folder / "artifacts"
    finally:
        kill_groups([proc.pid])
        proc.wait(timeout=30)


def test_resolve_downloads_a_version_once_into_zoo_home(server, name, spark, tmp_path, monkeypatch):
    uri, _ = server
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    registry = ModelRegistry(uri)
    net = linear_net(9)
    version = registry.publish(name, NNModel(net), metrics={"loss": 0.2}, offsets={"feedback": "5-0"})
    assert registry.gate(name, version, metric=0.2, higher_is_better=False).accepted
    resolved = registry.resolve(f"models:/{name}@champion")
    assert resolved.path.startswith(str(tmp_path / "home" / "registry-cache"))
    x = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    with InferenceModel().load(resolved.path) as model:
        np.testing.assert_allclose(model.predict(x), torch_outputs(net, x), rtol=1e-5, atol=1e-6)
    assert registry.resolve(f"models:/{name}/{version}").path == resolved.path  # cached, not downloaded again
    # A second handle (as another serving worker has) finds the same cached copy.
    assert ModelRegistry(uri).resolve(f"models:/{name}/{version}").path == resolved.path
    assert [p.name for p in (tmp_path / "home" / "registry-cache").iterdir()] == [os.path.basename(resolved.model_dir)]
    assert registry.versions(name)[0].offsets == {"feedback": "5-0"}


def test_files_missing_on_the_server_are_named(server, name, spark, tmp_path, monkeypatch):
    uri, artifacts = server
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    registry = ModelRegistry(uri)
    version = registry.publish(name, NNModel(linear_net()))
    run_id = registry.versions(name)[0].source.split("/")[-3]
    stored = [p for p in artifacts.rglob(run_id) if p.is_dir()]
    assert stored, f"run {run_id} not found under {artifacts}"
    shutil.rmtree(stored[0])
    with pytest.raises(RegistryError, match=rf"files of version {version} of model '{name}' are missing"):
        registry.resolve(f"models:/{name}/{version}")
    cache = tmp_path / "home" / "registry-cache"
    assert not any(cache.iterdir())  # no half-downloaded version left to be found
