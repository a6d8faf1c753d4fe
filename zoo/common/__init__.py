"""Analytics Zoo's `zoo.common` import path (see `zoo.common.nncontext`)."""
