"""Analytics Zoo's `zoo.pipeline.nnframes`: the same objects as `zoo.nnframes`."""

from zoo.nnframes import *  # noqa: F401,F403 - an alias re-exports everything
from zoo.nnframes import __all__  # noqa: F401
