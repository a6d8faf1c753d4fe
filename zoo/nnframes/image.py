"""NNImageReader: read image files into a DataFrame with one image struct column.

Reading is Spark's own image data source (`spark.read.format("image")`, decoded on the
executors); the column is its struct: origin (file URI), height, width, nChannels, mode (OpenCV
type code), data (row-major pixels, BGR(A) channel order, uint8). When `resizeH` and `resizeW`
are given, each image is resized on the executors with Pillow (bilinear) after decoding.
"""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from zoo.errors import ZooValueError
from zoo.nnframes.image_preprocessing import IMAGE_FIELDS, array_to_image, image_to_array, resize_array

#: Name of the image column NNImageReader.readImages returns.
DEFAULT_IMAGE_COLUMN = "image"
#: Partitions readImages asks for when minPartitions is not given.
DEFAULT_MIN_PARTITIONS = 1


def image_schema() -> StructType:
    """Spark's image struct type (pyspark.ml.image.ImageSchema.columnSchema)."""
    from pyspark.ml.image import ImageSchema

    return ImageSchema.columnSchema


def is_image_type(data_type) -> bool:
    """Whether a column type is an image struct (has Spark's image fields)."""
    return isinstance(data_type, StructType) and set(IMAGE_FIELDS) <= set(data_type.fieldNames())


def _resizer(height: int, width: int):
    """A row function for a UDF: image struct -> the same image resized (plain values only)."""

    def resize(image):
        if image is None:
            return None
        resized = resize_array(image_to_array(image), height, width)
        return array_to_image(resized, origin=image["origin"])

    return resize


class NNImageReader:
    """Reads images into a DataFrame for nnframes (Analytics Zoo's NNImageReader)."""

    @staticmethod
    def readImages(path: str, spark=None, minPartitions: int = DEFAULT_MIN_PARTITIONS, resizeH: int = -1,
                   resizeW: int = -1, recursive: bool = False, dropInvalid: bool = True):
        """A DataFrame with one column `image` (Spark's image struct) for the images under `path`.

        Args:
            path: a file, a folder, or a glob (any file system Spark reads: local, HDFS, S3, ...).
            spark: the SparkSession; default the active one.
            minPartitions: at least this many partitions (the data is repartitioned when fewer).
            resizeH: height to resize every image to; -1 (default) keeps the sizes as read.
            resizeW: width to resize every image to; give it together with resizeH.
            recursive: look for images in subfolders too.
            dropInvalid: skip files that are not images (True, default) or keep them as null rows.

        Returns:
            DataFrame[image: struct<origin, height, width, nChannels, mode, data>].
        """
        from pyspark.sql import SparkSession

        if (resizeH == -1) != (resizeW == -1):
            raise ZooValueError(f"Expected resizeH and resizeW together (both -1 keeps sizes). "
                                f"Received: resizeH={resizeH}, resizeW={resizeW}.")
        if resizeH != -1 and (int(resizeH) < 1 or int(resizeW) < 1):
            raise ZooValueError(f"Expected positive resizeH and resizeW, or -1. "
                                f"Received: resizeH={resizeH}, resizeW={resizeW}.")
        if int(minPartitions) < 1:
            raise ZooValueError(f"Expected minPartitions >= 1. Received: minPartitions={minPartitions}.")
        spark = spark or SparkSession.active()
        reader = spark.read.format("image").option("dropInvalid", bool(dropInvalid))
        if recursive:
            reader = reader.option("recursiveFileLookup", "true")
        df = reader.load(path)
        if df.rdd.getNumPartitions() < minPartitions:
            df = df.repartition(int(minPartitions))
        if resizeH != -1:
            resize = F.udf(_resizer(int(resizeH), int(resizeW)), image_schema())
            df = df.select(resize(F.col(DEFAULT_IMAGE_COLUMN)).alias(DEFAULT_IMAGE_COLUMN))
        return df
