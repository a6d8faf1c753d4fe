"""Keras tests need Keras 3 and TensorFlow: skip (saying what to install) without them."""

import pytest

pytest.importorskip("tensorflow", reason="Keras tests need TensorFlow: pip install 'spark-zoo[tf]'")
pytest.importorskip("keras", reason="Keras tests need Keras 3: pip install 'spark-zoo[tf]'")
