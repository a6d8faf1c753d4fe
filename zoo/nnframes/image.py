"""NNImageReader: read image files into a DataFrame with one image struct column.

Paths Spark's Hadoop file system reads (local, ``file://``, ``hdfs://``) are read by Spark's own
image data source (`spark.read.format("image")`, decoded on the executors). Other URLs (``s3://``,
``s3a://``, ...) are listed on the driver through `zoo.storage`, and each executor fetches its
files' bytes through `zoo.storage` and decodes them with Pillow exactly as Spark's source decodes
with Java's ImageIO (`decode_image`), so both give the same column: Spark's image struct, origin
(the file's URI), height, width, nChannels, mode (OpenCV type code), data (row-major pixels,
BGR(A) channel order, uint8). When `resizeH` and `resizeW` are given, each image is resized on the
executors with Pillow (bilinear) after decoding.
"""

from __future__ import annotations

import io

import numpy as np
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from zoo import storage
from zoo.errors import ZooValueError
from zoo.nnframes.image_preprocessing import IMAGE_FIELDS, array_to_image, image_to_array, resize_array

#: Name of the image column NNImageReader.readImages returns.
DEFAULT_IMAGE_COLUMN = "image"
#: Partitions readImages asks for when minPartitions is not given.
DEFAULT_MIN_PARTITIONS = 1
#: Schemes Spark's own image source reads through Hadoop's file system; others go through zoo.storage.
HADOOP_SCHEMES = ("", "file", "hdfs", "viewfs")
#: Pillow modes Java's ImageIO reads as grayscale (one channel, the first band).
GRAY_MODES = ("L", "LA", "I", "I;16", "I;16B", "I;16L")
#: OpenCV imread flags Analytics Zoo's `image_codec` takes: as stored, 3-channel BGR, grayscale.
IMREAD_UNCHANGED, IMREAD_COLOR, IMREAD_GRAYSCALE = -1, 1, 0
#: OpenCV's BGR -> gray weights (B, G, R).
GRAY_WEIGHTS = (0.114, 0.587, 0.299)


def image_schema() -> StructType:
    """Spark's image struct type (pyspark.ml.image.ImageSchema.columnSchema)."""
    from pyspark.ml.image import ImageSchema

    return ImageSchema.columnSchema


def is_image_type(data_type) -> bool:
    """Whether a column type is an image struct (has Spark's image fields)."""
    return isinstance(data_type, StructType) and set(IMAGE_FIELDS) <= set(data_type.fieldNames())


def recode(array: np.ndarray, codec: int) -> np.ndarray:
    """An H x W x C uint8 BGR(A) image as OpenCV's imread `codec` flag reads it: unchanged (-1),
    3-channel BGR (1) or one gray channel (0, OpenCV's weights)."""
    channels = array.shape[2]
    if codec == IMREAD_COLOR and channels != 3:
        return np.repeat(array, 3, axis=2) if channels == 1 else array[:, :, :3]
    if codec == IMREAD_GRAYSCALE and channels >= 3:
        gray = array[:, :, :3].astype(np.float64) @ np.asarray(GRAY_WEIGHTS)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[:, :, None]
    return array


def _converter(height: int, width: int, codec: int):
    """A row function for a UDF: image struct -> the same image recoded and resized (plain values only)."""

    def convert(image):
        if image is None or image["nChannels"] < 1:  # a file that is not an image (dropInvalid=False)
            return image
        array = recode(image_to_array(image), codec)
        if height != -1:
            array = resize_array(array, height, width)
        # A Row, not a dict: Spark hands a UDF's result straight to a UDF chained on it (AZ
        # scripts read the struct positionally, row[0] for the origin).
        return Row(**array_to_image(array, origin=image["origin"]))

    return convert


def decode_image(data: bytes, origin: str) -> dict | None:
    """The image struct of encoded image bytes, decoded as Spark's image source decodes them
    (``ImageSchema.decode``): grayscale images as one channel, images with alpha as BGRA, others as
    BGR; None when the bytes are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in GRAY_MODES:
                # ImageIO hands out the first band's raw sample; Spark keeps its low byte.
                band = image.getchannel(0) if image.mode == "LA" else image
                pixels = (np.asarray(band).astype(np.int64) & 0xFF).astype(np.uint8)[:, :, None]
            elif image.mode in ("RGBA", "PA") or "transparency" in image.info:
                pixels = np.asarray(image.convert("RGBA"))[:, :, [2, 1, 0, 3]]
            else:
                pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return array_to_image(pixels, origin=origin)


def invalid_image(origin: str) -> dict:
    """The row Spark's image source gives a file that is not an image (with dropInvalid=False)."""
    return {"origin": origin, "height": -1, "width": -1, "nChannels": -1, "mode": -1, "data": b""}


def _is_hidden(url: str, root: str) -> bool:
    """Whether a file below `root` is one Spark's file listing skips (a name starting with . or _)."""
    relative = url[len(root):] if url.startswith(root) else storage.basename(url)
    return any(part.startswith((".", "_")) for part in relative.strip("/").split("/") if part)


def _decode_files(options: dict, drop_invalid: bool):
    """The executor side of a storage read: a closure over plain values that yields image rows."""

    def decode(urls):
        from zoo.storage import install_storage_options, read_bytes

        install_storage_options(options)
        for url in urls:
            image = decode_image(read_bytes(url), url)
            if image is not None or not drop_invalid:
                yield (image if image is not None else invalid_image(url),)

    return decode


def _read_through_storage(spark, path: str, partitions: int, recursive: bool, drop_invalid: bool):
    """Images at a URL Spark's Hadoop file system does not read: listed here, decoded on the executors."""
    root = storage.resolve(path)
    urls = [u for u in storage.list_files(root, recursive=recursive) if not _is_hidden(u, root)]
    # As a file source gives it: every field nullable.
    fields = [StructField(f.name, f.dataType, True) for f in image_schema().fields]
    schema = StructType([StructField(DEFAULT_IMAGE_COLUMN, StructType(fields), True)])
    rdd = spark.sparkContext.parallelize(urls, max(1, min(len(urls), partitions)))
    return spark.createDataFrame(rdd.mapPartitions(_decode_files(storage.storage_options(), drop_invalid)), schema)


class NNImageReader:
    """Reads images into a DataFrame for nnframes (Analytics Zoo's NNImageReader)."""

    @staticmethod
    def readImages(path: str, spark=None, minPartitions: int = DEFAULT_MIN_PARTITIONS, resizeH: int = -1,
                   resizeW: int = -1, image_codec: int = IMREAD_UNCHANGED, recursive: bool = False,
                   dropInvalid: bool = True):
        """A DataFrame with one column `image` (Spark's image struct) for the images under `path`.

        Args:
            path: a file, a folder, or a glob: a local path, ``file://`` or ``hdfs://`` (read by
                Spark's image source), or ``s3://``/``s3a://`` (read through `zoo.storage`).
            spark: the SparkSession, or a SparkContext as Analytics Zoo passes it; default the
                active session.
            minPartitions: at least this many partitions (the data is repartitioned when fewer).
            resizeH: height to resize every image to; -1 (default) keeps the sizes as read.
            resizeW: width to resize every image to; give it together with resizeH.
            image_codec: OpenCV's imread flag, as in Analytics Zoo: -1 (default) keeps the
                channels as stored, 1 makes every image 3-channel BGR, 0 one gray channel.
            recursive: look for images in subfolders too.
            dropInvalid: skip files that are not images (True, default) or keep them as null rows.

        Returns:
            DataFrame[image: struct<origin, height, width, nChannels, mode, data>].
        """
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        if (resizeH == -1) != (resizeW == -1):
            raise ZooValueError(f"Expected resizeH and resizeW together (both -1 keeps sizes). "
                                f"Received: resizeH={resizeH}, resizeW={resizeW}.")
        if resizeH != -1 and (int(resizeH) < 1 or int(resizeW) < 1):
            raise ZooValueError(f"Expected positive resizeH and resizeW, or -1. "
                                f"Received: resizeH={resizeH}, resizeW={resizeW}.")
        if int(minPartitions) < 1:
            raise ZooValueError(f"Expected minPartitions >= 1. Received: minPartitions={minPartitions}.")
        if image_codec not in (IMREAD_UNCHANGED, IMREAD_COLOR, IMREAD_GRAYSCALE):
            raise ZooValueError(f"Expected image_codec -1 (as stored), 1 (3-channel BGR) or 0 (grayscale), "
                                f"OpenCV's imread flags. Received: image_codec={image_codec!r}.")
        if isinstance(spark, SparkContext):
            spark = SparkSession.builder.getOrCreate()  # the session on that (the active) context
        spark = spark or SparkSession.active()
        if storage.scheme_of(path) in HADOOP_SCHEMES:
            reader = spark.read.format("image").option("dropInvalid", bool(dropInvalid))
            if recursive:
                reader = reader.option("recursiveFileLookup", "true")
            df = reader.load(path)
        else:
            df = _read_through_storage(spark, path, int(minPartitions), recursive, bool(dropInvalid))
        if df.rdd.getNumPartitions() < minPartitions:
            df = df.repartition(int(minPartitions))
        if resizeH != -1 or image_codec != IMREAD_UNCHANGED:
            convert = F.udf(_converter(int(resizeH), int(resizeW), image_codec), image_schema())
            df = df.select(convert(F.col(DEFAULT_IMAGE_COLUMN)).alias(DEFAULT_IMAGE_COLUMN))
        return df
