"""The adapter contract's framework detection and the members nnframes, tfpark, the registry and
inference use (output kind, float targets, default optimizer, predict-all, save/load, weight
copy), one test per framework on real models."""

import numpy as np
import pytest
import torch

from zoo.engine.adapters import (
    LOG_PROBABILITIES,
    LOGITS,
    PROBABILITIES,
    adapter_for,
    check_framework,
    framework_of,
)
from zoo.errors import ZooTypeError


class TwoHeads(torch.nn.Module):
    """A torch model with two outputs (a tuple), as predict_all must return them."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(3, 2)

    def forward(self, x):
        y = self.body(x)
        return y, {"doubled": 2 * y}


def test_framework_of_and_contract_on_torch(tmp_path):
    net = TwoHeads()
    program = torch.export.export(torch.nn.Linear(3, 1), (torch.zeros(2, 3),))
    assert framework_of(net) == "torch" and framework_of(program) == "torch"
    assert framework_of(object()) is None and framework_of("model.pt") is None
    adapter = adapter_for(net)
    assert adapter.FRAMEWORK == "torch"
    with pytest.raises(ZooTypeError, match="torch.nn.Module or a keras.Model"):
        adapter_for(program)  # inference only: nothing trains an ExportedProgram
    assert check_framework(net, "torch") is net
    with pytest.raises(ZooTypeError, match=r"Expected a keras.Model \(Keras 3\). Received: .*TwoHeads"):
        check_framework(net, "keras")

    assert adapter.output_kind(torch.nn.CrossEntropyLoss()) == LOGITS
    assert adapter.output_kind(torch.nn.BCEWithLogitsLoss()) == LOGITS
    assert adapter.output_kind(torch.nn.NLLLoss()) == LOG_PROBABILITIES
    assert adapter.output_kind(torch.nn.BCELoss()) == PROBABILITIES
    assert adapter.wants_float_targets(torch.nn.BCELoss()) and not adapter.wants_float_targets(torch.nn.MSELoss())
    assert adapter.default_optimizer() is torch.optim.SGD

    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    first, doubled = adapter.predict_all(net, [x])
    np.testing.assert_allclose(doubled, 2 * first, rtol=1e-6)
    np.testing.assert_array_equal(adapter.predict(net, [x]), first)

    pickled = adapter.save_model(net, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.safetensors"]
    fresh = TwoHeads()
    restored = adapter.load_model(str(tmp_path), fresh)
    assert pickled is net and restored is fresh
    np.testing.assert_array_equal(adapter.predict(restored, [x]), first)

    target = TwoHeads()
    adapter.assign_weights(target, net)
    np.testing.assert_array_equal(adapter.predict(target, [x]), first)


def test_framework_of_and_contract_on_keras(tmp_path):
    pytest.importorskip("tensorflow", reason="Keras tests need TensorFlow: pip install 'spark-zoo[tf]'")
    keras = pytest.importorskip("keras", reason="Keras tests need Keras 3: pip install 'spark-zoo[tf]'")
    from zoo.engine.adapters import keras as keras_adapter

    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2)(inputs)
    model = keras.Model(inputs, [hidden, keras.layers.Dense(1)(hidden)])
    assert framework_of(model) == "keras" and framework_of(keras_adapter.portable(model)) == "keras"
    assert framework_of(keras.layers.Dense(2)) is None  # a layer is not a model
    adapter = adapter_for(model)
    assert adapter.FRAMEWORK == "keras"
    assert check_framework(model, "keras") is model
    with pytest.raises(ZooTypeError, match=r"Expected a torch.nn.Module. Received: .*Functional"):
        check_framework(model, "torch")

    assert adapter.output_kind(keras.losses.SparseCategoricalCrossentropy(from_logits=True)) == LOGITS
    assert adapter.output_kind("sparse_categorical_crossentropy") == PROBABILITIES
    assert adapter.wants_float_targets(keras.losses.BinaryCrossentropy()) and not adapter.wants_float_targets("mse")
    assert adapter.default_optimizer() is keras.optimizers.SGD
    with pytest.raises(ZooTypeError, match=r"not torch.optim.Adam.*keras.optimizers.Adam\(learning_rate=0.1\)"):
        keras_adapter.build_optimizer(torch.optim.Adam, 0.1)

    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    hidden_out, head_out = adapter.predict_all(model, [x])
    assert hidden_out.shape == (4, 2) and head_out.shape == (4, 1)
    np.testing.assert_array_equal(adapter.predict(model, [x]), hidden_out)

    custom = adapter.save_model(model, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    restored = adapter.load_model(str(tmp_path), custom)
    np.testing.assert_allclose(adapter.predict_all(restored, [x])[1], head_out, rtol=1e-6)

    target = keras_adapter.copy_model(model)
    target.set_weights([np.zeros_like(w) for w in target.get_weights()])
    adapter.assign_weights(target, model)
    np.testing.assert_array_equal(adapter.predict_all(target, [x])[1], head_out)
    with pytest.raises(ValueError, match="Expected saved weights for 2 variables. Received 4"):
        adapter.assign_weights(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), model)
