"""NNImageReader and the image preprocessing steps: reading PNGs with Spark's image source, resizing,
cropping, normalizing, stacking to tensors, and training an NNClassifier on an image column."""

import numpy as np
import pytest
import torch
from pyspark.sql import functions as F

from zoo.errors import ZooValueError
from zoo.nnframes import (
    ChainedPreprocessing, ImageCenterCrop, ImageChannelNormalize, ImageMatToTensor, ImageResize, ImageToTensor,
    NNClassifier, NNImageReader,
)
from zoo.nnframes.image_preprocessing import array_to_image

Image = pytest.importorskip("PIL.Image", reason="image tests need Pillow: pip install pillow")


def write_png(path, rgb: np.ndarray):
    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(path)
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of 12x16 RGB images: bright red-dominant (class 0) and blue-dominant (class 1),
    plus a text file that is not an image."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(24):
        rgb = rng.integers(0, 60, size=(12, 16, 3))
        rgb[:, :, 0 if i % 2 == 0 else 2] += 150
        write_png(folder / f"img_{i:02d}_class{i % 2}.png", rgb)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_read_images_gives_spark_image_struct_in_bgr(spark, tmp_path):
    rgb = np.zeros((3, 5, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    rgb[1, 2] = (200, 100, 50)
    write_png(tmp_path / "one.png", rgb)
    df = NNImageReader.readImages(str(tmp_path), spark)
    assert df.columns == ["image"]
    assert df.schema["image"].dataType.fieldNames() == ["origin", "height", "width", "nChannels", "mode", "data"]
    row = df.first().image
    assert (row.height, row.width, row.nChannels, row.mode) == (3, 5, 3, 16)
    assert row.origin.endswith("one.png")
    pixels = np.frombuffer(row.data, np.uint8).reshape(3, 5, 3)
    np.testing.assert_array_equal(pixels, rgb[..., ::-1])  # BGR, as OpenCV and Spark's image source


def test_read_images_resizes_and_drops_non_images(spark, image_folder):
    df = NNImageReader.readImages(str(image_folder), spark, minPartitions=2, resizeH=6, resizeW=8)
    assert df.rdd.getNumPartitions() >= 2
    rows = df.collect()
    assert len(rows) == 24  # notes.txt dropped
    first = min(rows, key=lambda r: r.image.origin).image
    assert (first.height, first.width, first.nChannels) == (6, 8, 3)
    source = np.asarray(Image.open(image_folder / "img_00_class0.png"))
    expected = np.stack([np.asarray(Image.fromarray(source[..., c]).resize((8, 6), Image.BILINEAR))
                         for c in (2, 1, 0)], axis=2)
    np.testing.assert_array_equal(np.frombuffer(first.data, np.uint8).reshape(6, 8, 3), expected)


def test_read_images_rejects_half_a_size(spark, image_folder):
    with pytest.raises(ZooValueError, match="resizeH and resizeW together"):
        NNImageReader.readImages(str(image_folder), spark, resizeH=8)


def test_steps_resize_crop_normalize_to_tensor():
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 256, size=(10, 12, 3)).astype(np.uint8)
    column = np.array([array_to_image(bgr, "a"), array_to_image(bgr[::-1].copy(), "b")], dtype=object)
    cropped = ImageCenterCrop(cropWidth=6, cropHeight=4).transform(column)
    np.testing.assert_array_equal(cropped[0], bgr[3:7, 3:9])
    normalized = ImageChannelNormalize([1.0, 2.0, 3.0], [2.0, 4.0, 8.0]).transform(cropped)  # RGB order
    expected = (bgr[3:7, 3:9].astype(np.float32) - [3.0, 2.0, 1.0]) / [8.0, 4.0, 2.0]
    np.testing.assert_allclose(normalized[0], expected, rtol=1e-6)
    tensor = ImageMatToTensor().transform(normalized)
    assert tensor.dtype == np.float32 and tensor.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(tensor[0], expected.transpose(2, 0, 1), rtol=1e-6)
    rgb = ImageToTensor(toRGB=True, format="NHWC").transform(column)
    np.testing.assert_array_equal(rgb[0], bgr[..., ::-1].astype(np.float32))
    resized = ImageResize(5, 6).transform(column)
    assert resized[1].shape == (5, 6, 3) and resized[1].dtype == np.uint8


def test_steps_explain_bad_sizes_and_channels():
    small = np.array([array_to_image(np.zeros((4, 4, 3), np.uint8)), array_to_image(np.zeros((5, 4, 3), np.uint8))],
                     dtype=object)
    with pytest.raises(ZooValueError, match="Add ImageResize"):
        ImageMatToTensor().transform(small)
    with pytest.raises(ZooValueError, match="Resize first"):
        ImageCenterCrop(8, 8).transform(small)
    with pytest.raises(ZooValueError, match="1 value"):
        ImageChannelNormalize([0.5]).transform(small)
    with pytest.raises(ZooValueError, match="positive integer"):
        ImageResize(0, 3)


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_classifier_trains_on_an_image_column(spark, image_folder):
    from pyspark.sql import functions as F

    images = NNImageReader.readImages(str(image_folder), spark, minPartitions=2)
    df = images.withColumn("label", F.regexp_extract("image.origin", r"class(\d)", 1).cast("double"))
    steps = ChainedPreprocessing([ImageResize(8, 8), ImageCenterCrop(6, 6),
                                  ImageChannelNormalize([128.0] * 3, [64.0] * 3), ImageMatToTensor()])
    torch.manual_seed(0)
    clf = NNClassifier(model=SmallCNN(), criterion=torch.nn.CrossEntropyLoss(), featuresCol="image",
                       feature_preprocessing=steps, batchSize=8, maxEpoch=15, learningRate=0.05,
                       optimMethod=torch.optim.Adam).setShowProgress(False)
    fitted = clf.fit(df)
    out = fitted.transform(df)
    assert out.selectExpr("avg(cast(prediction = label as double))").first()[0] > 0.9
    losses = [event["loss"] for event in fitted.history if event["event"] == "step"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_image_column_without_image_preprocessing_is_rejected(spark, image_folder):
    from pyspark.sql import functions as F

    df = NNImageReader.readImages(str(image_folder), spark).withColumn("label", F.lit(0.0))
    clf = NNClassifier(model=SmallCNN(), criterion=torch.nn.CrossEntropyLoss(), featuresCol="image")
    with pytest.raises(ZooValueError, match="holds images"):
        clf.fit(df)


@pytest.fixture(scope="module")
def mixed_images(tmp_path_factory):
    """Images of every kind Spark's image source distinguishes (RGB, RGBA, gray, palette with and
    without transparency, JPEG), a hidden file, and a file that is not an image."""
    folder = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), mode="RGB").save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (4, 6, 4), dtype=np.uint8), mode="RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (6, 3), dtype=np.uint8), mode="L").save(folder / "gray.png")
    palette = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8), mode="RGB").quantize(8)
    palette.save(folder / "palette.png")
    palette.save(folder / "palette_alpha.png", transparency=0)
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8), mode="RGB").save(folder / "flat.jpg", quality=95)
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes((folder / "rgb.png").read_bytes())
    return folder


def _by_name(df):
    return {row.image.origin.rsplit("/", 1)[-1]: row.image.asDict() for row in df.collect()}


@pytest.mark.parametrize("drop_invalid", [True, False])
def test_s3_images_give_the_same_dataframe_as_local_ones(spark, s3, mixed_images, drop_invalid):
    for path in mixed_images.iterdir():
        s3.fs.put_file(str(path), f"{s3.name}/images/{path.name}")
    local = NNImageReader.readImages(str(mixed_images), spark, dropInvalid=drop_invalid)
    remote = NNImageReader.readImages(f"s3a://{s3.name}/images", spark, minPartitions=2, dropInvalid=drop_invalid)
    assert remote.schema == local.schema
    assert remote.rdd.getNumPartitions() >= 2
    expected, got = _by_name(local), _by_name(remote)
    assert sorted(got) == sorted(expected) == sorted(
        ["rgb.png", "rgba.png", "gray.png", "palette.png", "palette_alpha.png", "flat.jpg"]
        + ([] if drop_invalid else ["notes.txt"]))
    for name, image in got.items():
        assert image["origin"] == f"s3a://{s3.name}/images/{name}"
        want = expected[name]
        assert {k: v for k, v in image.items() if k != "origin"} == {k: v for k, v in want.items() if k != "origin"}, name


def test_read_images_takes_azs_positional_form_with_a_spark_context(spark, tmp_path):
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    write_png(tmp_path / "color.png", rgb)
    Image.fromarray(np.full((4, 6), 77, dtype=np.uint8), mode="L").save(tmp_path / "gray.png")
    sc = spark.sparkContext

    def by_name(df):
        return {r.image.origin.rsplit("/", 1)[1]: r.image for r in df.collect()}

    gray = by_name(NNImageReader.readImages(str(tmp_path), sc, 1, -1, -1, 0))
    assert {name: image.nChannels for name, image in gray.items()} == {"color.png": 1, "gray.png": 1}
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # OpenCV's BGR -> gray
    assert set(gray["color.png"].data) == {expected} and set(gray["gray.png"].data) == {77}

    color = by_name(NNImageReader.readImages(str(tmp_path), sc, 2, 2, 3, 1))
    assert {(i.height, i.width, i.nChannels, i.mode) for i in color.values()} == {(2, 3, 3, 16)}
    assert set(color["gray.png"].data) == {77}
    # A UDF chained on the converted column gets a Row, read by position as AZ's example does.
    origin = F.udf(lambda image: image[0], "string")
    names = NNImageReader.readImages(str(tmp_path), sc, 1, 2, 3).select(origin("image").alias("o")).collect()
    assert sorted(r.o.rsplit("/", 1)[1] for r in names) == ["color.png", "gray.png"]
    with pytest.raises(ZooValueError, match="image_codec"):
        NNImageReader.readImages(str(tmp_path), sc, image_codec=2)
