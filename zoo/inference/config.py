"""Backend settings for ``InferenceModel``: which runtimes each framework's models run on
(`FRAMEWORK_BACKENDS`, the one list), and one dataclass per runtime with documented defaults.

Options given as keywords to ``InferenceModel.load_*`` / ``from_torch`` / ``from_framework`` (and
``NNModel.setBackend``) are the fields of these dataclasses (``hint="throughput"``, ``threads=2``,
...); unknown keywords raise an error listing the accepted ones.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooValueError, check_positive_int
from zoo.inference.errors import InferenceArgumentError

#: Compiled requests (OpenVINO infer requests, ONNX Runtime sessions) kept per handle.
DEFAULT_CONCURRENT_NUM = 1
#: OpenVINO device used when none is named.
DEFAULT_OPENVINO_DEVICE = "CPU"
#: OpenVINO inference precision. OpenVINO would pick bf16 on CPUs with AVX512-BF16/AMX; Zoo
#: defaults to f32 so results match the source model. Pass ``precision="bf16"`` for speed.
DEFAULT_OPENVINO_PRECISION = "f32"
#: ONNX opset used by the torch -> ONNX exporter.
DEFAULT_ONNX_OPSET = 17
#: Tolerances used to check a converted model against its source (``numpy.allclose``).
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
#: Looser tolerances used when OpenVINO runs in bf16/f16 precision.
DEFAULT_LOW_PRECISION_ATOL = 5e-2
DEFAULT_LOW_PRECISION_RTOL = 5e-2

#: Per framework, the runtimes an in-memory model of it runs on; the first is the framework's own
#: (no conversion, no options). A Keras model runs on "keras" whatever Keras backend it was built
#: on; to run it on OpenVINO or ONNX Runtime, export it (`zoo.inference.export`) and load the file.
FRAMEWORK_BACKENDS = {"torch": ("torch", "openvino", "onnxruntime"), "keras": ("keras",)}

_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
_PRECISIONS = ("f32", "bf16", "f16")
_GRAPH_OPTIMIZATION = ("disable", "basic", "extended", "all")


def check_concurrent_num(concurrent_num: Any) -> int:
    """Validate ``concurrent_num`` (a positive int) and return it."""
    if isinstance(concurrent_num, bool) or not isinstance(concurrent_num, int) or concurrent_num < 1:
        raise ZooValueError(
            f"Expected `concurrent_num` to be a positive int (the number of requests that may run at "
            f"once). Received: concurrent_num={concurrent_num!r}."
        )
    return concurrent_num


@dataclass
class OpenVINOConfig:
    """How OpenVINO compiles a model.

    Attributes:
        hint: ``"latency"``, ``"throughput"``, ``"cumulative_throughput"`` or None. None picks
            ``"latency"`` for ``concurrent_num == 1`` and ``"throughput"`` otherwise.
        streams: number of CPU streams (parallel inference slots), ``"auto"``, or None to let the
            hint decide.
        threads: total CPU threads OpenVINO may use, or None for all cores.
        precision: ``"f32"`` (default, matches the source model), ``"bf16"`` or ``"f16"``.
        device: an OpenVINO device name (default ``"CPU"``).
    """

    hint: str | None = None
    streams: int | str | None = None
    threads: int | None = None
    precision: str = DEFAULT_OPENVINO_PRECISION
    device: str = DEFAULT_OPENVINO_DEVICE

    def __post_init__(self):
        if self.hint is not None and self.hint not in _HINTS:
            raise ZooValueError(
                f"Expected `hint` to be one of {sorted(_HINTS)} or None. Received: hint={self.hint!r}."
            )
        if self.streams != "auto":
            check_positive_int("streams", self.streams, allow_none=True)
        check_positive_int("threads", self.threads, allow_none=True)
        if self.precision not in _PRECISIONS:
            raise ZooValueError(
                f"Expected `precision` to be one of {list(_PRECISIONS)}. Received: precision={self.precision!r}."
            )

    def properties(self, concurrent_num: int) -> dict[str, str]:
        """The OpenVINO ``compile_model`` properties for a pool of ``concurrent_num`` requests."""
        hint = self.hint or ("latency" if concurrent_num == 1 else "throughput")
        props = {"PERFORMANCE_HINT": _HINTS[hint], "INFERENCE_PRECISION_HINT": self.precision}
        if self.streams is None:
            # Let the hint size the streams for the pool, no more than there are requests.
            props["PERFORMANCE_HINT_NUM_REQUESTS"] = str(concurrent_num)
        else:
            props["NUM_STREAMS"] = "AUTO" if self.streams == "auto" else str(self.streams)
        if self.threads is not None:
            props["INFERENCE_NUM_THREADS"] = str(self.threads)
        return props

    @property
    def low_precision(self) -> bool:
        """Whether outputs are expected to differ from f32 by more than rounding."""
        return self.precision != "f32"


@dataclass
class OnnxRuntimeConfig:
    """How ONNX Runtime sessions are built.

    Attributes:
        intra_op_threads: threads of each session; None gives each of the ``concurrent_num``
            sessions an equal share of the cores (at least 1).
        inter_op_threads: threads running independent nodes in parallel; None lets ONNX Runtime decide.
        graph_optimization: ``"disable"``, ``"basic"``, ``"extended"`` or ``"all"`` (default).
        providers: execution providers, in order of preference.
    """

    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    graph_optimization: str = "all"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    def __post_init__(self):
        check_positive_int("intra_op_threads", self.intra_op_threads, allow_none=True)
        check_positive_int("inter_op_threads", self.inter_op_threads, allow_none=True)
        if self.graph_optimization not in _GRAPH_OPTIMIZATION:
            raise ZooValueError(
                f"Expected `graph_optimization` to be one of {list(_GRAPH_OPTIMIZATION)}. "
                f"Received: graph_optimization={self.graph_optimization!r}."
            )
        self.providers = tuple(self.providers)

    def session_threads(self, concurrent_num: int) -> int:
        """Intra-op threads for each of ``concurrent_num`` sessions."""
        if self.intra_op_threads is not None:
            return self.intra_op_threads
        return max(1, (os.cpu_count() or 1) // concurrent_num)


def make_config(cls, options: dict[str, Any], backend: str):
    """Build ``cls`` from keyword ``options``, naming the accepted keywords when one is unknown."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ZooValueError(
            f"Unknown option(s) {unknown} for backend {backend!r}. Accepted options: {names}."
        )
    return cls(**options)


#: The options dataclass of each runtime that takes options.
_CONFIGS = {"openvino": OpenVINOConfig, "onnxruntime": OnnxRuntimeConfig}


def native_backend(framework: str) -> str:
    """The runtime a `framework` model runs on without conversion (``"torch"``, ``"keras"``)."""
    return FRAMEWORK_BACKENDS[framework][0]


def backend_config(framework: str, backend: str | None, options: dict[str, Any], what: str = "InferenceModel"):
    """Check that a `framework` model can run on `backend` with `options`; return the runtime's
    config (None for the framework's own runtime). `backend` None means the framework's own.

    Args:
        framework: ``"torch"`` or ``"keras"`` (a key of `FRAMEWORK_BACKENDS`).
        backend: the runtime asked for.
        options: keyword options for the runtime (fields of its config dataclass).
        what: who asks, for the message (``"NNModel.setBackend"``).

    Raises:
        InferenceArgumentError: the pairing is not supported, or an option is unknown or invalid; the
            message names what was asked, what this model supports and how to fix it.
    """
    supported = FRAMEWORK_BACKENDS.get(framework)
    if supported is None:
        raise InferenceArgumentError(f"Expected a framework in {sorted(FRAMEWORK_BACKENDS)}. Received: framework={framework!r}.")
    backend = native_backend(framework) if backend is None else backend
    if backend not in supported:
        fix = (f"Use one of {list(supported)}" if len(supported) > 1 else f"Use {supported[0]!r} (the default)")
        raise InferenceArgumentError(
            f"{what} cannot run a {framework} model on backend {backend!r}. Backends for {framework} models: "
            f"{list(supported)}. {fix}, or export the model to a file with zoo.inference.export(model, "
            f"example_input, path, format=...) and load that with InferenceModel.load(path)."
        )
    config_class = _CONFIGS.get(backend)
    if config_class is None:
        if options:
            raise InferenceArgumentError(
                f"The {backend} backend takes no options. Received: {sorted(options)}. Options apply to "
                f"the backends {sorted(_CONFIGS)}."
            )
        return None
    return make_config(config_class, options, backend)
