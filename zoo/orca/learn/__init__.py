"""Orca Estimators on Zoo's engine: `zoo.orca.learn.pytorch` and `zoo.orca.learn.tf2`, with the
metrics (`zoo.orca.learn.metrics`) and triggers (`zoo.orca.learn.trigger`) they take."""
