"""Spark ML persistence for nnframes stages.

A saved stage is a directory:
    metadata/part-00000   one JSON line, as pyspark.ml writes it: class, uid, sparkVersion,
                          paramMap and defaultParamMap (the Params that are plain values)
    objects.pkl           cloudpickle of the Python objects: criterion, preprocessing, optimMethod,
                          endWhen, checkpoint and clipping settings, the model's framework
                          (`model_framework`) and, as `model`, what its adapter's `save_model`
                          returned: a torch model itself (architecture and initial weights), a
                          keras.Model's custom classes
    the model's files     what the adapter's `save_model` writes (see zoo.engine.adapters):
                          weights.safetensors for torch (the state_dict in safetensors,
                          language-neutral; these are the weights that are loaded), model.keras
                          for Keras (Keras' own format: architecture and weights)
Because the metadata is pyspark's own, a PipelineModel or Pipeline holding these stages saves
and loads with pyspark's writers; the validation DataFrame of an estimator is not saved.

`path` is a local path or a URL (file://, hdfs://, s3://, s3a://; see `zoo.storage`), and every
file of a stage, the metadata included, goes through `zoo.storage`: the stage is staged locally
and committed atomically, with ``metadata/part-00000`` written last on object stores (readers
need it first). pyspark's own Pipeline and PipelineModel writers write their metadata through
Spark's Hadoop file system instead, so a whole PipelineModel saves to s3a:// only where Spark has
the hadoop-aws jar; a single stage saves and loads on S3 without it.
"""

from __future__ import annotations

import json
import os
import time

import cloudpickle
from pyspark import SparkContext
from pyspark.ml.util import DefaultParamsReader, MLReadable, MLReader, MLWritable, MLWriter

from zoo import storage
from zoo.engine.adapters import adapter_for, adapter_named
from zoo.nnframes.params import OBJECT_PARAMS

#: The metadata line, where pyspark's writers put it; the commit marker of a saved stage.
METADATA_FILE = "metadata/part-00000"

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

    def save(self, path: str) -> None:
        """Save the stage to `path` (a path or URL); with ``overwrite()``, replace what is there.

        Raises:
            FileExistsError: something exists at `path` and ``overwrite()`` was not called.
        """
        path = storage.resolve(path)
        if not self.shouldOverwrite and storage.exists(path):
            raise FileExistsError(f"{path!r} already exists. Save to another path, or replace it with "
                                  f"stage.write().overwrite().save(path).")
        self.saveImpl(path)

    def saveImpl(self, path: str) -> None:
        """Write the stage's files into a local staging folder, then commit them to `path`."""
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
        objects = {name: getattr(instance, name) for name in SAVED_ATTRIBUTES if hasattr(instance, name)}
        objects["object_params"] = {p.name: v for p, v in instance._paramMap.items() if p.name in OBJECT_PARAMS}
        model = getattr(instance, "model", None)
        with storage.staged(path, marker=METADATA_FILE) as folder:
            if model is not None:
                adapter = adapter_for(model)
                objects["model"] = adapter.save_model(model, folder)
                objects["model_framework"] = adapter.FRAMEWORK
            with open(os.path.join(folder, "objects.pkl"), "wb") as f:
                cloudpickle.dump(objects, f)
            os.makedirs(os.path.join(folder, "metadata"))
            # What Spark's text writer leaves: the JSON line in part-00000 and an empty _SUCCESS.
            with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as f:
                f.write(json.dumps(metadata, separators=(",", ":")) + "\n")
            open(os.path.join(folder, "metadata", "_SUCCESS"), "wb").close()


def read_metadata(path: str) -> dict:
    """The metadata of the stage saved at `path`, read through `zoo.storage` (the first line of
    the first data file in ``metadata/``, as pyspark's ``DefaultParamsReader.loadMetadata`` reads it)."""
    folder = storage.join(path, "metadata")
    parts = [n for n in storage.listdir(folder) if not n.startswith(("_", "."))]
    if not parts:
        raise FileNotFoundError(f"No metadata under {folder!r}: {path!r} holds no saved stage (or an incomplete one).")
    line = storage.read_bytes(storage.join(folder, parts[0])).decode("utf-8").split("\n", 1)[0]
    return DefaultParamsReader._parseMetaData(line)


class NNReader(MLReader):
    """Reads a stage written by NNWriter."""

    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path: str):
        """The stage saved at `path` (a path or URL)."""
        path = storage.resolve(path)
        if not storage.isdir(path):
            raise FileNotFoundError(f"No saved {self.cls.__name__} at {path!r}: the directory does not exist.")
        metadata = read_metadata(path)
        local = storage.fetch(path)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        with open(os.path.join(local, "objects.pkl"), "rb") as f:
            objects = cloudpickle.load(f)
        instance._set(**objects.pop("object_params"))
        framework = objects.pop("model_framework", None)
        if "keras_custom_objects" in objects:  # saved before the framework was recorded
            framework, objects["model"] = "keras", objects.pop("keras_custom_objects")
        if framework is not None:
            objects["model"] = adapter_named(framework).load_model(local, objects["model"])
        if framework == "keras" and objects.get("backend") == "torch":
            # Saved when every NNModel's default backend was "torch", which ran Keras models natively.
            objects["backend"] = None
        for name, value in objects.items():
            setattr(instance, name, value)
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
