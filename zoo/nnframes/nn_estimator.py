"""NNEstimator and NNModel: train and apply a PyTorch or Keras model as Spark ML stages."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid

import cloudpickle
from pyspark.ml import Estimator, Model
from pyspark.sql.types import StructType

from zoo import storage
from zoo.engine.adapters import adapter_for, copy_model, for_workers
from zoo.engine.arrow_data import ColumnLayout
from zoo.engine.config import CheckpointConfig, TrainingConfig, ValidationConfig, default_end_trigger
from zoo.engine.launcher import available_slots, check_slots, prepare_frame, run_fit, worker_payload
from zoo.engine.storage_preflight import storage_preflight
from zoo.engine.triggers import check_trigger
from zoo.errors import NotFittedError, ZooValueError
from zoo.inference.config import backend_config, native_backend
from zoo.nnframes import input_checks
from zoo.nnframes.az_methods import _AZEstimatorMethods
from zoo.nnframes.columns import (
    VECTOR, check_column_supported, column_kind, default_preprocessing, model_input_column,
)
from zoo.nnframes.lr_decay import with_decay
from zoo.nnframes.params import _NNCommonParams, _NNEstimatorParams
from zoo.nnframes.persistence import NNReadable, NNWritable
from zoo.nnframes.predict import InferenceRunner, model_framework, predict_task
from zoo.nnframes.preprocessing import SampleBuilder, from_sizes, to_preprocessing

logger = logging.getLogger(__name__)


def resolve_feature_preprocessing(given, df, feature_cols: list[str], kinds: list[str]):
    """One Preprocessing per feature column from what the user gave (None, one, or a list)."""
    if isinstance(given, (list, tuple)):
        if len(given) != len(feature_cols):
            raise ZooValueError(
                f"Expected one feature preprocessing per feature column ({len(feature_cols)}: {feature_cols}). "
                f"Received {len(given)}."
            )
        steps = [to_preprocessing(p) for p in given]
    elif given is not None:
        steps = [to_preprocessing(given)] * len(feature_cols)
    else:
        steps = [default_preprocessing(k) for k in kinds]
    for name, kind, step in zip(feature_cols, kinds, steps):
        check_column_supported(df, name, kind, "features", step)
    return steps


@dataclasses.dataclass
class FitColumns:
    """What a fit reads: the feature and label columns, their kinds and preprocessing."""

    feature_cols: list[str]
    label_col: str
    kinds: list[str]
    label_kind: str
    feature_steps: list
    label_step: object

    @property
    def names(self) -> list[str]:
        """Feature columns, then the label column."""
        return self.feature_cols + [self.label_col]

    @property
    def layout(self) -> ColumnLayout:
        """Which of the workers' columns feed the model and which the criterion."""
        return ColumnLayout(tuple(self.feature_cols), self.label_col)

    @property
    def feature_kinds(self) -> dict[str, str]:
        """Each feature column's kind, in order."""
        return dict(zip(self.feature_cols, self.kinds))

    @property
    def inputs(self) -> list:
        """The columns the workers read, as Column expressions named after their columns (ML
        Vectors as arrays)."""
        return [model_input_column(c, k) for c, k in zip(self.names, self.kinds + [self.label_kind])]

    def select(self, df):
        """`df` reduced to `inputs`."""
        return df.select(*self.inputs)

    def build(self) -> SampleBuilder:
        """The sample builder the workers run on these columns."""
        return SampleBuilder(self.feature_steps, self.label_step)


def plan_columns(df, feature_cols: list[str], label_col: str, feature_preprocessing, label_step_for) -> FitColumns:
    """What a fit or an evaluation reads from `df`, from its schema alone (no Spark job): each
    column's kind, the feature preprocessing resolved per column, and `label_step_for(label kind)`
    as the label's; raises, naming the column, for a column that is missing or not supported."""
    kinds = [column_kind(df, c, "features") for c in feature_cols]
    label_kind = column_kind(df, label_col, "label")
    feature_steps = resolve_feature_preprocessing(feature_preprocessing, df, feature_cols, kinds)
    label_step = label_step_for(label_kind)
    check_column_supported(df, label_col, label_kind, "label", label_step)
    return FitColumns(list(feature_cols), label_col, kinds, label_kind, feature_steps, label_step)


class NNEstimator(Estimator, _NNEstimatorParams, _AZEstimatorMethods, NNWritable, NNReadable):
    """Trains a PyTorch or Keras 3 model on a DataFrame across Spark executors; `fit` returns an NNModel.

    Args:
        model: a torch.nn.Module or a keras.Model (its current weights are the starting point).
        criterion: a torch loss module or a callable (output, target) -> scalar tensor; for a
            keras.Model a Keras loss (object, name, or function (y_true, y_pred) -> loss).
        feature_preprocessing: a Preprocessing or callable, or a list with one per feature
            column; default: scalars -> [1], arrays and ML Vectors -> flat float tensors. As in
            Analytics Zoo, a list of ints is a size (SeqToTensor([2])) and a list of int lists
            cuts one column into several model inputs (SeqToMultipleTensors([[1], [2]])).
        label_preprocessing: a Preprocessing, callable or size for the label column; default as
            for features.
        **params: any Param by name (featuresCol, labelCol, predictionCol, batchSize, maxEpoch,
            learningRate, learningRateDecay, optimMethod, endWhen, numWorkers, cachingSample,
            shuffle, seed, gradientCompression, transport, profile).

    The arguments may be given by position, as Analytics Zoo's `NNEstimator(model, criterion)`.

    Training runs as one barrier stage of `numWorkers` tasks (default: all task slots) that
    aggregate gradients in shards among themselves; see docs/design.md.
    """

    def __init__(self, model=None, criterion=None, feature_preprocessing=None, label_preprocessing=None,
                 **params):
        super().__init__()
        self._set_estimator_defaults()
        self.model = model
        self.criterion = criterion
        self.feature_preprocessing = from_sizes(feature_preprocessing)
        self.label_preprocessing = from_sizes(label_preprocessing)
        self.validation = None
        self.checkpoint = None
        self.train_summary = self.validation_summary = self.data_cache_slices = None
        self.clip_constant = None
        self.clip_l2_norm = None
        self.tensorboard_dir = None
        self.show_progress = True
        self._set(**params)

    # ---- training options that are not single values -------------------------------------
    def setValidation(self, trigger, df, methods, batch_size=None):
        """Validate on `df` with `methods` (Loss(), Top1Accuracy(), MAE(), AUC()) when `trigger` fires."""
        self.validation = ValidationConfig(trigger, df, methods, batch_size or self.getBatchSize())
        return self

    def setCheckpoint(self, path, trigger, overwrite=True, resume=False, *, isOverWrite=None):
        """Checkpoint to `path` when `trigger` fires; `resume=True` continues from the latest one.
        `isOverWrite` is Analytics Zoo's name for `overwrite`."""
        overwrite = overwrite if isOverWrite is None else isOverWrite
        self.checkpoint = CheckpointConfig(path, trigger, bool(overwrite), resume)
        return self

    def setConstantGradientClipping(self, min_value, max_value):
        """Clamp every gradient element to [min_value, max_value]."""
        self.clip_constant = (float(min_value), float(max_value))
        return self

    def setGradientClippingByL2Norm(self, clip_norm):
        """Scale the global gradient down when its L2 norm exceeds `clip_norm`."""
        self.clip_l2_norm = float(clip_norm)
        return self

    def clearGradientClipping(self):
        """Turn gradient clipping off."""
        self.clip_constant = self.clip_l2_norm = None
        return self

    def setTensorBoard(self, log_dir, app_name="zoo"):
        """Write TensorBoard events to `log_dir/app_name/{train,validation}` on the driver;
        `log_dir` is a path or URL (a remote one gets the events at flush points and at the end)."""
        self.tensorboard_dir = storage.join(log_dir, app_name)
        return self

    def setShowProgress(self, show):
        """Show (True) or hide the tqdm progress bar on the driver."""
        self.show_progress = bool(show)
        return self

    # ---- fit -------------------------------------------------------------------------------
    def _label_preprocessing(self, label_kind):
        """The label preprocessing to use (NNClassifier overrides)."""
        if self.label_preprocessing is not None:
            return to_preprocessing(self.label_preprocessing)
        return default_preprocessing(label_kind)

    def _check_labels(self, summary, output):
        """Hook for NNClassifier: check labels against the model's output."""

    def _training_config(self, slots: int) -> TrainingConfig:
        num_workers = self.getNumWorkers() or slots
        end = self.getEndWhen()
        end = check_trigger("endWhen", end) if end is not None else default_end_trigger(self.getMaxEpoch())
        # The validation rows reach the workers through the stage's input, not pickled in the config.
        validation = dataclasses.replace(self.validation, data=None) if self.validation is not None else None
        return TrainingConfig(
            batch_size=self.getBatchSize(), end_trigger=end,
            optim_method=with_decay(self._optim_method(), self.getLearningRate(), self.getLearningRateDecay(),
                                    self.model),
            learning_rate=self.getLearningRate(), num_workers=num_workers, validation=validation,
            checkpoint=self.checkpoint, clip_constant=self.clip_constant, clip_l2_norm=self.clip_l2_norm,
            gradient_compression=self.getGradientCompression(), transport=self.getTransport(),
            caching_sample=self.getCachingSample(),
            shuffle=self.getShuffle(), seed=self.getSeed(), show_progress=self.show_progress,
            tensorboard_dir=self.tensorboard_dir, profile=self.getProfile(), run_id=uuid.uuid4().hex,
        )

    def _optim_method(self):
        """`optimMethod`, or the model framework's default optimizer when it is not set; one the
        model's framework cannot use is refused here, on the driver."""
        optim_method, adapter = self.getOptimMethod(), adapter_for(self.model)
        adapter.check_optim_method(optim_method, self.getLearningRate())
        return adapter.default_optimizer() if optim_method is None else optim_method

    def _check_model(self):
        if self.model is None or self.criterion is None:
            raise ZooValueError("NNEstimator needs `model` and `criterion`. Pass them as keywords: "
                                "NNEstimator(model=net, criterion=torch.nn.MSELoss()).")

    def _plan_columns(self, df) -> "FitColumns":
        """The checks a DataFrame's schema allows (no Spark job): column kinds and preprocessing.
        Works on a streaming DataFrame too."""
        return plan_columns(df, self.feature_columns(), self.getLabelCol(), self.feature_preprocessing,
                            self._label_preprocessing)

    def _payload(self, columns: "FitColumns", config: TrainingConfig) -> bytes:
        """What the workers unpickle, pickled; its pickling is the check that everything going to
        the executors pickles (an error names the part that does not)."""
        worker_model = for_workers(adapter_for(self.model), self.model)
        parts = dict(model=worker_model, criterion=self.criterion, optimMethod=config.optim_method,
                     feature_preprocessing=columns.feature_steps, label_preprocessing=columns.label_step)
        return input_checks.pickled(worker_payload(worker_model, self.criterion, columns.build(), config), **parts)

    def _check_data(self, df, columns: "FitColumns", allow_empty: bool = False):
        """One aggregation over `df` (rows, nulls, NaN/Inf, array lengths, and the first rows);
        raises on bad data. Returns (summary, first rows); with `allow_empty` an empty `df` gives
        (summary with ``rows == 0``, None), unchecked."""
        summary, sample = input_checks.summary_and_sample(df, columns.label_col, columns.label_kind,
                                                          columns.feature_kinds, columns.inputs)
        if allow_empty and summary["rows"] == 0:
            return summary, None
        input_checks.check_summary(summary, columns.label_col, dict(zip(columns.feature_cols, columns.feature_steps)),
                                   columns.feature_kinds)
        return summary, sample

    def _check_model_on(self, sample, columns: "FitColumns", summary: dict):
        """Run the model and criterion on the first rows (`_check_data`); returns the output."""
        adapter = adapter_for(self.model)
        output = input_checks.dry_run(sample, columns.layout, columns.build(), adapter, self.model, self.criterion,
                                      check_output=lambda out: self._check_labels(summary, out))
        # After the dry run, which builds a Keras model that was not built yet.
        input_checks.check_trainable(adapter, self.model)
        return output

    def _fit(self, df):
        started = time.time()
        self._check_model()
        adapter = adapter_for(self.model)
        spark = df.sparkSession
        slots = available_slots(spark)
        # Storage first: a bad checkpoint URL fails before the input checks below run Spark jobs.
        config = storage_preflight(spark, self._training_config(slots))
        check_slots(config.num_workers, slots)
        columns = self._plan_columns(df)
        validation_df = self.validation.data if self.validation is not None else None
        if validation_df is not None:
            for c in columns.names:
                column_kind(validation_df, c, "validation")
        built = adapter.is_built(self.model)
        # The one pickling of the model (two for a model the dry run builds: the first is small).
        payload = self._payload(columns, config)
        summary, sample = self._check_data(df, columns)
        output = self._check_model_on(sample, columns, summary)
        if not built:
            payload = self._payload(columns, config)
        frame = prepare_frame(df, columns.inputs, config.num_workers, validation_df)
        result = run_fit(frame, columns.layout, payload, config, started=started)
        trained = copy_model(adapter, self.model)
        adapter.load_state_bytes_into(trained, result.model_state)
        model = self._create_model(trained, columns.feature_steps, output)
        model.history = result.history
        model.fit_startup_s = result.startup_s
        model.fit_duration_s = result.duration_s
        model.fit_samples_per_second = result.samples_per_second
        model.fit_topology = result.topology
        model.fit_profile = result.profile
        return model

    def fitStream(self, stream_df, *, checkpoint_location: str, registry=None, model_name: str | None = None,
                  publish_every_batches: int | None = None, publish_every_seconds: float | None = None,
                  publish_on_metric=None, gate=None, trigger=None, initial_model=None, publisher=None):
        """Train on a Structured Streaming DataFrame, micro-batch after micro-batch, each continuing
        from the previous state; returns a `zoo.nnframes.streaming.StreamingFit` handle. The options
        are `zoo.nnframes.streaming.fit_stream`'s; see docs/online-learning.md."""
        from zoo.nnframes.streaming import fit_stream

        return fit_stream(self, stream_df, checkpoint_location=checkpoint_location, registry=registry,
                          model_name=model_name, publish_every_batches=publish_every_batches,
                          publish_every_seconds=publish_every_seconds, publish_on_metric=publish_on_metric,
                          gate=gate, trigger=trigger, initial_model=initial_model, publisher=publisher)

    def _create_model(self, trained, feature_steps, output):
        model = NNModel(model=trained, feature_preprocessing=feature_steps)
        return self._copyValues(model)


class NNModel(Model, _NNCommonParams, NNWritable, NNReadable):
    """A fitted (or given) PyTorch or Keras model applied to a DataFrame; adds an array<float> prediction.

    Args:
        model: the torch.nn.Module.
        feature_preprocessing: a Preprocessing, callable, or one per feature column; a list of
            ints (or of int lists) is a size, as for NNEstimator.
        **params: featuresCol, predictionCol, batchSize.

    The arguments may be given by position, as Analytics Zoo's `NNModel(model, [2])`.

    Attributes:
        history: per-step training losses and validation results of the fit that made it.
        fit_startup_s, fit_duration_s, fit_samples_per_second: timings of that fit (seconds from
            fit() to the first step, of the whole fit, and steady-state training throughput).
        fit_topology: the workers' hosts and the gradient transport that fit chose.
        fit_profile: per worker, mean milliseconds per step in each phase of that fit
            (see `zoo.engine.profile`); recorded on every fit, printed with `profile=True`.
    """

    def __init__(self, model=None, feature_preprocessing=None, **params):
        super().__init__()
        self._set_common_defaults()
        self.model = model
        self.feature_preprocessing = from_sizes(feature_preprocessing)
        self.history = []
        self.backend, self.backend_options = None, {}
        self._set(**params)

    def setSamplePreprocessing(self, value):
        """Replace the feature preprocessing (Analytics Zoo's name; a size list works too); returns self."""
        self.feature_preprocessing = from_sizes(value)
        return self

    def _postprocess(self):
        """Callable run on the workers: model output -> new columns (NNClassifierModel overrides)."""
        return ArrayPrediction(self.getPredictionCol())

    def _output_schema(self):
        return f"`{self.getPredictionCol()}` array<float>"

    def _finish(self, df):
        """Driver-side touch-ups after mapInArrow (NNClassifierModel overrides)."""
        return df

    def _transform(self, df):
        if self.model is None:
            raise NotFittedError("This NNModel has no model. Call fit on an NNEstimator first, or pass model=.")
        feature_cols = self.feature_columns()
        kinds = [column_kind(df, c, "features") for c in feature_cols]
        steps = resolve_feature_preprocessing(self.feature_preprocessing, df, feature_cols, kinds)
        if self.getPredictionCol() in df.columns:
            raise ZooValueError(f"The DataFrame already has a column `{self.getPredictionCol()}`. "
                                f"Set predictionCol to a new name.")
        temp = {c: f"__zoo_input_{i}" for i, (c, k) in enumerate(zip(feature_cols, kinds)) if k == VECTOR}
        frame = df
        for c, name in temp.items():
            frame = frame.withColumn(name, model_input_column(c, VECTOR))
        input_columns = [temp.get(c, c) for c in feature_cols]
        runner = self._runner()
        input_checks.check_picklable(model=self.model, feature_preprocessing=steps)
        runner = cloudpickle.dumps(runner)
        # Keyed by content: a worker reuses its cached model only if it is byte-for-byte this one.
        cache_key = hashlib.sha1(runner).hexdigest()
        broadcast = df.sparkSession.sparkContext.broadcast(runner)
        out_schema = StructType(frame.schema.fields + StructType.fromDDL(self._output_schema()).fields)
        task = predict_task(broadcast, cache_key, input_columns, self.getBatchSize(),
                            SampleBuilder(steps, None), self._postprocess())
        result = frame.mapInArrow(task, out_schema)
        if temp:
            result = result.drop(*temp.values())
        return self._finish(result)

    def setBackend(self, backend: str, **options):
        """Run transform on `backend`: for a torch model "torch" (default), "openvino" or
        "onnxruntime"; for a Keras model "keras" (default). The list is
        `zoo.inference.config.FRAMEWORK_BACKENDS`. `options` are the backend's settings (see
        zoo.inference.OpenVINOConfig / OnnxRuntimeConfig; the default backends take none).
        Returns self.

        Raises:
            InferenceArgumentError (a ZooValueError): this model's framework does not run on
                `backend`, or an option does not fit it (checked here, and again by transform
                before any Spark job).
        """
        if self.model is not None:
            backend_config(model_framework(self.model), backend, options, "NNModel.setBackend")
        self.backend, self.backend_options = backend, dict(options)
        return self

    def getBackend(self) -> str | None:
        """The backend transform runs on: the one set, or the model's own ("torch", "keras");
        None while there is no model and none was set."""
        if self.backend is not None or self.model is None:
            return self.backend
        return native_backend(model_framework(self.model))

    def _runner(self) -> InferenceRunner:
        """The runner transform broadcasts, after the driver-side check of the backend."""
        framework = model_framework(self.model)
        backend_config(framework, self.backend, self.backend_options, "NNModel.transform")
        return InferenceRunner(self.model, framework, self.getBackend(), self.backend_options)


class ArrayPrediction:
    """Postprocessing of NNModel: the whole output row as an array<float> column."""

    def __init__(self, column: str):
        self.column = column

    def __call__(self, outputs):
        import numpy as np

        return {self.column: np.asarray(outputs, dtype=np.float32).reshape(len(outputs), -1)}
