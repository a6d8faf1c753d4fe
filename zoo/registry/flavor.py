"""The Zoo MLflow flavor: save, log and load NNModel / NNClassifierModel (torch and Keras) and
model files `zoo.inference.InferenceModel` reads, with a pyfunc for ``mlflow.pyfunc.load_model``.

A saved Zoo model is an MLflow model directory::

    MLmodel               flavors ``zoo`` (what this module reads) and ``python_function``
    zoo/serving/<file>    the file InferenceModel.load reads: TorchScript ``model.pt`` for a torch
                          NNModel, ``model.keras`` for a Keras one, or a copy of the given file
                          (``.onnx``, ``.xml`` + ``.bin``, ``.pt``, ``.pt2``, ``.keras``)
    zoo/spark_model/      for an NNModel only: the stage as ``NNModel.save`` writes it, which
                          ``load_model`` reads back with Spark ML persistence
    zoo/reference.json    optional: the FeatureReference of the training window (zoo.monitoring.drift)

The ``zoo`` flavor configuration records the kind (``nnmodel`` or ``file``), the stage class,
the serving file and the signature (input and output names, shapes and dtypes, ``None`` for a
dynamic dimension). ``mlflow.pyfunc.load_model(uri).predict(x)`` runs the serving file with
InferenceModel on an ndarray, a list of ndarrays, or a pandas DataFrame (one column of arrays,
or one numeric column per input element).

Example::

    from zoo.registry import flavor

    flavor.save_model(nn_model, "/tmp/net")                 # needs a running SparkSession
    model = flavor.load_model("/tmp/net")                   # an NNModel again
    predict = mlflow.pyfunc.load_model("/tmp/net").predict  # numpy in, numpy out
"""

from __future__ import annotations

import importlib
import os
import shutil
import warnings
from typing import Any

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError
from zoo.registry import _mlflow

#: The flavor's name in MLmodel.
FLAVOR_NAME = "zoo"
#: Folder of Zoo's files inside the MLflow model directory.
DATA_DIR = "zoo"
SERVING_DIR = "serving"
SPARK_MODEL_DIR = "spark_model"
REFERENCE_FILE = "reference.json"
#: Values of the flavor's ``kind``.
KIND_NNMODEL = "nnmodel"
KIND_FILE = "file"


# ------------------------------------------------------------------------------------ saving
def save_model(model: Any, path: str | os.PathLike, mlflow_model: Any = None, *, input_example: Any = None,
               reference: Any = None, **_: Any) -> None:
    """Save ``model`` as an MLflow model directory at ``path`` (which must not exist).

    Args:
        model: an NNModel or NNClassifierModel (torch or Keras; saving its stage needs a running
            SparkSession), or the path of a model file InferenceModel.load reads.
        path: a new local directory.
        mlflow_model: the ``mlflow.models.Model`` to add the flavors to (``log_model`` passes it).
        input_example: an ndarray, or a list of ndarrays, batch first: the model's inputs. Needed
            for a torch model whose input shape cannot be read from its first layer or from a
            sized feature preprocessing (``NNModel(net, [4])``); it fixes the signature and
            traces the TorchScript file.
        reference: a `zoo.monitoring.drift.FeatureReference` saved beside the model.

    Raises:
        ZooTypeError: ``model`` is none of the above.
        ZooValueError: the input shape cannot be told (pass ``input_example``), or ``path`` exists.
    """
    _mlflow.quiet()
    from mlflow.models import Model
    from mlflow.pyfunc import add_to_model

    path = os.fspath(path)
    if os.path.exists(path):
        raise ZooValueError(f"Expected `path` to be a new directory. Received: path={path!r}, which exists. "
                            f"Save to another path or delete it first.")
    data = os.path.join(path, DATA_DIR)
    os.makedirs(os.path.join(data, SERVING_DIR))
    try:
        conf = _save_files(model, data, input_example)
        if reference is not None:
            with open(os.path.join(data, REFERENCE_FILE), "w", encoding="utf-8") as f:
                f.write(reference.to_json())
        mlflow_model = mlflow_model if mlflow_model is not None else Model()
        mlflow_model.add_flavor(FLAVOR_NAME, **conf)
        add_to_model(mlflow_model, loader_module=__name__, data=DATA_DIR)
        mlflow_model.save(os.path.join(path, "MLmodel"))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


def log_model(model: Any, name: str, *, input_example: Any = None, reference: Any = None,
              registered_model_name: str | None = None, **kwargs: Any):
    """Log ``model`` to the active MLflow run (as ``mlflow.<flavor>.log_model`` does) under ``name``.

    ``model``, ``input_example`` and ``reference`` are as for :func:`save_model`;
    ``registered_model_name`` registers it as a new version of that model. Returns MLflow's
    ``ModelInfo``. `zoo.registry.ModelRegistry.publish` is the way to register a version with
    Zoo's tags (offsets, parent, status, signature).
    """
    import sys

    from mlflow.models import Model

    _mlflow.quiet()
    return Model.log(artifact_path=None, name=name, flavor=sys.modules[__name__], model=model,
                     input_example=input_example, reference=reference,
                     registered_model_name=registered_model_name, **kwargs)


def check_model(model: Any) -> None:
    """Raise unless :func:`save_model` can save ``model`` (checked before any work is done).

    Raises:
        ZooTypeError: ``model`` is neither an NNModel nor a path.
        ZooValueError: the NNModel has no model, no SparkSession runs, or the path is not a
            model file.
    """
    from zoo.nnframes import NNModel

    if isinstance(model, (str, os.PathLike)):
        _check_model_file(os.fspath(model))
    elif isinstance(model, NNModel):
        from pyspark import SparkContext

        if model.model is None:
            raise ZooValueError("This NNModel has no model to save. Fit it (or pass model=) first.")
        if SparkContext._active_spark_context is None:
            raise ZooValueError("Saving an NNModel writes its Spark ML stage, which needs a running SparkSession. "
                                "Start one first (zoo.init_spark), or save an exported model file instead.")
    else:
        raise ZooTypeError(f"Expected an NNModel, NNClassifierModel, or the path of a model file "
                           f"(.onnx, .xml, .pt, .pt2, .keras). Received: {type(model).__module__}.{type(model).__name__}.")


def _save_files(model: Any, data: str, input_example: Any) -> dict:
    """Write the serving file (and the stage of an NNModel) under ``data``; the flavor's conf."""
    check_model(model)
    serving = os.path.join(data, SERVING_DIR)
    if isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        file_name = os.path.basename(source)
        shutil.copy2(source, os.path.join(serving, file_name))
        if file_name.endswith(".xml"):  # OpenVINO keeps its weights beside the .xml
            shutil.copy2(source[: -len(".xml")] + ".bin", os.path.join(serving, file_name[: -len(".xml")] + ".bin"))
        conf = {"kind": KIND_FILE, "stage_class": None, "framework": None}
    else:
        framework, file_name, input_example = _write_serving_file(model, serving, input_example)
        model.write().save(os.path.join(data, SPARK_MODEL_DIR))
        conf = {"kind": KIND_NNMODEL, "stage_class": f"{type(model).__module__}.{type(model).__name__}",
                "framework": framework}
    conf["serving_file"] = f"{SERVING_DIR}/{file_name}"
    conf["signature"] = signature_of(os.path.join(serving, file_name), input_example)
    return conf


def _check_model_file(path: str) -> str:
    from zoo.inference import detect

    if not os.path.exists(path):
        raise ZooValueError(f"Expected the path of a model file. Received: {path!r}, which does not exist.")
    if os.path.isdir(path):
        raise ZooValueError(f"Expected a model file (.onnx, .xml, .pt, .pt2, .keras), not a directory. "
                            f"Received: {path!r}. Export it first with zoo.inference.export.")
    detect.detect_format(path)  # raises ModelLoadError naming the formats it reads
    return path


def _write_serving_file(model: Any, serving: str, input_example: Any) -> tuple[str, str, Any]:
    """TorchScript (traced on the example) for torch, the .keras file for Keras; returns the
    framework, the file's name and the example inputs (None where the file declares them)."""
    from zoo.engine.adapters import adapter_for

    adapter = adapter_for(model.model)
    if adapter.FRAMEWORK == "keras":
        adapter.save_model(model.model, serving)
        return "keras", adapter.KERAS_FILE, input_example
    import torch

    arrays = _example_arrays(model, input_example)
    module = model.model
    was_training = module.training
    module.eval()
    try:
        # TorchScript is deprecated in favour of torch.export, but it traces any module and every
        # Zoo runtime reads it (as zoo.inference does, the warning is not the user's to act on).
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(module, tuple(torch.from_numpy(a) for a in arrays))
            torch.jit.save(traced, os.path.join(serving, "model.pt"))
    finally:
        module.train(was_training)
    return "torch", "model.pt", arrays


def _example_arrays(model: Any, input_example: Any = None) -> list[np.ndarray]:
    """Inputs of one sample for an NNModel: ``input_example`` when given, else zeros of the shape
    its sized feature preprocessing (``SeqToTensor``) or its first layer (``in_features``) declares.

    Raises:
        ZooValueError: none of these tells the shape; the message asks for ``input_example``.
    """
    from zoo.inference.signature import as_array_list
    from zoo.nnframes.preprocessing import SeqToTensor

    if input_example is not None:
        return [np.ascontiguousarray(a) for a in as_array_list(input_example, "input_example")]
    steps = model.feature_preprocessing
    steps = steps if isinstance(steps, (list, tuple)) else [steps]
    if steps and all(isinstance(s, SeqToTensor) and s.shape is not None for s in steps):
        return [np.zeros((1,) + s.shape, np.float32) for s in steps]
    for layer in model.model.modules():
        if isinstance(getattr(layer, "in_features", None), int):
            return [np.zeros((1, layer.in_features), np.float32)]
        if any(True for _ in layer.parameters(recurse=False)):
            break
    raise ZooValueError(
        f"Cannot tell the input shape of {type(model.model).__name__}: its first layer declares no in_features and "
        f"its feature preprocessing no size. Pass input_example= (an ndarray of one sample, batch first)."
    )


def signature_of(serving_file: str, input_example: Any = None) -> dict:
    """``{"inputs": [...], "outputs": [...]}`` of a serving file, each entry ``{"name", "shape",
    "dtype"}`` (``None`` for a dynamic dimension or an undeclared dtype), read from the file's
    declared inputs or from ``input_example`` and the outputs of one run on it."""
    from zoo.inference import InferenceModel
    from zoo.inference.signature import as_array_list

    handle = InferenceModel().load(serving_file)
    try:
        declared = handle.inputs
        arrays = None
        if input_example is not None or declared is None:
            arrays = None if input_example is None else as_array_list(input_example, "input_example")
        elif all(d is not None for spec in declared if spec.shape for d in spec.shape[1:]) and declared[0].shape:
            arrays = [np.zeros((1,) + tuple(spec.shape[1:]), spec.dtype or np.float32) for spec in declared]
        if declared is not None:
            inputs = [_spec(s.name, s.shape, s.dtype) for s in declared]
        elif arrays is not None:
            inputs = [_spec(f"input_{i}", (None,) + a.shape[1:], a.dtype) for i, a in enumerate(arrays)]
        else:
            inputs = []
        outputs = []
        if arrays is not None:
            results = handle.predict(arrays if len(arrays) > 1 else arrays[0])
            results = results if isinstance(results, list) else [results]
            names = handle.output_names or [f"output_{i}" for i in range(len(results))]
            outputs = [_spec(n, (None,) + np.shape(r)[1:], np.asarray(r).dtype) for n, r in zip(names, results)]
        return {"inputs": inputs, "outputs": outputs}
    finally:
        handle.release()


def _spec(name: str, shape, dtype) -> dict:
    return {"name": name, "shape": None if shape is None else [None if d is None else int(d) for d in shape],
            "dtype": None if dtype is None else np.dtype(dtype).name}


# ------------------------------------------------------------------------------------ loading
def flavor_conf(model_dir: str) -> dict:
    """The ``zoo`` flavor configuration of the local MLflow model directory ``model_dir``.

    Raises:
        ZooValueError: there is no MLmodel, or it has no ``zoo`` flavor.
    """
    from mlflow.models import Model

    mlmodel = os.path.join(model_dir, "MLmodel")
    if not os.path.exists(mlmodel):
        raise ZooValueError(f"Expected an MLflow model directory with an MLmodel file. Received: {model_dir!r}.")
    flavors = Model.load(mlmodel).flavors
    if FLAVOR_NAME not in flavors:
        raise ZooValueError(f"The MLflow model at {model_dir!r} has no {FLAVOR_NAME!r} flavor (it has "
                            f"{sorted(flavors)}); load it with the flavor that saved it.")
    return flavors[FLAVOR_NAME]


def serving_path(model_dir: str) -> str:
    """The file InferenceModel.load reads, inside the local model directory ``model_dir``."""
    return os.path.join(model_dir, DATA_DIR, flavor_conf(model_dir)["serving_file"])


def load_reference(model_dir: str):
    """The FeatureReference saved with the model in ``model_dir``, or None."""
    from zoo.monitoring.drift import FeatureReference

    path = os.path.join(model_dir, DATA_DIR, REFERENCE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return FeatureReference.from_json(f.read())


def load_model(model_uri: str, dst_path: str | None = None):
    """The model at ``model_uri`` (a local directory or any MLflow URI: ``runs:/``, ``models:/``):
    the NNModel / NNClassifierModel it was saved from, or for a saved model file an
    InferenceModel holding it."""
    from mlflow.artifacts import download_artifacts

    _mlflow.quiet()
    local = model_uri if os.path.isdir(model_uri) else download_artifacts(artifact_uri=model_uri, dst_path=dst_path)
    conf = flavor_conf(local)
    if conf["kind"] == KIND_NNMODEL:
        module, _, cls = conf["stage_class"].rpartition(".")
        return getattr(importlib.import_module(module), cls).load(os.path.join(local, DATA_DIR, SPARK_MODEL_DIR))
    from zoo.inference import InferenceModel

    return InferenceModel().load(os.path.join(local, DATA_DIR, conf["serving_file"]))


class _PyFuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: the serving file run by InferenceModel."""

    def __init__(self, path: str):
        from zoo.inference import InferenceModel

        self.model = InferenceModel().load(path)

    def predict(self, data: Any, params: dict | None = None):
        """Outputs of the model on ``data`` (ndarray, list of ndarrays, or pandas DataFrame)."""
        return self.model.predict(_as_inputs(data))


def _as_inputs(data: Any):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if len(data.columns) == 1 and data.dtypes.iloc[0] == object:
            return np.stack([np.asarray(v) for v in data.iloc[:, 0]])
        return data.to_numpy()
    if isinstance(data, dict):
        return {k: np.asarray(v) for k, v in data.items()}
    return data


def _load_pyfunc(data_path: str) -> _PyFuncModel:
    """The pyfunc loader MLflow calls with the ``zoo`` data folder of a model."""
    return _PyFuncModel(serving_path(os.path.dirname(os.path.abspath(data_path))))
