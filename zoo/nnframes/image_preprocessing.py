"""Image preprocessing steps for nnframes: image struct column -> float32 tensors.

An image column holds Spark's image struct (origin, height, width, nChannels, mode, data; pixels
row-major, channels interleaved in OpenCV's BGR(A) order, uint8), as `NNImageReader.readImages`
and `spark.read.format("image")` produce. On a worker such a column arrives as a 1-D object
array of dicts. The steps here take that array (or the output of another image step: an object
array of HWC numpy images, still in BGR order) and are chained with `ChainedPreprocessing`,
ending in `ImageMatToTensor` / `ImageToTensor`, which stacks them into one float32 N x C x H x W
array the model takes:

    ChainedPreprocessing([ImageResize(32, 32), ImageCenterCrop(28, 28),
                          ImageChannelNormalize([123.7, 116.3, 103.5], [58.4, 57.1, 57.4]),
                          ImageMatToTensor()])
"""

from __future__ import annotations

import numpy as np

from zoo.errors import ZooTypeError, ZooValueError
from zoo.nnframes.preprocessing import Preprocessing

#: Fields of Spark's image struct, in its order.
IMAGE_FIELDS = ("origin", "height", "width", "nChannels", "mode", "data")
#: OpenCV type codes of 8-bit images by channel count (what Spark's image source writes in `mode`).
OPENCV_MODES = {1: 0, 3: 16, 4: 24}


def image_to_array(image) -> np.ndarray:
    """One image (a Spark image struct as dict/Row, or an HWC ndarray) as an H x W x C ndarray."""
    if isinstance(image, np.ndarray):
        return image if image.ndim == 3 else image.reshape(image.shape + (1,))
    if hasattr(image, "asDict"):
        image = image.asDict()
    if not isinstance(image, dict) or not set(IMAGE_FIELDS[1:4]).union({"data"}) <= set(image):
        raise ZooTypeError(
            f"Expected an image struct with fields {list(IMAGE_FIELDS)} (as NNImageReader.readImages makes). "
            f"Received: {type(image).__name__}. Image preprocessing steps read an image column only."
        )
    height, width, channels = int(image["height"]), int(image["width"]), int(image["nChannels"])
    data = np.frombuffer(bytes(image["data"]), dtype=np.uint8)
    if data.size != height * width * channels:
        raise ZooValueError(
            f"Image {image.get('origin', '')!r} declares {height}x{width}x{channels} but holds {data.size} bytes. "
            f"Expected height * width * nChannels bytes of 8-bit pixels; re-read it with NNImageReader."
        )
    return data.reshape(height, width, channels)


def array_to_image(array: np.ndarray, origin: str = "") -> dict:
    """An H x W x C uint8 ndarray (BGR order) as a Spark image struct dict."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    height, width, channels = array.shape
    if channels not in OPENCV_MODES:
        raise ZooValueError(f"Expected 1, 3 or 4 channels for an image struct. Received {channels}.")
    return {"origin": origin, "height": height, "width": width, "nChannels": channels,
            "mode": OPENCV_MODES[channels], "data": array.tobytes()}


def resize_array(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an H x W x C image, channel by channel (channel order is kept as is)."""
    from PIL import Image

    if array.shape[:2] == (height, width):
        return array
    if array.dtype == np.uint8 and array.shape[2] == 3:
        # One 3-band resize gives the per-channel result bit for bit (RGBA would not: Pillow
        # premultiplies alpha), in one pass instead of three.
        image = Image.fromarray(np.ascontiguousarray(array), mode="RGB")
        return np.array(image.resize((width, height), Image.BILINEAR))
    return np.stack([_resize_plane(array[:, :, c], height, width) for c in range(array.shape[2])], axis=2)


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of one H x W channel: 8-bit as Pillow "L", anything else as float32 "F"."""
    from PIL import Image

    if plane.dtype == np.uint8:
        image = Image.fromarray(np.ascontiguousarray(plane), mode="L")
    else:
        image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR))


def _images(values) -> list[np.ndarray]:
    return [image_to_array(v) for v in values]


def _object_array(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _positive(name: str, value) -> int:
    if int(value) != value or int(value) < 1:
        raise ZooValueError(f"Expected `{name}` to be a positive integer. Received: {name}={value!r}.")
    return int(value)


class ImagePreprocessing(Preprocessing):
    """Base of the steps that read an image column (NNEstimator accepts an image struct column
    only when its feature preprocessing starts with one of these)."""

    def reads_images(self) -> bool:
        """True: every image step reads the image struct column."""
        return True


class ImageResize(ImagePreprocessing):
    """Resize every image to `resizeH` x `resizeW` pixels (bilinear, Pillow).

    Args:
        resizeH: target height in pixels.
        resizeW: target width in pixels.
    """

    def __init__(self, resizeH: int, resizeW: int):
        self.resizeH = _positive("resizeH", resizeH)
        self.resizeW = _positive("resizeW", resizeW)

    def transform(self, values):
        return _object_array([resize_array(a, self.resizeH, self.resizeW) for a in _images(values)])


class ImageCenterCrop(ImagePreprocessing):
    """Cut the central `cropHeight` x `cropWidth` pixels of every image (Analytics Zoo's argument
    order: width first).

    Args:
        cropWidth: width of the crop in pixels; at most the image's width.
        cropHeight: height of the crop in pixels; at most the image's height.
    """

    def __init__(self, cropWidth: int, cropHeight: int):
        self.cropWidth = _positive("cropWidth", cropWidth)
        self.cropHeight = _positive("cropHeight", cropHeight)

    def transform(self, values):
        out = []
        for array in _images(values):
            height, width = array.shape[:2]
            if height < self.cropHeight or width < self.cropWidth:
                raise ZooValueError(
                    f"Cannot center-crop {self.cropHeight}x{self.cropWidth} (HxW) from an image of {height}x{width}. "
                    f"Resize first (ImageResize before ImageCenterCrop) or crop smaller."
                )
            top, left = (height - self.cropHeight) // 2, (width - self.cropWidth) // 2
            out.append(array[top:top + self.cropHeight, left:left + self.cropWidth])
        return _object_array(out)


def _az_channel_stats(values: tuple) -> tuple[list, list | None]:
    """(means, stds) from Analytics Zoo's ImageChannelNormalize(meanR, meanG, meanB[, stdR, stdG, stdB])."""
    if len(values) == 3:
        return list(values), None
    if len(values) == 6:
        return list(values[:3]), list(values[3:])
    raise ZooValueError(
        f"Expected ImageChannelNormalize(means, stds) with one value per channel in each list, or Analytics Zoo's "
        f"ImageChannelNormalize(meanR, meanG, meanB[, stdR, stdG, stdB]). Received {len(values)} numbers: {values}."
    )


class ImageChannelNormalize(ImagePreprocessing):
    """Per channel `(pixel - mean) / std`, as float32.

    Args:
        means: one mean per channel in RGB(A) order (as Analytics Zoo's meanR, meanG, meanB), or
            one value for grayscale images; the BGR order of the image struct is handled here.
        stds: one standard deviation per channel, same order; default all 1.

    Analytics Zoo's form, one float per channel, works too: `ImageChannelNormalize(meanR, meanG,
    meanB)` or `ImageChannelNormalize(meanR, meanG, meanB, stdR, stdG, stdB)`.
    """

    # {channel count: (mean, std) float32 arrays in the image's channel order}, built on first use.
    # A slot, not an attribute: repr shows the arguments only.
    __slots__ = ("_stats_by_channels",)

    def __init__(self, means, stds=None, *more):
        if more:
            means, stds = _az_channel_stats((means, stds) + more)
        self.means = [float(m) for m in np.atleast_1d(means)]
        self.stds = [float(s) for s in np.atleast_1d(stds)] if stds is not None else [1.0] * len(self.means)
        if len(self.stds) != len(self.means):
            raise ZooValueError(f"Expected as many stds as means ({len(self.means)}). Received {len(self.stds)}.")
        if any(s <= 0 for s in self.stds):
            raise ZooValueError(f"Expected positive stds. Received: stds={self.stds}.")

    def _per_channel(self, values: list[float], channels: int) -> np.ndarray:
        if len(values) != channels:
            raise ZooValueError(
                f"ImageChannelNormalize has {len(values)} value(s) per statistic but the image has {channels} "
                f"channel(s). Give one mean and std per channel (RGB order), or one for grayscale."
            )
        order = [2, 1, 0, 3][:channels] if channels >= 3 else list(range(channels))
        return np.asarray([values[i] for i in order], dtype=np.float32)

    def _stats(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) for images of `channels` channels, checked and ordered once per channel count."""
        cache = getattr(self, "_stats_by_channels", None)
        if cache is None:  # first use, or unpickled from a stage pickled without it
            cache = self._stats_by_channels = {}
        if channels not in cache:
            cache[channels] = (self._per_channel(self.means, channels), self._per_channel(self.stds, channels))
        return cache[channels]

    def transform(self, values):
        out = []
        for array in _images(values):
            mean, std = self._stats(array.shape[2])
            out.append((array.astype(np.float32) - mean) / std)
        return _object_array(out)


class RowToImageFeature(ImagePreprocessing):
    """Passes the image column through: Zoo's image steps read Spark's image struct directly, so
    Analytics Zoo's conversion to an ImageFeature has nothing to do (kept so AZ pipelines run)."""


class ImageMatToTensor(ImagePreprocessing):
    """Stack the images into one float32 array: N x C x H x W (`format="NCHW"`, PyTorch's layout)
    or N x H x W x C (`format="NHWC"`, Keras' default).

    Args:
        toRGB: reorder BGR(A) channels to RGB(A) (default False keeps the struct's BGR order, as
            Analytics Zoo does).
        format: "NCHW" (default) or "NHWC".

    Every image must have the same size; put an ImageResize (or ImageCenterCrop) before it.
    """

    def __init__(self, toRGB: bool = False, format: str = "NCHW"):
        if format not in ("NCHW", "NHWC"):
            raise ZooValueError(f"Expected format 'NCHW' or 'NHWC'. Received: format={format!r}.")
        self.toRGB = bool(toRGB)
        self.format = format

    def transform(self, values):
        arrays = _images(values)
        if not arrays:
            return np.zeros((0, 0, 0, 0), dtype=np.float32)
        shapes = sorted({a.shape for a in arrays})
        if len(shapes) > 1:
            raise ZooValueError(
                f"Expected images of one size to make a tensor. Received sizes (H, W, C) {shapes[:4]}. "
                f"Add ImageResize(h, w) before {type(self).__name__}, or read with resizeH/resizeW."
            )
        batch = np.stack(arrays).astype(np.float32, copy=False)
        if self.toRGB and batch.shape[3] >= 3:
            batch = batch[..., [2, 1, 0] + list(range(3, batch.shape[3]))]
        if self.format == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch)


class ImageToTensor(ImageMatToTensor):
    """Same as ImageMatToTensor (a shorter name)."""


class ImageFeatureToTensor(ImagePreprocessing):
    """Passes its input through: after ImageMatToTensor the batch already is the model's tensor
    (Analytics Zoo's ImageFeature -> Tensor step, kept so AZ pipelines run unchanged)."""
