"""InferenceModel in Analytics Zoo's call forms: supported_concurrent_num, load_openvino(model_path,
weight_path, batch_size) and load_torch(model_path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.errors import ZooValueError
from zoo.inference import InferenceModel, ModelLoadError, export
from zoo.inference.errors import InferenceInputError


def reference(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_supported_concurrent_num_sizes_the_request_pool(mlp):
    module, example = mlp
    handle = InferenceModel(supported_concurrent_num=3)
    handle.load_torch(module, example)

    assert handle.concurrent_num == 3 and InferenceModel(2).concurrent_num == 2
    np.testing.assert_allclose(handle.predict(example), reference(module, example), rtol=1e-5, atol=1e-6)
    with pytest.raises(ZooValueError, match="not both"):
        InferenceModel(2, supported_concurrent_num=3)
    with pytest.raises(ZooValueError, match="supported_concurrent_num=0|concurrent_num=0"):
        InferenceModel(supported_concurrent_num=0)


def test_load_openvino_with_az_names_and_a_fixed_batch(cnn, tmp_path):
    module, example = cnn
    xml = export(module, example, tmp_path / "cnn.xml", format="openvino")
    batch = np.concatenate([example] * 4)[:4]

    fixed = InferenceModel(supported_concurrent_num=1).load_openvino(model_path=xml, weight_path=xml[:-4] + ".bin",
                                                                     batch_size=4)
    dynamic = InferenceModel().load_openvino(xml, xml[:-4] + ".bin", 0)

    assert fixed.inputs[0].shape == (4, 1, 12, 12)
    assert dynamic.inputs[0].shape == (None, 1, 12, 12)
    np.testing.assert_allclose(fixed.predict(batch), reference(module, batch), rtol=1e-4, atol=1e-4)
    with pytest.raises(InferenceInputError, match="size 2 on axis 0; expected 4"):
        fixed.predict(batch[:2])
    with pytest.raises(ZooValueError, match="batch_size"):
        InferenceModel().load_openvino(xml, batch_size=-1)
    with pytest.raises(ZooValueError, match="not both"):
        InferenceModel().load_openvino(xml, xml=xml)
    with pytest.raises(ModelLoadError, match="not found"):
        InferenceModel().load_openvino(model_path=str(tmp_path / "missing.xml"))


def test_load_torch_model_path(mlp, tmp_path):
    module, example = mlp
    path = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.script(module), str(path))

    handle = InferenceModel().load_torch(model_path=str(path))

    np.testing.assert_allclose(handle.predict(example), reference(module, example), rtol=1e-5, atol=1e-6)
    with pytest.raises(ZooValueError, match="Expected `model`"):
        InferenceModel().load_torch()
