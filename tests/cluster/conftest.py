"""Fixtures of the cluster tests: the packed environment and a standalone cluster on loopback."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.cluster.standalone import StandaloneCluster
from zoo.packaging import DEFAULT_EXCLUDES, pack_env

SITE = "lib/python*/site-packages/"
# What the test executors need is torch, numpy, pandas, pyarrow, pyspark and their small
# dependencies; leaving out the rest (TensorFlow, Ray, OpenVINO, MLflow, ... ~3.5 GB of this venv) keeps
# the archive that every executor unpacks under 1 GB. A real job ships the whole env by default.
UNUSED = ["tensorflow", "tensorflow-*", "tensorflow_*", "ray", "ray-*", "ray_*", "openvino*", "onnx*", "tf2onnx*",
          "nncf*", "clang*", "libclang*", "jedi*", "sklearn", "scikit_learn*", "scipy", "scipy*", "keras*",
          "debugpy*", "grpc*", "cryptography*", "uvloop*", "PIL", "pillow*", "tensorboard*", "h5py*", "IPython",
          "ipython*", "pygments", "google", "protobuf*", "aiohttp*", "redis*", "pip", "pip-*", "virtualenv*",
          "mlflow*", "moto*", "cfnlint*", "cfn_lint*", "botocore*", "boto3*", "fontTools*", "fonttools*",
          "matplotlib*", "sqlalchemy*", "SQLAlchemy*", "databricks*", "networkx*"]
TEST_EXCLUDES = list(DEFAULT_EXCLUDES) + [SITE + name + ("" if name.endswith("*") else "/*") for name in UNUSED] \
    + [SITE + f"torch/{folder}/*" for folder in ("include", "test", "bin")]
TEST_INCLUDES = [SITE + "torch/bin/torch_shm_manager"]  # `import torch` needs it


@pytest.fixture(scope="session")
def packed_env():
    """The running venv packed for executors (cached per machine in ~/.cache/zoo/envs)."""
    return pack_env(exclude=TEST_EXCLUDES, include=TEST_INCLUDES)


def _work_root() -> str:
    """Executors unpack the archive in their working directory: use memory when there is room
    (unpacking ~1 GB of small files on this disk takes several times longer)."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and shutil.disk_usage(shm).free > 6 * 2**30:
        return tempfile.mkdtemp(prefix="zoo-cluster-", dir=shm)
    return tempfile.mkdtemp(prefix="zoo-cluster-")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Spark standalone master and two 1-core workers on 127.0.0.1, stopped even on failure."""
    work_dir = _work_root()
    standalone = StandaloneCluster(str(tmp_path_factory.mktemp("standalone")), work_dir, workers=2, cores=1)
    try:
        yield standalone.start()
    finally:
        standalone.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
