"""Analytics Zoo's `zoo.pipeline.inference`: the same objects as `zoo.inference`."""

from zoo.inference import *  # noqa: F401,F403 - an alias re-exports everything
from zoo.inference import __all__  # noqa: F401
