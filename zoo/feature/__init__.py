"""Analytics Zoo's `zoo.feature` import paths, as aliases of `zoo.nnframes` preprocessing."""
