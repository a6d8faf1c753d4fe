"""config.yaml: defaults, validation messages, relative paths, the init template."""

import pytest
import yaml

from zoo.serving import defaults as D
from zoo.serving.config import TEMPLATE, ServingConfig, load_config, save_config
from zoo.serving.errors import ServingConfigError


def test_minimal_config_gets_documented_defaults(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  name: m\n  path: model.pt\n")
    config = load_config(path)
    model = config.models[0]
    assert model.path == str(tmp_path / "model.pt")
    assert (model.batch_size, model.max_batch_wait_ms, model.workers) == (
        D.DEFAULT_BATCH_SIZE, D.DEFAULT_MAX_BATCH_WAIT_MS, D.DEFAULT_NUM_WORKERS)
    assert config.queue.max_queue_length == D.DEFAULT_MAX_QUEUE_LENGTH
    assert config.redis.url is None and config.redis.effective_url == f"redis://127.0.0.1:{D.DEFAULT_REDIS_PORT}/0"


@pytest.mark.parametrize("data, message", [
    ({"models": [{"name": "m", "path": "p", "batch_size": 0}]}, "batch_size"),
    ({"models": [{"name": "bad name!", "path": "p"}]}, "name"),
    ({"models": [{"name": "m", "path": "p", "colour": 1}]}, "Unknown key"),
    ({"models": [{"name": "m", "path": "p"}, {"name": "m", "path": "q"}]}, "duplicates"),
    ({"models": []}, "at least one"),
    ({"models": [{"name": "m", "path": "p", "image": {"resize": [8]}}]}, "resize"),
    ({"models": [{"name": "m", "path": "p"}], "redis": {"url": "http://x"}}, "redis.url"),
    ({"models": [{"name": "m", "path": "p"}], "queue": {"max_queue_length": -1}}, "max_queue_length"),
])
def test_invalid_values_name_the_field(data, message):
    with pytest.raises(ServingConfigError, match=message):
        ServingConfig.from_dict(data)


def test_round_trip_and_template(tmp_path):
    config = ServingConfig.from_dict({"models": [{"name": "m", "path": str(tmp_path / "m.pt"),
                                                  "image": {"resize": [4, 4]}, "top_n": 3}]})
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml").to_dict() == config.to_dict()
    template = yaml.safe_load(TEMPLATE)
    assert ServingConfig.from_dict(template).models[0].name == "my-model"


def test_model_urls_are_kept_and_relative_paths_resolve_against_the_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "a", "path": "s3a://bucket/models/a.onnx"},
                                               {"name": "b", "path": "models/b.onnx"}]}))
    config = load_config(path)
    assert config.models[0].path == "s3a://bucket/models/a.onnx"
    assert config.models[1].path == str(tmp_path / "models" / "b.onnx")
