"""Analytics Zoo's `zoo.pipeline` import paths, as aliases of Zoo's modules (nothing defined here)."""
