"""``InferenceModel``: one thread-safe handle to run a torch, ONNX, OpenVINO or Keras model on numpy."""

from __future__ import annotations

import io
import logging
import os
import threading
from typing import Any

import numpy as np

from zoo.errors import ZooValueError
from zoo.inference import detect
from zoo.inference.backends import keras as keras_backend
from zoo.inference.backends import onnxruntime as ort_backend
from zoo.inference.backends import openvino as ov_backend
from zoo.inference.backends import torch as torch_backend
from zoo.inference.backends.base import Backend
from zoo.inference.config import (
    DEFAULT_ATOL,
    DEFAULT_CONCURRENT_NUM,
    DEFAULT_LOW_PRECISION_ATOL,
    DEFAULT_LOW_PRECISION_RTOL,
    DEFAULT_RTOL,
    OnnxRuntimeConfig,
    OpenVINOConfig,
    backend_config,
    check_concurrent_num,
    make_config,
    native_backend,
)
from zoo.inference.convert import check_outputs, grown_batch, torch_reference, torch_to_onnx, torch_to_openvino
from zoo.inference.errors import InferenceArgumentError, InferenceInputError, ModelLoadError, NotLoadedError, short
from zoo.inference.pool import RequestPool
from zoo.inference.signature import TensorSpec, as_array_list, format_signature, prepare_inputs

logger = logging.getLogger(__name__)


def _one_of(name: str, value: Any, alias: str, alias_value: Any, required: bool = True) -> Any:
    """The value of an argument that has an Analytics Zoo alias (or a Zoo one): exactly one given."""
    if value is not None and alias_value is not None:
        raise ZooValueError(f"Give `{name}` or `{alias}`, not both. Received: {name}={value!r}, {alias}={alias_value!r}.")
    if value is None and alias_value is None and required:
        raise ZooValueError(f"Expected `{name}` (or `{alias}`): the model to load. Received neither.")
    return value if value is not None else alias_value


class InferenceModel:
    """Load a model of any supported kind once, then ``predict`` on numpy from many threads.

    The handle keeps a pool of ``concurrent_num`` compiled requests (OpenVINO infer requests,
    ONNX Runtime sessions, or turns on a shared torch/Keras model); ``predict`` borrows one per
    call, so up to ``concurrent_num`` calls run at the same time and the rest wait.

    Example::

        model = InferenceModel(concurrent_num=2)
        model.load_onnx("model.onnx")
        probs = model.predict(np.random.rand(8, 4).astype("float32"))
        model.release()

    Args:
        concurrent_num: how many ``predict`` calls may run at once (default
            ``DEFAULT_CONCURRENT_NUM`` = 1).
        supported_concurrent_num: Analytics Zoo's name for `concurrent_num` (give one of them).
    """

    def __init__(self, concurrent_num: int | None = None, *, supported_concurrent_num: int | None = None):
        if concurrent_num is not None and supported_concurrent_num is not None:
            raise ZooValueError(f"Give `concurrent_num` or Analytics Zoo's `supported_concurrent_num`, not both. "
                                f"Received: concurrent_num={concurrent_num!r}, "
                                f"supported_concurrent_num={supported_concurrent_num!r}.")
        given = concurrent_num if concurrent_num is not None else supported_concurrent_num
        self.concurrent_num = check_concurrent_num(DEFAULT_CONCURRENT_NUM if given is None else given)
        self._backend: Backend | None = None
        self._pool: RequestPool | None = None
        self._swap = threading.Lock()

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def from_torch(
        cls,
        module: Any,
        example_input: Any,
        backend: str = "torch",
        concurrent_num: int = DEFAULT_CONCURRENT_NUM,
        **backend_options: Any,
    ) -> "InferenceModel":
        """A handle running a torch module on ``backend``, converted in memory.

        ``NNModel.transform`` reaches it through :meth:`from_framework`.

        Args:
            module: a ``torch.nn.Module`` (eager or TorchScript) or a ``torch.export.ExportedProgram``.
            example_input: an ndarray, or a list with one ndarray per model input, batch first. It
                fixes the input signature (dtypes, non-batch dimensions; the batch stays dynamic),
                drives tracing, and is used to check the converted model against ``module``.
            backend: ``"torch"`` (run ``module`` under ``torch.inference_mode``), ``"openvino"``
                (``openvino.convert_model`` in memory) or ``"onnxruntime"`` (ONNX exported into
                memory, no files written).
            concurrent_num: size of the request pool.
            **backend_options: fields of :class:`OpenVINOConfig` (``hint``, ``streams``,
                ``threads``, ``precision``, ``device``) or :class:`OnnxRuntimeConfig`
                (``intra_op_threads``, ``inter_op_threads``, ``graph_optimization``, ``providers``).

        Raises:
            ExportError: the conversion failed, or its outputs differ from ``module``'s.
        """
        handle = cls(concurrent_num)
        handle.load_torch(module, example_input=example_input, backend=backend, **backend_options)
        return handle

    @classmethod
    def from_framework(
        cls,
        framework: str,
        model: Any,
        example_input: Any = None,
        backend: str | None = None,
        concurrent_num: int = DEFAULT_CONCURRENT_NUM,
        **backend_options: Any,
    ) -> "InferenceModel":
        """A handle running an in-memory torch or Keras model on ``backend``.

        This is what ``NNModel.transform`` calls once per Python worker, for every backend.

        Args:
            framework: ``"torch"`` or ``"keras"`` (the keys of
                `zoo.inference.config.FRAMEWORK_BACKENDS`, which lists each one's backends).
            model: a ``torch.nn.Module`` / ``torch.export.ExportedProgram``, or a ``keras.Model``.
            example_input: one batch (an ndarray or a list of them) that a conversion traces and is
                checked on. The framework's own runtime does not use it: it runs the model as it
                is, so later batches may differ from it in their non-batch dimensions.
            backend: one of ``FRAMEWORK_BACKENDS[framework]``; None: the framework's own runtime.
            concurrent_num: size of the request pool.
            **backend_options: the runtime's options (see :meth:`from_torch`).

        Raises:
            InferenceArgumentError: the framework's models do not run on ``backend``, or an option does
                not fit it; the message lists the backends and options that do.
            ExportError: a conversion failed, or its outputs differ from ``model``'s.
        """
        backend = native_backend(framework) if backend is None else backend
        backend_config(framework, backend, backend_options, "InferenceModel.from_framework")
        handle = cls(concurrent_num)
        if framework == "keras":
            return handle.load_keras(model)
        native = backend == native_backend(framework)
        return handle.load_torch(model, None if native else example_input, backend=backend, **backend_options)

    # ----------------------------------------------------------------------------- loaders
    def load_torch(
        self,
        model: Any = None,
        example_input: Any = None,
        backend: str = "torch",
        *,
        model_path: Any = None,
        verify: bool = True,
        **backend_options: Any,
    ) -> "InferenceModel":
        """Load a torch model: a module, a TorchScript file (``.pt``) or an ExportedProgram (``.pt2``).

        Args:
            model: an ``nn.Module``, ``ScriptModule``, ``ExportedProgram``, or a path to one.
            model_path: Analytics Zoo's name for a path given as `model` (give one of them).
            example_input: ndarray or list of ndarrays (batch first). Optional for ``backend="torch"``
                (it then sets the input signature that ``predict`` checks); required otherwise.
            backend: ``"torch"``, ``"openvino"`` or ``"onnxruntime"``.
            verify: check the converted model against the torch model on ``example_input`` (and on
                a batch one larger, to prove the batch dimension is dynamic).
            **backend_options: see :meth:`from_torch`.

        Returns:
            self, to chain.
        """
        config = backend_config("torch", backend, backend_options, "InferenceModel.load_torch")
        model = _one_of("model", model, "model_path", model_path)
        if isinstance(model, (str, os.PathLike)):
            source = os.fspath(model)
            model = torch_backend.load_program(detect.local_model(source))
        else:
            source = f"torch {type(model).__name__}"
        arrays = as_array_list(example_input) if example_input is not None else None
        if backend == "torch":
            loaded = torch_backend.from_module(model, arrays)
            loaded.source = source
            return self._install(loaded)
        if arrays is None:
            raise InferenceArgumentError(
                f"Backend {backend!r} converts the torch model, which needs `example_input` (an ndarray "
                f"or a list of ndarrays, batch first). Received: example_input=None."
            )
        if backend == "openvino":
            loaded = ov_backend.compile(torch_to_openvino(model, arrays), config, self.concurrent_num, source)
            low_precision = config.low_precision
        else:
            buffer = io.BytesIO()
            torch_to_onnx(model, arrays, buffer)
            loaded = ort_backend.load(buffer.getvalue(), config, self.concurrent_num, source)
            low_precision = False
        if verify:
            atol, rtol = (DEFAULT_LOW_PRECISION_ATOL, DEFAULT_LOW_PRECISION_RTOL) if low_precision else (DEFAULT_ATOL, DEFAULT_RTOL)
            run = loaded.new_request()
            for batch in (arrays, grown_batch(arrays)):
                batch = prepare_inputs(batch, loaded.inputs)
                check_outputs(torch_reference(model, batch), run(batch), atol, rtol, f"The {backend} conversion of {source}")
        return self._install(loaded)

    def load_onnx(self, path: Any, **ort_options: Any) -> "InferenceModel":
        """Load an ONNX model (a path, or the serialized bytes) into ONNX Runtime.

        Args:
            path: a ``.onnx`` file (a path or URL), or ``bytes`` of one.
            **ort_options: fields of :class:`OnnxRuntimeConfig`.
        """
        config = make_config(OnnxRuntimeConfig, ort_options, "onnxruntime")
        if isinstance(path, (bytes, bytearray)):
            return self._install(ort_backend.load(bytes(path), config, self.concurrent_num))
        return self._install(ort_backend.load(detect.local_model(path), config, self.concurrent_num))

    def load_openvino(self, model_path: Any = None, weight_path: Any = None, batch_size: int = 0, *,
                      xml: Any = None, bin: Any = None, **ov_options: Any) -> "InferenceModel":
        """Load an OpenVINO IR (``model.xml`` and its weights ``model.bin``) and compile it.

        Args:
            model_path: path or URL of the ``.xml`` file (Analytics Zoo's name; `xml` also works).
            weight_path: path or URL of the weights; by default the ``.bin`` beside the ``.xml``
                (Analytics Zoo's name; `bin` also works).
            batch_size: 0 (default) keeps the model's input shapes (Zoo's exports have a dynamic
                batch); a positive value fixes the batch dimension of every input to it, as
                Analytics Zoo did, and ``predict`` then takes batches of exactly that size.
            **ov_options: fields of :class:`OpenVINOConfig` (``hint``, ``streams``, ``threads``,
                ``precision``, ``device``).
        """
        xml = _one_of("model_path", model_path, "xml", xml)
        bin = _one_of("weight_path", weight_path, "bin", bin, required=False)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
            raise ZooValueError(f"Expected `batch_size` to be 0 (keep the model's batch) or a positive int. "
                                f"Received: batch_size={batch_size!r}.")
        config = make_config(OpenVINOConfig, ov_options, "openvino")
        model = ov_backend.read(detect.local_model(xml), None if bin is None else detect.local_model(bin))
        if batch_size:
            model = ov_backend.set_batch(model, batch_size)
        return self._install(ov_backend.compile(model, config, self.concurrent_num, os.fspath(xml)))

    def load_keras(self, model: Any) -> "InferenceModel":
        """Load a Keras 3 model (a ``keras.Model`` or a ``.keras`` / ``.h5`` path); needs ``keras``.

        For speed, ``export(model, x, "m.xml", format="openvino")`` and :meth:`load_openvino`.
        """
        if isinstance(model, (str, os.PathLike)):
            model = detect.local_model(model)
        return self._install(keras_backend.load(model))

    def load(self, path: Any, **options: Any) -> "InferenceModel":
        """Load a model file of any supported kind, told from its name (then its first bytes).

        ``.onnx`` -> ONNX Runtime; ``.xml`` -> OpenVINO; ``.pt``/``.pth`` (TorchScript) and
        ``.pt2`` (ExportedProgram) -> :meth:`load_torch`; ``.keras``/``.h5`` -> Keras; a
        TensorFlow SavedModel directory -> converted with OpenVINO. ``options`` go to that loader.
        ``path`` may be a URL (``s3://``, ``hdfs://``, ...): the model is fetched into a local cache
        first (`zoo.inference.detect.local_model`).
        """
        path = detect.local_model(path)
        kind = detect.detect_format(path)
        logger.info("Loading %s as %s", path, kind)
        if kind == detect.ONNX:
            return self.load_onnx(path, **options)
        if kind == detect.OPENVINO:
            return self.load_openvino(path, **options)
        if kind in (detect.TORCHSCRIPT, detect.EXPORTED_PROGRAM):
            return self.load_torch(path, **options)
        if kind == detect.KERAS:
            if options:
                raise InferenceArgumentError(f"Keras models take no load options. Received: {sorted(options)}.")
            return self.load_keras(path)
        config = make_config(OpenVINOConfig, options, "openvino")
        import openvino as ov

        try:
            model = ov.convert_model(path)
        except Exception as exc:  # noqa: BLE001 - OpenVINO's TF frontend raises many error classes
            raise ModelLoadError(f"Could not load {path!r} as a TensorFlow SavedModel (with OpenVINO): {short(exc)}") from exc
        return self._install(ov_backend.compile(model, config, self.concurrent_num, path))

    def _install(self, backend: Backend) -> "InferenceModel":
        pool = RequestPool(backend.new_request, self.concurrent_num)
        with self._swap:
            old_backend, old_pool = self._backend, self._pool
            self._backend, self._pool = backend, pool
        if old_pool is not None:
            old_pool.close()
            old_backend.close()
        logger.info("Loaded %s on %s with %d request(s)", backend.source, backend.name, self.concurrent_num)
        return self

    # ----------------------------------------------------------------------------- inference
    def predict(self, inputs: Any) -> np.ndarray | list[np.ndarray]:
        """Run the model on one batch.

        Args:
            inputs: an ndarray (single-input models), a list of ndarrays in input order, or a dict
                of input name -> ndarray. Batch dimension first. Dtypes are converted when no value
                changes, and floats are rounded to a narrower float (float64 -> float32); see
                `zoo.dtypes` and :attr:`input_signature`.

        Returns:
            an ndarray for a single-output model, else a list of ndarrays in output order.

        Raises:
            InferenceInputError: the inputs do not fit the model; the message names its signature.
            NotLoadedError: no model is loaded.
        """
        with self._swap:
            backend, pool = self._backend, self._pool
        if pool is None:
            raise NotLoadedError(
                "This InferenceModel holds no model. Call load_torch, load_onnx, load_openvino, "
                "load_keras or load first (or from_torch)."
            )
        arrays = prepare_inputs(inputs, backend.inputs)
        with pool.acquire() as run:
            try:
                outputs = run(arrays)
            except Exception as exc:  # noqa: BLE001 - re-raised with the signature, cause chained
                received = ", ".join(f"{a.dtype.name}{list(a.shape)}" for a in arrays)
                expected = format_signature(backend.inputs) if backend.inputs is not None else "(not declared by the model)"
                raise InferenceInputError(
                    f"The {backend.name} model {backend.source!r} failed on inputs ({received}): "
                    f"{short(exc)}. Expected signature {expected}."
                ) from exc
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def release(self) -> None:
        """Free the model and its requests. ``predict`` then raises until a model is loaded again."""
        with self._swap:
            backend, pool = self._backend, self._pool
            self._backend, self._pool = None, None
        if pool is not None:
            pool.close()
            backend.close()

    # ----------------------------------------------------------------------------- description
    @property
    def backend(self) -> str | None:
        """The runtime in use (``torch``, ``onnxruntime``, ``openvino``, ``keras``), or None."""
        return None if self._backend is None else self._backend.name

    @property
    def inputs(self) -> list[TensorSpec] | None:
        """The input signature ``predict`` checks, or None when the model declares none."""
        return None if self._backend is None else self._backend.inputs

    @property
    def output_names(self) -> list[str] | None:
        """The model's output names, in the order ``predict`` returns them."""
        return None if self._backend is None else self._backend.output_names

    @property
    def input_signature(self) -> str:
        """The input signature as text, e.g. ``(x: float32[?, 4])``."""
        if self._backend is None:
            return "(no model loaded)"
        if self._backend.inputs is None:
            return "(not declared by the model)"
        return format_signature(self._backend.inputs)

    @property
    def compiled_model(self) -> Any:
        """The OpenVINO ``CompiledModel`` when the backend is OpenVINO (to read its properties), else None."""
        return getattr(self._backend, "compiled", None)

    def __enter__(self) -> "InferenceModel":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        if self._backend is None:
            return f"InferenceModel(concurrent_num={self.concurrent_num}, no model loaded)"
        return (
            f"InferenceModel(backend={self.backend!r}, source={self._backend.source!r}, "
            f"inputs={self.input_signature}, concurrent_num={self.concurrent_num})"
        )
