"""ModelRegistry on a real MLflow sqlite registry: publish with Zoo's tags, the evaluation gate,
aliases and rollback, resolve for serving, and the errors of a bad registry, model or version."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mlflow import MlflowClient

from zoo.inference import InferenceModel
from zoo.monitoring.drift import FeatureReference, psi
from zoo.nnframes import NNModel
from zoo.registry import ModelRegistry, RegistryError, alias_channel
from zoo.errors import ZooTypeError, ZooValueError
from tests.conftest import subprocess_env

from .conftest import linear_net, torch, torch_outputs


@pytest.fixture
def published(registry, name, spark):
    """Three versions of `name`, each from its own net; returns (name, {version: net})."""
    nets = {}
    for seed in range(3):
        net = linear_net(seed)
        nets[registry.publish(name, NNModel(net), metrics={"loss": 1.0 - seed / 10})] = net
    return name, nets


def test_publish_records_metrics_offsets_parent_status_and_signature(registry, tracking_uri, name, spark):
    first = registry.publish(name, NNModel(linear_net(0)), metrics={"loss": 0.5, "rows": 128},
                             offsets={"feedback": "1700000000000-3", "partition-0": 42})
    second = registry.publish(name, NNModel(linear_net(1)), metrics={"loss": 0.25}, parent=first)
    assert (first, second) == (1, 2)
    one, two = registry.versions(name)
    assert (one.status, two.status) == ("candidate", "candidate")
    assert one.metrics == {"loss": 0.5, "rows": 128.0}
    assert one.offsets == {"feedback": "1700000000000-3", "partition-0": 42}
    assert (one.parent, two.parent, two.offsets) == (None, 1, None)
    assert one.signature == {"inputs": [{"name": "input_0", "shape": [None, 3], "dtype": "float32"}],
                             "outputs": [{"name": "output_0", "shape": [None, 1], "dtype": "float32"}]}
    # The raw MLflow records say the same: tags on the version, metrics on its run.
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = client.get_model_version(name, "1")
    assert json.loads(version.tags["zoo.offsets"])["partition-0"] == 42
    assert version.tags["zoo.parent"] == "" and client.get_model_version(name, "2").tags["zoo.parent"] == "1"
    assert client.get_run(version.run_id).data.metrics == {"loss": 0.5, "rows": 128.0}


def test_the_gate_accepts_the_first_then_rejects_a_regression_without_moving_the_alias(registry, published):
    name, _ = published
    first = registry.gate(name, 1, metric=0.30, higher_is_better=False)
    assert first.accepted and first.champion_metric is None and "no champion" in first.reason
    assert registry.champion(name) == 1

    worse = registry.gate(name, 2, metric=0.40, higher_is_better=False, tolerance=0.05)
    assert not worse.accepted and worse.champion_metric == pytest.approx(0.30)
    assert "beyond tolerance" in worse.reason
    assert registry.champion(name) == 1
    statuses = {v.version: v for v in registry.versions(name)}
    assert statuses[2].status == "rejected" and statuses[2].rejected_reason == worse.reason
    assert statuses[1].status == "champion" and statuses[1].aliases == ["champion"]

    assert [m["by"] for m in registry.alias_log(name)] == ["gate"]
    within = registry.gate(name, 3, metric=0.33, higher_is_better=False, tolerance=0.05)
    assert within.accepted and registry.champion(name) == 3
    statuses = {v.version: v for v in registry.versions(name)}
    assert (statuses[1].status, statuses[3].status, statuses[3].gate_metric) == ("retired", "champion", 0.33)


def test_the_gate_compares_in_the_metrics_direction(registry, published):
    name, _ = published
    assert registry.gate(name, 1, metric=0.80, higher_is_better=True, metric_name="accuracy").accepted
    assert not registry.gate(name, 2, metric=0.79, higher_is_better=True, metric_name="accuracy").accepted
    assert registry.gate(name, 3, metric=0.81, higher_is_better=True, metric_name="accuracy").accepted
    assert registry.champion(name) == 3


def test_a_champion_never_gated_on_the_metric_is_replaced_by_the_next_gated_version(registry, published):
    name, _ = published
    registry.set_alias(name, "champion", 1)  # its training loss (0.9) is not a held-out metric
    decision = registry.gate(name, 2, metric=5.0, higher_is_better=False)
    assert decision.accepted and decision.champion_metric is None
    assert decision.reason == "the champion v1 was never gated on loss (loss=5)"
    assert not registry.gate(name, 3, metric=5.1, higher_is_better=False).accepted


def test_rollback_moves_the_alias_back_through_its_history(registry, published):
    name, _ = published
    with pytest.raises(RegistryError, match=f"Cannot roll back alias 'champion' of model '{name}'"):
        registry.rollback(name)
    for version in (1, 2, 3):
        registry.set_alias(name, "champion", version)
    assert registry.rollback(name) == 2 and registry.champion(name) == 2
    statuses = {v.version: v.status for v in registry.versions(name)}
    assert statuses == {1: "retired", 2: "champion", 3: "rolled_back"}
    assert registry.rollback(name) == 1
    with pytest.raises(RegistryError, match="no other version before"):
        registry.rollback(name)
    assert registry.champion(name) == 1
    # The log keeps every move, rollbacks included.
    moves = [(m["from"], m["version"], m["by"]) for m in registry.alias_log(name)]
    assert moves == [(None, 1, "set_alias"), (1, 2, "set_alias"), (2, 3, "set_alias"), (3, 2, "rollback"),
                     (2, 1, "rollback")]


def test_resolve_gives_a_local_file_inference_model_loads(registry, published):
    name, nets = published
    registry.set_alias(name, "champion", 2)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    for uri, version in ((f"models:/{name}@champion", 2), (f"models:/{name}/3", 3)):
        resolved = registry.resolve(uri)
        assert (resolved.name, resolved.version) == (name, version)
        assert resolved.signature["inputs"][0]["shape"] == [None, 3]
        with InferenceModel().load(resolved.path) as model:
            np.testing.assert_allclose(model.predict(x), torch_outputs(nets[version], x), rtol=1e-5, atol=1e-6)


def test_a_version_keeps_the_feature_reference_of_its_training_window(registry, name, spark):
    rng = np.random.default_rng(1)
    reference = FeatureReference.from_columns({"features": rng.normal(size=(400, 3))})
    version = registry.publish(name, NNModel(linear_net()), reference=reference)
    kept = registry.resolve(f"models:/{name}/{version}").reference
    batch = {"features": rng.normal(0.5, 1, size=(200, 3))}
    assert kept.features.keys() == reference.features.keys() and psi(kept, batch) == psi(reference, batch)
    assert registry.resolve(f"models:/{name}/{version}").reference is not None
    other = registry.publish(name, NNModel(linear_net()))
    assert registry.resolve(f"models:/{name}/{other}").reference is None


def test_alias_moves_are_published_on_redis(tracking_uri, redis_client, redis_server, name, spark):
    registry = ModelRegistry(tracking_uri, redis_url=redis_server.url)
    for seed in range(2):
        registry.publish(name, NNModel(linear_net(seed)))
    subscriber = redis_client.pubsub()
    subscriber.subscribe(alias_channel(name))
    assert subscriber.get_message(timeout=5)["type"] == "subscribe"
    registry.gate(name, 1, metric=1.0, higher_is_better=False)
    registry.gate(name, 2, metric=2.0, higher_is_better=False)  # rejected: no move, no message
    registry.set_alias(name, "champion", 2)
    registry.set_alias(name, "canary", 1)
    registry.rollback(name)
    redis_client.publish(alias_channel(name), json.dumps("end"))  # delivered after every earlier message
    received = []
    while (message := subscriber.get_message(timeout=10)) is not None and json.loads(message["data"]) != "end":
        received.append(json.loads(message["data"]))
    subscriber.close()
    assert alias_channel(name) == f"zoo:model-alias:{name}"
    assert received == [{"name": name, "alias": "champion", "version": 1},
                        {"name": name, "alias": "champion", "version": 2},
                        {"name": name, "alias": "canary", "version": 1},
                        {"name": name, "alias": "champion", "version": 1}]


def test_an_unreachable_or_invalid_registry_is_named_with_the_fix(tmp_path):
    with pytest.raises(RegistryError, match=r"'http://127.0.0.1:1' is unreachable.*Start the tracking server"):
        ModelRegistry("http://127.0.0.1:1")
    with pytest.raises(RegistryError, match=r"Expected an MLflow tracking URI.*Received: tracking_uri='mlflow.db'"):
        ModelRegistry("mlflow.db")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RegistryError, match="a-file"):
        ModelRegistry(f"sqlite:///{tmp_path}/a-file/mlflow.db")
    assert issubclass(RegistryError, RuntimeError)


def test_a_version_whose_files_are_missing_is_named(registry, name, spark):
    version = registry.publish(name, NNModel(linear_net()))
    registry.set_alias(name, "champion", version)
    shutil.rmtree(registry.resolve(f"models:/{name}/{version}").model_dir)
    for uri in (f"models:/{name}@champion", f"models:/{name}/{version}"):
        with pytest.raises(RegistryError, match=rf"files of version {version} of model '{name}' are missing"):
            registry.resolve(uri)


def test_unknown_models_aliases_and_versions_are_named(registry, published):
    name, _ = published
    with pytest.raises(RegistryError, match="no registered model 'nope'"):
        registry.resolve("models:/nope@champion")
    with pytest.raises(RegistryError, match=rf"'{name}' has no alias 'champion'.*aliases: none"):
        registry.resolve(f"models:/{name}@champion")
    with pytest.raises(RegistryError, match=r"has no version 9 .*versions: \[1, 2, 3\]"):
        registry.resolve(f"models:/{name}/9")
    with pytest.raises(RegistryError, match="Expected a model URI"):
        registry.resolve(f"runs:/{name}")
    with pytest.raises(RegistryError, match="no version 7"):
        registry.gate(name, 7, metric=1.0, higher_is_better=False)
    with pytest.raises(RegistryError, match="no registered model 'nope'"):
        registry.champion("nope")
    assert registry.champion(name) is None


def test_bad_publish_arguments_fail_before_anything_is_stored(registry, published):
    name, _ = published
    with pytest.raises(ZooValueError, match=r"metrics\['loss'\]` to be a finite number. Received: .*nan"):
        registry.publish(name, NNModel(linear_net()), metrics={"loss": float("nan")})
    with pytest.raises(ZooValueError, match="JSON"):
        registry.publish(name, NNModel(linear_net()), offsets={"a": object()})
    with pytest.raises(RegistryError, match="no version 8"):
        registry.publish(name, NNModel(linear_net()), parent=8)
    with pytest.raises(ZooTypeError, match="Expected an NNModel"):
        registry.publish(name, linear_net())
    assert [v.version for v in registry.versions(name)] == [1, 2, 3]
    # Nothing is created for a model that cannot be saved, not even the registered model.
    unsaved = f"{name}-unsaved"
    with pytest.raises(ZooValueError, match="does not exist"):
        registry.publish(unsaved, "/no/such/model.onnx")
    with pytest.raises(ZooValueError, match="Pass input_example="):
        registry.publish(unsaved, NNModel(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))))
    with pytest.raises(RegistryError, match=f"no registered model '{unsaved}'"):
        registry.versions(unsaved)


def test_the_default_registry_lives_under_zoo_home(tmp_path, monkeypatch, name, spark):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry = ModelRegistry()
    assert registry.tracking_uri == f"sqlite:///{tmp_path}/home/mlflow.db"
    version = registry.publish(name, NNModel(linear_net()))
    path = registry.resolve(f"models:/{name}/{version}").path
    assert path.startswith(str(tmp_path / "home" / "mlartifacts")) and path.endswith("model.pt")


def test_normal_use_prints_nothing(tmp_path):
    """A new registry (MLflow creates its tables), a publish, a gate and a resolve, in a fresh
    process: MLflow's INFO lines and warnings stay out of the user's console."""
    onnx = pytest.importorskip("onnx", reason="the ONNX model needs the inference extra: pip install 'spark-zoo[inference]'")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "double.onnx"))
    script = textwrap.dedent(f"""
        from zoo.registry import ModelRegistry
        registry = ModelRegistry("sqlite:///{tmp_path}/mlflow.db")
        version = registry.publish("double", "{tmp_path}/double.onnx", metrics={{"loss": 1.0}})
        registry.gate("double", version, metric=1.0, higher_is_better=False)
        print(registry.resolve("models:/double@champion").version)
    """)
    result = subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("1\n", "")
