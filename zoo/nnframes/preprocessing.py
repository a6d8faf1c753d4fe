"""Feature and label preprocessing: raw DataFrame column values -> arrays the model takes.

A Preprocessing works on a whole column of one worker at once (the sample axis first), so the
built-in steps are vectorized numpy operations; a plain Python callable is applied row by row.
"""

from __future__ import annotations

import math

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError


class Preprocessing:
    """Base class: `transform(values)` maps a column (samples first) to an array (samples first)."""

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Identity; subclasses override."""
        return values

    def expected_length(self) -> int | None:
        """Elements per row this step requires of an array column, or None if it takes any."""
        return None

    def reads_images(self) -> bool:
        """Whether this step reads an image struct column (see zoo.nnframes.NNImageReader)."""
        return False

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.transform(values)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


def _stack(values: np.ndarray) -> np.ndarray:
    """Rows of a ragged (object) column stacked into one array, if their sizes agree."""
    if values.dtype != object:
        return values
    if len(values) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    sizes = {np.asarray(v).size for v in values}
    if len(sizes) > 1:
        raise ZooValueError(
            f"Expected every row of an array column to have the same length. Received lengths {sorted(sizes)[:5]}. "
            f"Pad or filter the rows, or give a preprocessing that handles ragged rows."
        )
    return np.stack([np.asarray(v) for v in values])


class ScalarToTensor(Preprocessing):
    """A numeric scalar per row -> a float32 tensor of shape [1]."""

    def transform(self, values):
        return np.asarray(values, dtype=np.float32).reshape(len(values), 1)


class SeqToTensor(Preprocessing):
    """An array per row -> a float32 tensor of `shape` (the row's own length when shape is None)."""

    def __init__(self, shape=None):
        self.shape = tuple(int(s) for s in shape) if shape is not None else None
        if self.shape is not None and any(s < 1 for s in self.shape):
            raise ZooValueError(f"Expected a shape of positive sizes. Received: shape={shape!r}.")

    def expected_length(self):
        return math.prod(self.shape) if self.shape is not None else None

    def transform(self, values):
        array = _stack(values).astype(np.float32, copy=False)
        if self.shape is None:
            return array.reshape(len(array), -1) if array.ndim == 1 else array
        per_row = array[0].size if len(array) else math.prod(self.shape)
        if per_row != math.prod(self.shape):
            raise ZooValueError(
                f"Expected array rows of {math.prod(self.shape)} elements for shape {list(self.shape)}. "
                f"Received rows of {per_row} elements. Fix the shape given to {type(self).__name__}."
            )
        return array.reshape((len(array),) + self.shape)


class SeqToMultipleTensors(Preprocessing):
    """An array per row -> several float32 tensors, cut from the row in order, one per shape in
    `sizes` (Analytics Zoo's SeqToMultipleTensors: one feature column feeding a multi-input model).

    Args:
        sizes: one shape per model input, e.g. [[1], [2]] cuts a row of 3 elements into a [1] and
            a [2] tensor.
    """

    def __init__(self, sizes):
        if not isinstance(sizes, (list, tuple)) or not sizes:
            raise ZooValueError(f"Expected a non-empty list of shapes, e.g. [[1], [2]]. Received: sizes={sizes!r}.")
        self.parts = [SeqToTensor(size) for size in sizes]

    def expected_length(self):
        return sum(part.expected_length() for part in self.parts)

    def transform(self, values) -> list[np.ndarray]:
        """One float32 array per shape (samples first)."""
        array = _stack(values).astype(np.float32, copy=False).reshape(len(values), -1)
        if len(array) and array.shape[1] != self.expected_length():
            raise ZooValueError(
                f"Expected array rows of {self.expected_length()} elements to cut into shapes "
                f"{[list(p.shape) for p in self.parts]}. Received rows of {array.shape[1]} elements."
            )
        bounds = np.cumsum([0] + [part.expected_length() for part in self.parts])
        return [part.transform(array[:, start:end]) for part, start, end in zip(self.parts, bounds, bounds[1:])]


class TensorToSample(Preprocessing):
    """Passes its input through: Zoo feeds tensors to the model directly, so the step Analytics Zoo
    needed to make a BigDL Sample has nothing to do (kept so AZ pipelines run unchanged)."""


class ArrayToTensor(SeqToTensor):
    """A numeric array per row -> a float32 tensor of `shape` (Analytics Zoo's name)."""


class MLlibVectorToTensor(SeqToTensor):
    """A Spark ML Vector (dense or sparse) per row -> a dense float32 tensor of `shape`."""


class ChainedPreprocessing(Preprocessing):
    """Apply `steps` in order."""

    def __init__(self, steps):
        self.steps = [to_preprocessing(s) for s in steps]
        if not self.steps:
            raise ZooValueError("Expected at least one step in ChainedPreprocessing.")

    def expected_length(self):
        return self.steps[0].expected_length()

    def reads_images(self):
        return self.steps[0].reads_images()

    def transform(self, values):
        for step in self.steps:
            values = step.transform(values)
        return values


class FunctionPreprocessing(Preprocessing):
    """Apply a Python callable to each row; the results are stacked into one array."""

    def __init__(self, function):
        self.function = function

    def transform(self, values):
        if len(values) == 0:
            return np.zeros((0,), dtype=np.float32)
        return np.stack([np.asarray(self.function(v)) for v in values])


class LabelToIndex(Preprocessing):
    """Class labels -> int64 class indices, shifted to 0-based when labels start at `base`."""

    def __init__(self, base: int = 0):
        self.base = int(base)

    def transform(self, values):
        return np.asarray(values).reshape(len(values)).astype(np.int64) - self.base


def _is_size(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def from_sizes(value):
    """Analytics Zoo's size shorthand for a preprocessing: a list of ints is SeqToTensor(value), a
    list of int lists is SeqToMultipleTensors(value); anything else is returned as given."""
    if isinstance(value, (list, tuple)) and value:
        if all(_is_size(v) for v in value):
            return SeqToTensor(value)
        if all(isinstance(v, (list, tuple)) and v and all(_is_size(x) for x in v) for v in value):
            return SeqToMultipleTensors(value)
    return value


def to_preprocessing(value) -> Preprocessing:
    """A Preprocessing from a Preprocessing or any callable."""
    if isinstance(value, Preprocessing):
        return value
    if callable(value):
        return FunctionPreprocessing(value)
    raise ZooTypeError(
        f"Expected a zoo.nnframes Preprocessing (SeqToTensor, ScalarToTensor, ...) or a callable. "
        f"Received: {value!r} of type {type(value).__name__}."
    )


class SampleBuilder:
    """Turns raw feature columns and a label column into model inputs and a target, on a worker.

    Args:
        features: one Preprocessing per feature column.
        label: the label's Preprocessing, or None when there is no label (inference).
    """

    def __init__(self, features: list[Preprocessing], label: Preprocessing | None):
        self.features = features
        self.label = label

    def __call__(self, feature_arrays, label_array=None):
        inputs = []
        for step, array in zip(self.features, feature_arrays):
            output = step.transform(array)
            # A step may feed several model inputs from one column (SeqToMultipleTensors).
            inputs.extend(np.ascontiguousarray(x) for x in (output if isinstance(output, list) else [output]))
        target = None
        if self.label is not None and label_array is not None:
            target = np.ascontiguousarray(self.label.transform(label_array))
        return inputs, target
