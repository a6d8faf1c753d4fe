"""Spark ML persistence for nnframes stages.

A saved stage is a directory:
    metadata/part-00000   one JSON line, as pyspark.ml writes it: class, uid, sparkVersion,
                          paramMap and defaultParamMap (the Params that are plain values)
    objects.pkl           cloudpickle of the Python objects: the model (architecture and its
                          initial weights), criterion, preprocessing, optimMethod, endWhen,
                          checkpoint and clipping settings
    weights.safetensors   the model's state_dict in safetensors (language-neutral; these are the
                          weights that are loaded)
    model.keras           instead of the pickled model and weights.safetensors when the model is a
                          keras.Model: Keras' own format (architecture and weights); objects.pkl then
                          holds model=None and the model's custom classes under keras_custom_objects
Because the metadata is pyspark's own, a PipelineModel or Pipeline holding these stages saves
and loads with pyspark's writers; the validation DataFrame of an estimator is not saved.
"""

from __future__ import annotations

import json
import os
import time

import cloudpickle
from pyspark import SparkContext
from pyspark.ml.util import DefaultParamsReader, MLReadable, MLReader, MLWritable, MLWriter

from zoo.engine.adapters import keras as keras_adapter
from zoo.nnframes.params import OBJECT_PARAMS

#: The file a keras.Model is saved to, in Keras' own format.
KERAS_FILE = "model.keras"

#: Attributes (not Params) saved with a stage, when the stage has them.
SAVED_ATTRIBUTES = ("model", "criterion", "feature_preprocessing", "label_preprocessing", "checkpoint",
                    "clip_constant", "clip_l2_norm", "tensorboard_dir", "show_progress", "output_kind",
                    "backend", "backend_options")


def _plain_params(param_map: dict) -> dict:
    return {p.name: v for p, v in param_map.items() if p.name not in OBJECT_PARAMS}


class NNWriter(MLWriter):
    """Writes an nnframes stage in the layout described in this module's docstring."""

    def __init__(self, instance):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        instance = self.instance
        sc = SparkContext._active_spark_context
        metadata = {
            "class": f"{type(instance).__module__}.{type(instance).__name__}",
            "timestamp": int(round(time.time() * 1000)),
            "sparkVersion": sc.version,
            "uid": instance.uid,
            "paramMap": _plain_params(instance._paramMap),
            "defaultParamMap": _plain_params(instance._defaultParamMap),
        }
        sc.parallelize([json.dumps(metadata, separators=(",", ":"))], 1).saveAsTextFile(
            os.path.join(path, "metadata"))
        objects = {name: getattr(instance, name) for name in SAVED_ATTRIBUTES if hasattr(instance, name)}
        objects["object_params"] = {p.name: v for p, v in instance._paramMap.items() if p.name in OBJECT_PARAMS}
        model = getattr(instance, "model", None)
        if model is not None and keras_adapter.is_model(model):
            objects["model"] = None
            objects["keras_custom_objects"] = keras_adapter.custom_objects_of(keras_adapter.unwrap(model))
        with open(os.path.join(path, "objects.pkl"), "wb") as f:
            cloudpickle.dump(objects, f)
        if model is not None and keras_adapter.is_model(model):
            keras_adapter.save_model_file(model, os.path.join(path, KERAS_FILE))
        elif model is not None:
            from safetensors.torch import save_model

            save_model(instance.model, os.path.join(path, "weights.safetensors"))


class NNReader(MLReader):
    """Reads a stage written by NNWriter."""

    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str):
        if not os.path.isdir(path):
            raise FileNotFoundError(f"No saved {self.cls.__name__} at {path!r}: the directory does not exist.")
        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        with open(os.path.join(path, "objects.pkl"), "rb") as f:
            objects = cloudpickle.load(f)
        instance._set(**objects.pop("object_params"))
        keras_custom_objects = objects.pop("keras_custom_objects", None)
        if os.path.exists(os.path.join(path, KERAS_FILE)):
            objects["model"] = keras_adapter.load_model_file(os.path.join(path, KERAS_FILE), keras_custom_objects)
        for name, value in objects.items():
            setattr(instance, name, value)
        weights = os.path.join(path, "weights.safetensors")
        if getattr(instance, "model", None) is not None and os.path.exists(weights):
            from safetensors.torch import load_model

            load_model(instance.model, weights)
        return instance


class NNWritable(MLWritable):
    """Mixin: `write()` returns an NNWriter; `save(path)` is `write().save(path)`."""

    def write(self) -> MLWriter:
        return NNWriter(self)


class NNReadable(MLReadable):
    """Mixin: `read()` returns an NNReader; `load(path)` is `read().load(path)`."""

    @classmethod
    def read(cls) -> MLReader:
        return NNReader(cls)
