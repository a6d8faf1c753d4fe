"""What kind of data a DataFrame column holds, and how nnframes feeds it to a model."""

from __future__ import annotations

from pyspark.ml.linalg import VectorUDT
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, NumericType, BooleanType

from zoo.errors import ZooValueError
from zoo.nnframes.preprocessing import FunctionPreprocessing, Preprocessing, ScalarToTensor, SeqToTensor

SCALAR, ARRAY, VECTOR, IMAGE, OTHER = "scalar", "array", "vector", "image", "other"


def _is_numeric_array(data_type) -> bool:
    while isinstance(data_type, ArrayType):
        data_type = data_type.elementType
    return isinstance(data_type, (NumericType, BooleanType))


def column_kind(df, name: str, role: str) -> str:
    """SCALAR, ARRAY, VECTOR, IMAGE (an image struct) or OTHER for column `name`; a clear error
    if it is missing."""
    from zoo.nnframes.image import is_image_type

    if name not in df.columns:
        raise ZooValueError(
            f"The {role} column `{name}` is not in the DataFrame. Available columns: {df.columns}. "
            f"Set {role}Col to one of them."
        )
    data_type = df.schema[name].dataType
    if isinstance(data_type, (NumericType, BooleanType)):
        return SCALAR
    if isinstance(data_type, ArrayType) and _is_numeric_array(data_type):
        return ARRAY
    if isinstance(data_type, VectorUDT):
        return VECTOR
    if is_image_type(data_type):
        return IMAGE
    return OTHER


def check_column_supported(df, name: str, kind: str, role: str, preprocessing) -> None:
    """Reject a column type no preprocessing here can read (a callable may read anything, an image
    preprocessing an image struct column)."""
    if kind == IMAGE and not (preprocessing.reads_images() or isinstance(preprocessing, FunctionPreprocessing)):
        raise ZooValueError(
            f"The {role} column `{name}` holds images. Expected an image preprocessing for it, e.g. "
            f"feature_preprocessing=ChainedPreprocessing([ImageResize(h, w), ImageMatToTensor()]) "
            f"(zoo.nnframes). Received: {preprocessing!r}."
        )
    if kind == OTHER and not isinstance(preprocessing, FunctionPreprocessing):
        raise ZooValueError(
            f"The {role} column `{name}` has type {df.schema[name].dataType.simpleString()}, which Zoo cannot "
            f"turn into a tensor. Expected a numeric, array<float|double> or ML Vector column; convert it "
            f"(e.g. with VectorAssembler) or give a preprocessing callable that handles it."
        )


def default_preprocessing(kind: str) -> Preprocessing:
    """The preprocessing used when none is given: scalars to [1], arrays and vectors flat."""
    return ScalarToTensor() if kind == SCALAR else SeqToTensor()


def model_input_column(name: str, kind: str):
    """The column expression sent to Python: ML Vectors become arrays (dense) on the JVM side."""
    if kind == VECTOR:
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(F.col(name)).alias(name)
    return F.col(name)
